"""BodyParts: a person cut into body parts along the segmentation and moved part by part onto another pose.

Each part (torso, head, upper and lower arms and legs, hands and feet with their limbs) is the person's pixels in a
capsule around its bone, each pixel in one part only, that of the nearest bone; each is moved with an affine
transform of its own (as Deformable GANs do, Siarohin et al., CVPR 2018) and laid farthest first. The appearance
memory (AppearanceMemory.py) warps its remembered frames with these; the full-frame layout (TargetFrame.py) cuts the
person's region with them.
"""
import cv2
import numpy as np

from Skeleton import torso_length

MID_SHOULDER, MID_HIP = 33, 34  # two joints added to MediaPipe's 33: the middles of the shoulders and of the hips

# Body parts as a segment between two joints: (from, to, start, end, width). The part's region is a capsule along
# the segment from `start` to `end` (fractions of its length, so end > 1 reaches past the second joint: the hand
# past the wrist, the foot past the ankle), `width` times the torso length across. Drawn in this order when depths
# tie; the torso is always laid first.
PARTS = [
    (MID_HIP, MID_SHOULDER, -0.1, 1.1, 0.75),   # torso
    (MID_SHOULDER, 0, 0.45, 1.7, 0.7),          # head, from the neck up past the nose
    (11, 13, 0.0, 1.0, 0.3), (13, 15, 0.0, 1.4, 0.27),   # left upper arm; forearm and hand
    (12, 14, 0.0, 1.0, 0.3), (14, 16, 0.0, 1.4, 0.27),   # right
    (23, 25, 0.0, 1.0, 0.4), (25, 27, 0.0, 1.3, 0.32),   # left thigh; shin and foot
    (24, 26, 0.0, 1.0, 0.4), (26, 28, 0.0, 1.3, 0.32),   # right
]
# The head is cut around the neck-to-nose line but moved along the hips-to-nose line: facing the camera or looking
# down, the nose is a few pixels above the neck, and a line that short swings by tens of degrees from frame to frame.
HEAD, HEAD_AXIS = 1, (MID_HIP, 0)
SCALE_LIMITS = (0.5, 2.0)  # how far one part may stretch along its segment (a limb seen end-on has no length)
CUT_WIDENING = 1.3  # the segmentation trims the capsules, so they can be wider and lose less of loose clothes and hair


def with_middles(landmarks):
    """(..., 33, 4) landmarks -> (..., 35, 4), with the mid-shoulder and mid-hip points appended."""
    middles = np.stack([landmarks[..., [11, 12], :].mean(-2), landmarks[..., [23, 24], :].mean(-2)], -2)
    return np.concatenate([landmarks, middles], -2)


def segment_affine(source_a, source_b, target_a, target_b, across_scale):
    """The 2 x 3 affine that maps segment (source_a -> source_b) onto (target_a -> target_b): turned, stretched along
    it (within SCALE_LIMITS), scaled across it by `across_scale`."""
    u, v = source_b - source_a, target_b - target_a
    length_u, length_v = np.linalg.norm(u), np.linalg.norm(v)
    if length_u < 1e-6 or length_v < 1e-6:  # a joint on top of another: keep the direction, move with the first
        along, rotation_u, rotation_v = across_scale, np.eye(2), np.eye(2)
    else:
        along = np.clip(length_v / length_u, *SCALE_LIMITS)
        rotation_u = np.array([[u[0], -u[1]], [u[1], u[0]]]) / length_u  # columns: along, across
        rotation_v = np.array([[v[0], -v[1]], [v[1], v[0]]]) / length_v
    linear = rotation_v @ np.diag([along, across_scale]) @ rotation_u.T
    return np.hstack([linear, (target_a - linear @ source_a)[:, None]]).astype(np.float32)


def part_segments(landmarks, size, widening=1.0):
    """For each body part of PARTS, for a pose (33, 4) in 0..1 of the image side: its capsule's two ends (pixels of a
    size x size image) and its width across (pixels)."""
    joints = with_middles(landmarks)[:, :2] * size
    torso = torso_length(landmarks) * size
    return [(joints[a] + start * (joints[b] - joints[a]), joints[a] + end * (joints[b] - joints[a]),
             width * widening * torso) for a, b, start, end, width in PARTS]


def part_masks(landmarks, size, widening=1.0):
    """One float mask (size x size, 0..1) per body part of PARTS, for a pose (33, 4) in 0..1 of the image side."""
    masks = []
    for p, q, width in part_segments(landmarks, size, widening):
        mask = np.zeros((size, size), np.float32)
        ends = [tuple(np.round(end * 16).astype(int)) for end in (p, q)]
        cv2.line(mask, ends[0], ends[1], 1.0, max(1, int(round(width))), cv2.LINE_AA, shift=4)
        masks.append(mask)
    return masks


def owned_part_masks(landmarks, person_mask, widening=1.0):
    """The person's (`person_mask`, float 0..1, square) pixels in each body part's capsule (part_masks()), each pixel
    kept only in the part whose bone is nearest, in that part's widths (grown a pixel, so that the moved parts still
    meet): a capsule cut out of the torso would also carry an arm held against it, or the head, to where the torso
    goes, while that part is drawn where it goes too (a double exposure)."""
    size = person_mask.shape[0]
    x, y, width, height = cv2.boundingRect((person_mask > 0).astype(np.uint8))
    masks = [m * person_mask for m in part_masks(landmarks, size, widening)]
    if width == 0:
        return masks
    ys, xs = np.mgrid[y:y + height, x:x + width].astype(np.float32)  # the person's box: where owners are decided
    distances = []  # squared, in squared half-widths
    for p, q, part_width in part_segments(landmarks, size, widening):
        along = q - p
        t = np.clip(((xs - p[0]) * along[0] + (ys - p[1]) * along[1]) / max(float(along @ along), 1e-6), 0, 1)
        squared = (xs - p[0] - t * along[0]) ** 2 + (ys - p[1] - t * along[1]) ** 2
        distances.append(squared / max(part_width / 2, 1e-6) ** 2)
    owner = np.argmin(np.stack(distances), 0)
    grow = np.ones((3, 3), np.uint8)
    for k, mask in enumerate(masks):
        mask[y:y + height, x:x + width] *= cv2.dilate((owner == k).astype(np.uint8), grow)
    return masks


