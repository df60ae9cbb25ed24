"""AppearanceMemory: show the image networks what the target person looks like in a pose like the one asked for.

A U-Net cannot move pixels far, so from a pose alone it has to invent the person's texture, and after a short
training it invents a blur. Instead, for each pose we take the training frame whose pose is most alike, cut its
person along the segmentation (VideoSkeleton's masks) into body parts (torso, head, upper and lower arms and legs,
hands and feet with their limbs; each pixel in one part only, that of the nearest bone), move each part onto the new
pose with an affine transform of its own (as Deformable GANs do, Siarohin et al., CVPR 2018), and lay the parts,
farthest first, on a clean plate of the background: the median of the training frames around a moment, where the
person is not (Everybody Dance Now and its successors learn the background apart from the person for the same
reason), and only of the frames that show the same view as that moment: a camera that cuts, pans or zooms shows
another background a second later. The network gets this picture beside the pose and mostly has to mend seams and
fill what no part covers (Networks.ComposeWithMemory).

Which frame is remembered: the one whose pose has the most alike shape and, with PLACEMENT_WEIGHT, stands in the same
place at the same size. The head comes from a frame of its own, the one whose face turns the same way (face_shape),
since a body alike often shows another side of the head. Which plate: that of the moment when the person stood in the same place at the same size,
whatever the pose, since that is what tells where a camera that pans and zooms was. Where a plate's frames never
saw the background, the frames from anywhere in the video that show the same view fill it; else the hole is
inpainted from around it.

While training, a frame's memory never comes from within a second of it in time (nor from within a quarter of the
training frames, which decides in clips of a few seconds), so that the network learns to correct a pose that is
only alike, as it will have to on poses it has never seen. Over a sequence (DanceDemo, Evaluate) the remembered
frames and the plates are chosen together (Sequence.py), so they do not flicker.
"""
from collections import OrderedDict

import cv2
import numpy as np
import torch

from Sequence import ROWS_AT_ONCE, closest, coherent_choice, viterbi_uniform
from Skeleton import pose_distance_matrix, reduced_landmarks, torso_length

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
# Weight of where the person stands and how large (the joints' mean distance in the crop, in torso lengths) beside
# the pose's shape when choosing the frame to remember.
PLACEMENT_WEIGHT = 0.5
# Over a sequence: the remembered frame's candidates, and the cost of changing it (coherent_choice; in torso lengths).
MEMORY_CANDIDATES, MEMORY_JUMP_WEIGHT, MEMORY_JUMP_FLOOR = 8, 1.0, 0.01
# The head from a frame of its own: the face turns while the body keeps its pose, so the most alike body often
# shows another side of the head. Its frame is chosen on the face's points (face_shape), with this weight on the
# whole pose's distance beside it (in torso lengths, as distances()), so the head still comes from a frame alike.
HEAD_BODY_WEIGHT = 0.05
PLATE_STEP_SECONDS = 0.5    # one plate per this much video; a frame uses the nearest one
PLATE_WINDOW_SECONDS = 3.0  # a plate is the median of the training frames this close that show its moment's view
PLATE_MOMENT_FRAMES = 5     # a plate's moment: the frames nearest its mark, and at least this many for a median
# A frame shows a view if its background differs from the view's by at most this many grey levels (mean absolute):
# the same view differs by 0-3, a camera that pans drifts by 1-10 in 3 seconds, a cut by 20 or more (RESULTS.md).
PLATE_VIEW_AGREEMENT = 7.0
PLATE_SAMPLES = 48          # at most this many frames per median (evenly spaced in the window)
PLATES_KEPT = 256           # at most this many plates kept (the most recently used): bounded on a long video
# Over a sequence, the cost of changing the plate, in placement()'s units (fractions of the crop): a change must save
# this much placement distance summed over the frames it serves, so the background does not flicker between two
# plates of nearly the same framing when the person stands between them.
PLATE_CHANGE_COST = 0.1


def with_middles(landmarks):
    """(..., 33, 4) landmarks -> (..., 35, 4), with the mid-shoulder and mid-hip points appended."""
    middles = np.stack([landmarks[..., [11, 12], :].mean(-2), landmarks[..., [23, 24], :].mean(-2)], -2)
    return np.concatenate([landmarks, middles], -2)