def part_affines(source_landmarks, target_landmarks, size):
    """One 2 x 3 affine per body part of PARTS, moving it from pose `source_landmarks` to `target_landmarks` (both
    (33, 4) in 0..1 of the image side), in pixels of a size x size image: each part along its bone, scaled across it
    as the whole person; the head along HEAD_AXIS."""
    source_xy, target_xy = with_middles(source_landmarks)[:, :2] * size, with_middles(target_landmarks)[:, :2] * size
    scale = float(np.clip(torso_length(target_landmarks) / max(torso_length(source_landmarks), 1e-6), *SCALE_LIMITS))
    axes = [HEAD_AXIS if index == HEAD else (a, b) for index, (a, b, *_) in enumerate(PARTS)]
    return [segment_affine(source_xy[a], source_xy[b], target_xy[a], target_xy[b], scale) for a, b in axes]


def face_shape(landmarks):
    """(..., 11, 2): the face's points (nose, eyes, ears, mouth) of poses (..., 33, 4), from the nose, turned so
    that the hips-to-nose line points up and divided by its length: which way the head faces, wherever the body is
    and however it leans."""
    points = with_middles(np.asarray(landmarks, np.float32))
    axis = points[..., 0, :2] - points[..., MID_HIP, :2]
    length = np.maximum(np.linalg.norm(axis, axis=-1), 1e-6)[..., None]
    up = axis / length
    across = np.stack([-up[..., 1], up[..., 0]], -1)
    relative = (points[..., :11, :2] - points[..., :1, :2]) / length[..., None]
    return np.stack([(relative * across[..., None, :]).sum(-1), (relative * up[..., None, :]).sum(-1)], -1)


def face_distance_matrix(a, b):
    """(M, N): the mean distance between the face points of face_shape()s a (M, 11, 2) and b (N, 11, 2)."""
    return sum(np.linalg.norm(a[:, None, k] - b[None, :, k], axis=-1) for k in range(a.shape[1])) / a.shape[1]


def warp_person(image, source_landmarks, target_landmarks, person_mask, background):
    """The person of `image` (BGR uint8, square) in pose `source_landmarks` moved part by part to the pose
    `target_landmarks` (both (33, 4) in 0..1 of the image side) and laid on `background` (BGR, the same size). The
    parts are the person's pixels (`person_mask`, float 0..1, the segmentation) in capsules around the bones."""
    masks = [boxed(mask) for mask in owned_part_masks(source_landmarks, person_mask, CUT_WIDENING)]
    return lay_parts([image] * len(PARTS), masks, part_affines(source_landmarks, target_landmarks, image.shape[0]),
                     target_landmarks, background)


def boxed(mask):
    """A part's mask as (x, y, the mask inside its bounding box), None where it is empty: only the box is kept, so
    that the appearance memory can keep many frames' parts cut."""
    x, y, width, height = cv2.boundingRect((mask > 0).astype(np.uint8))
    return (x, y, mask[y:y + height, x:x + width].copy()) if width else None


def lay_parts(images, masks, affines, target_landmarks, background):
    """Each body part of PARTS (its picture `images[k]`, its mask `masks[k]` as boxed() gives, its affine
    `affines[k]` as part_affines() gives) moved and laid on `background` (BGR, square, the pictures' size), the part
    farthest in pose `target_landmarks` (33, 4) first: BGR uint8. The parts may come from different frames."""
    size = background.shape[0]
    target = with_middles(target_landmarks)
    out = background.astype(np.float32)
    # Farthest first (larger z is farther in MediaPipe), the torso under everything.
    depth = [np.inf] + [target[a, 2] + target[b, 2] for a, b, *_ in PARTS[1:]]
    for index in sorted(range(len(PARTS)), key=lambda i: -depth[i]):
        if masks[index] is None:  # the segmentation left nothing of this part
            continue
        (x, y, mask), affine = masks[index], affines[index]
        height, width = mask.shape
        # Only where the part lands: its box's corners moved, a pixel more around for the interpolation.
        corners = np.array([[x, y], [x + width, y], [x, y + height], [x + width, y + height]], np.float32)
        landed = corners @ affine[:, :2].T + affine[:, 2]
        x0, y0 = np.clip(np.floor(landed.min(0)).astype(int) - 1, 0, size)
        x1, y1 = np.clip(np.ceil(landed.max(0)).astype(int) + 2, 0, size)
        if x1 <= x0 or y1 <= y0:  # moved out of the picture
            continue
        shifted = affine - np.array([[0, 0, x0], [0, 0, y0]], np.float32)
        # Bicubic: moved by a fraction of a pixel, bilinear would average neighbours, a blur on every part.
        moved = cv2.warpAffine(images[index], shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC, borderValue=0)
        # The mask is kept inside its box: the same move, counted from the box's corner.
        from_box = shifted + np.hstack([np.zeros((2, 2), np.float32), affine[:, :2] @ np.float32([[x], [y]])])
        alpha = cv2.warpAffine(mask, from_box, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - alpha) + moved * alpha
    return out.round().astype(np.uint8)