def placement(landmarks):
    """(..., 3): where the person stands and how large, in 0..1 of the crop: the mid-hip's x and y, the torso's
    length."""
    return np.concatenate([with_middles(landmarks)[..., MID_HIP, :2], torso_length(landmarks)[..., None]], -1)


def normalised(landmarks):
    """Landmarks with x, y centred on the mid-hip and divided by the torso length: the pose's shape, wherever the
    person stands and however large they are."""
    out = np.array(landmarks, np.float32, copy=True)
    middle = with_middles(out)[..., MID_HIP:MID_HIP + 1, :2]
    out[..., :2] = (out[..., :2] - middle) / np.maximum(torso_length(out), 1e-6)[..., None, None]
    return out


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
    up = axis / np.maximum(np.linalg.norm(axis, axis=-1), 1e-6)[..., None]
    across = np.stack([-up[..., 1], up[..., 0]], -1)
    relative = (points[..., :11, :2] - points[..., :1, :2]) / np.maximum(np.linalg.norm(axis, axis=-1), 1e-6)[
        ..., None, None]
    return np.stack([(relative * across[..., None, :]).sum(-1), (relative * up[..., None, :]).sum(-1)], -1)


def face_distance_matrix(a, b):
    """(M, N): the mean distance between the face points of face_shape()s a (M, 11, 2) and b (N, 11, 2)."""
    return sum(np.linalg.norm(a[:, None, k] - b[None, :, k], axis=-1) for k in range(a.shape[1])) / a.shape[1]


def warp_person(image, source_landmarks, target_landmarks, person_mask, background, head=None):
    """The person of `image` (BGR uint8, square) in pose `source_landmarks` moved part by part to the pose
    `target_landmarks` (both (33, 4) in 0..1 of the image side) and laid on `background` (BGR, the same size);
    with `head` (image, landmarks, person_mask of another frame), the head is that frame's.

    The parts are the person's pixels (`person_mask`, float 0..1, the segmentation) in capsules around the bones."""
    size = image.shape[0]
    target = with_middles(target_landmarks)
    masks = owned_part_masks(source_landmarks, person_mask, CUT_WIDENING)
    images, affines = [image] * len(PARTS), part_affines(source_landmarks, target_landmarks, size)
    if head is not None:
        head_image, head_landmarks, head_mask = head
        images[HEAD] = head_image
        masks[HEAD] = owned_part_masks(head_landmarks, head_mask, CUT_WIDENING)[HEAD]
        affines[HEAD] = part_affines(head_landmarks, target_landmarks, size)[HEAD]
    out = background.astype(np.float32)
    # Farthest first (larger z is farther in MediaPipe), the torso under everything.
    depth = [np.inf] + [target[a, 2] + target[b, 2] for a, b, *_ in PARTS[1:]]
    for index in sorted(range(len(PARTS)), key=lambda i: -depth[i]):
        affine = affines[index]
        x, y, width, height = cv2.boundingRect((masks[index] > 0).astype(np.uint8))
        if width == 0:  # the segmentation left nothing of this part
            continue
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
        alpha = cv2.warpAffine(masks[index], shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                               borderValue=0)[..., None]
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - alpha) + moved * alpha
    return out.round().astype(np.uint8)


def moment_frames(frame_index, centre, fps):
    """Indices of the frames (frame numbers `frame_index`) of the plate whose mark is frame number `centre`: those
    nearer it than the next marks, and at least its PLATE_MOMENT_FRAMES nearest, in order."""
    distances = np.abs(np.asarray(frame_index) - centre)
    return np.union1d(np.flatnonzero(distances <= PLATE_STEP_SECONDS / 2 * fps),
                      np.argsort(distances, kind="stable")[:PLATE_MOMENT_FRAMES])


def evenly(indices, count):
    """At most `count` of `indices`, evenly spaced."""
    return indices[np.linspace(0, len(indices) - 1, min(count, len(indices))).round().astype(int)]


def background_plate(images, person_masks, min_share=0.1):
    """The background behind the people of some frames of one shot: the per-pixel median of the frames where the
    person is not (uint8 images (N, S, S, 3), bool masks (N, S, S)); NaN where fewer than `min_share` of the frames
    (and 3) show the background, because a pixel seen only where the segmentation missed the person is the person."""
    stack = np.where(person_masks[..., None], np.nan, images.astype(np.float32))
    seen = (~person_masks).sum(0) >= max(3, min_share * len(images))
    return np.where(seen[..., None], nan_median(stack), np.nan)


def nan_median(stack):
    """np.nanmedian(stack, axis=0), the same numbers, several times faster for a few dozen frames: each pixel's
    values sorted (NaN last), the middle of those known (the mean of the two middle ones for an even count); NaN
    where none is known."""
    stack = np.ascontiguousarray(np.moveaxis(stack, 0, -1))  # each pixel's values side by side: a faster sort
    known = (~np.isnan(stack)).sum(-1)
    ordered = np.sort(stack, axis=-1)
    low = np.take_along_axis(ordered, ((np.maximum(known, 1) - 1) // 2)[..., None], -1)[..., 0]
    high = np.take_along_axis(ordered, (known // 2)[..., None], -1)[..., 0]
    return np.where(known > 0, (low + high) / 2, np.nan).astype(stack.dtype)


def view_difference(image, where, view):
    """How unlike frame `image` (BGR uint8) is to the plate `view` (float, the same size): the mean absolute
    difference in grey levels over the pixels `where` (bool: where the frame shows its background and the view is
    known); inf where that is less than a tenth of the picture, too little to tell."""
    if where.mean() < 0.1:
        return np.inf
    return float(np.mean(cv2.mean(cv2.absdiff(image.astype(np.float32), view), where.astype(np.uint8))[:3]))


def inpainted(plate):
    """A plate (float, NaN where no frame saw the background) as BGR uint8, its holes inpainted from around them."""
    holes = np.isnan(plate).any(-1)
    plate = np.nan_to_num(plate).clip(0, 255).round().astype(np.uint8)
    return cv2.inpaint(plate, holes.astype(np.uint8), 3, cv2.INPAINT_TELEA) if holes.any() else plate


class AppearanceMemory:
    """The target's training frames (their poses, and their crops and masks at one size), recalled warped to a new
    pose.

    landmarks: (N, 33, 4) in crop coordinates; frame_index: (N,) frame numbers in the video; gap: frames within this
    many of a frame are never its memory; crops: what reads the pictures (a VideoSkeleton.CropCache: image(i) BGR
    uint8 and mask(i) uint8 0..255, both crops.size square), of the video's frames `indices` (N,); fps: frames per
    second, for the plates' windows.
    """

    def __init__(self, landmarks, frame_index, gap, crops, indices, fps=30.0):
        self.landmarks, self.crops, self.indices = landmarks, crops, np.asarray(indices)
        self.frame_index, self.gap, self.fps, self.size = np.asarray(frame_index), int(gap), float(fps), crops.size
        # The 13 joints that poses are compared on, taken out once (a long video's memory is searched often).
        self.shapes, self.joints = reduced_landmarks(normalised(landmarks)), reduced_landmarks(landmarks)
        self.faces = face_shape(landmarks)
        self.placements = placement(landmarks)
        # Each frame's plate: the number of its nearest PLATE_STEP_SECONDS mark.
        self.plate_step = max(1, round(PLATE_STEP_SECONDS * self.fps))
        self.plate_numbers = np.round((self.frame_index - self.frame_index.min()) / self.plate_step).astype(int)
        self.plates = OrderedDict()  # plate number -> plate, made when first needed, the most recent kept

    @classmethod
    def from_video(cls, video, indices, crops):
        """Memory of frames `indices` of a VideoSkeleton (the training frames), its pictures read by `crops` (a
        VideoSkeleton.CropCache of that video)."""
        # A second of video, but at most a quarter of the frames: in a short video every frame keeps others to
        # remember, instead of falling back on itself.
        gap = max(1, min(round(video.fps), len(indices) // 4))
        return cls(video.landmarks[indices], video.frame_index[indices], gap, crops, indices, video.fps)

    def image(self, k):
        return self.crops.image(self.indices[k])

    def mask(self, k):
        return self.crops.mask(self.indices[k])

    # ---- which frame to remember, on which plate ----

    def distances(self, landmarks):
        """(N,) how unlike each remembered frame is to pose `landmarks` (33, 4), or (M, N) to each of M poses
        (M, 33, 4): the shape's difference, in torso lengths, plus PLACEMENT_WEIGHT x the joints' distance in the
        crop, in the pose's torso lengths."""
        poses = landmarks[None] if landmarks.ndim == 2 else landmarks
        torso = np.maximum(torso_length(poses), 1e-6)[:, None]
        out = (pose_distance_matrix(normalised(poses), self.shapes)
               + PLACEMENT_WEIGHT * pose_distance_matrix(poses, self.joints) / torso)
        return out[0] if landmarks.ndim == 2 else out

    def nearest(self, landmarks, frame=None):
        """Index (into this memory) of the most alike frame; with `frame`, none within `gap` of it."""
        return self._closest(self.distances(landmarks), frame)

    def head_distances(self, landmarks):
        """(M, N): how unlike each remembered frame's head is to that of each of M poses (M, 33, 4): the face's
        points' distance (face_shape) plus HEAD_BODY_WEIGHT x the whole pose's (distances())."""
        return (face_distance_matrix(face_shape(landmarks), self.faces)
                + HEAD_BODY_WEIGHT * self.distances(landmarks))

    def nearest_head(self, landmarks, frame=None):
        """Index of the frame whose head is laid on pose `landmarks` (33, 4); with `frame`, none within `gap`."""
        return self._closest(self.head_distances(landmarks[None])[0], frame)

    def plate_index(self, landmarks, frame=None):
        """Index of the frame whose plate the person in pose `landmarks` is laid on: the frame where the person
        stood in the same place at the same size (placement(), L1 distance); with `frame`, none within `gap` of it."""
        return self._closest(np.abs(self.placements - placement(landmarks)).sum(-1), frame)

    def _closest(self, distances, frame):
        if frame is not None:
            near = np.abs(self.frame_index - frame) < self.gap
            if not near.all():
                distances = np.where(near, np.inf, distances)
        return int(np.argmin(distances))

    def coherent_choice(self, landmarks):
        """For a sequence of poses, the remembered frame of each, chosen together so that they change seldom."""
        poses = np.asarray(landmarks)
        options, distances = closest(lambda start, stop: self.distances(poses[start:stop]), len(poses),
                                     MEMORY_CANDIDATES)
        return coherent_choice(options, distances, self.frame_index,
                               lambda p, f: pose_distance_matrix(self.shapes[p], self.shapes[f]),
                               MEMORY_JUMP_WEIGHT, MEMORY_JUMP_FLOOR)

    def coherent_heads(self, landmarks):
        """For a sequence of poses, the frame whose head each takes, chosen together as coherent_choice() does."""
        poses = np.asarray(landmarks)
        options, distances = closest(lambda start, stop: self.head_distances(poses[start:stop]), len(poses),
                                     MEMORY_CANDIDATES)
        return coherent_choice(options, distances, self.frame_index,
                               lambda p, f: face_distance_matrix(self.faces[p], self.faces[f]),
                               MEMORY_JUMP_WEIGHT, MEMORY_JUMP_FLOOR)

    def coherent_plates(self, landmarks):
        """For a sequence of poses, the frame whose plate each is laid on, chosen together: among the plates, the
        sequence that balances each pose's placement distance to the plate's best-placed frame against
        PLATE_CHANGE_COST per change (a Viterbi pass over the whole sequence)."""
        wanted = placement(np.stack(landmarks))  # (T, 3)
        # Each plate's frames are a run of consecutive memory frames (their numbers never go down).
        firsts = np.flatnonzero(np.r_[True, np.diff(self.plate_numbers) != 0])

        def costs():  # each pose's distance to each plate's best-placed frame: (plates,) a pose, ROWS_AT_ONCE made
            for start in range(0, len(wanted), ROWS_AT_ONCE):  # at a time, never the whole (T, N) matrix
                part = wanted[start:start + ROWS_AT_ONCE]
                distances = sum(np.abs(part[:, None, c] - self.placements[None, :, c]) for c in range(3))
                yield from np.minimum.reduceat(distances, firsts, axis=1)

        return [int(firsts[m]) for m in viterbi_uniform(costs(), PLATE_CHANGE_COST)]  # a plate's first frame

    # ---- the picture ----

    def plate(self, index):
        """The background plate of remembered frame `index`: that of the nearest PLATE_STEP_SECONDS mark, the median
        of the frames within PLATE_WINDOW_SECONDS of it that show the same view as the frames around the mark."""
        number = int(self.plate_numbers[index])
        if number in self.plates:
            self.plates.move_to_end(number)
        else:
            centre = self.frame_index.min() + number * self.plate_step
            moment = moment_frames(self.frame_index, centre, self.fps)  # what the camera showed then
            window = np.flatnonzero(np.abs(self.frame_index - centre) <= PLATE_WINDOW_SECONDS * self.fps)
            plate = self._median(np.union1d(moment, self._showing(self._median(moment), window)))
            if np.isnan(plate).any():  # where the person stood throughout: frames from anywhere with the same view
                whole = self._median(self._showing(plate, np.arange(len(self.landmarks))))
                plate = np.where(np.isnan(plate), whole, plate)
            self.plates[number] = inpainted(plate)
            if len(self.plates) > PLATES_KEPT:
                self.plates.popitem(last=False)
        return self.plates[number]

    def _showing(self, view, indices):
        """Those of (up to PLATE_SAMPLES of) frames `indices` whose background is within PLATE_VIEW_AGREEMENT of the
        plate `view` (NaN where unknown)."""
        known, view = ~np.isnan(view).any(-1), np.nan_to_num(view)
        return np.array([k for k in evenly(indices, PLATE_SAMPLES)
                         if view_difference(self.image(k), known & ~self._person(k), view) <= PLATE_VIEW_AGREEMENT],
                        int)

    def _person(self, k):
        """Frame k's person, with the mask's soft rim, stray hair and the shadow at the feet: grown by 1/64 side."""
        return cv2.dilate((self.mask(k) > 32).astype(np.uint8), np.ones((3, 3), np.uint8),
                          iterations=max(1, self.size // 64)) > 0

    def _median(self, indices):
        """background_plate() of (up to PLATE_SAMPLES of) frames `indices`; all NaN for none."""
        chosen = evenly(indices, PLATE_SAMPLES)
        if len(chosen) == 0:
            return np.full((self.size, self.size, 3), np.nan, np.float32)
        return background_plate(np.stack([self.image(k) for k in chosen]), np.stack([self._person(k) for k in chosen]))

    def picture(self, index, landmarks, plate_index, head_index):
        """Remembered frame `index` with its person warped to pose `landmarks` (33, 4), the head that of frame
        `head_index`, laid on the plate of frame `plate_index`: BGR uint8, size x size."""
        head = None if head_index == index else (self.image(head_index), self.landmarks[head_index],
                                                 self.mask(head_index) / 255.0)
        return warp_person(self.image(index), self.landmarks[index], landmarks, self.mask(index) / 255.0,
                           self.plate(plate_index), head)

    def recall(self, landmarks, frame=None):
        """The most alike remembered person warped to pose `landmarks` (33, 4), on its plate: BGR uint8."""
        return self.recall_many([landmarks], None if frame is None else [frame])[0].permute(1, 2, 0).numpy()

    def recall_many(self, landmarks, frames=None, chosen=None, plates=None, heads=None):
        """(N, 3, size, size) uint8 tensor: recall() for each pose; `frames` (or None) excludes near frames;
        `chosen` gives the remembered frames instead (from coherent_choice), `plates` the frames whose plates
        they lie on (from coherent_plates; None for one: chosen for that pose alone), `heads` the frames whose heads
        they take (from coherent_heads; likewise)."""
        frames = [None] * len(landmarks) if frames is None else frames
        plates = [None] * len(landmarks) if plates is None else plates
        heads = [None] * len(landmarks) if heads is None else heads
        if chosen is None:
            chosen = [self.nearest(l, f) for l, f in zip(landmarks, frames)]
        plates = [self.plate_index(l, f) if p is None else p for l, f, p in zip(landmarks, frames, plates)]
        heads = [self.nearest_head(l, f) if h is None else h for l, f, h in zip(landmarks, frames, heads)]
        pictures = [self.picture(c, l, p, h) for c, l, p, h in zip(chosen, landmarks, plates, heads)]
        return torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2)
