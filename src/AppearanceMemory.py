"""AppearanceMemory: show the generator what the target person looks like in a pose like the one asked for.

A U-Net cannot move pixels far, so from a pose alone it has to invent the person's texture, and after a short
training it invents a blur. Instead, for each pose we take the training frame whose pose is most alike, cut the
person into body parts (torso, head, upper and lower arms and legs, hands and feet with their limbs), move each part
onto the new pose with an affine transform of its own (as Deformable GANs do, Siarohin et al., CVPR 2018), and lay
the parts over each other, farthest first, on black ("person") or on that frame's own background with its person
cut out and inpainted ("scene"). The generator then gets this picture beside the pose (config["memory"]) and mostly has to mend
seams and fill what no part covers. It does not even have to redraw what the memory shows well: the generator
also draws a mask and the output is the memory where the mask says so, its own drawing elsewhere
(ComposeWithMemory).

While training, a frame's memory never comes from within a second of it in time, so that the network learns to
correct a pose that is only alike, as it will have to on poses it has never seen.
"""
import cv2
import numpy as np
import torch
import torch.nn as nn

from Skeleton import pose_distances

# "person": the moved parts on black. "scene": the moved parts over the remembered frame itself, from which the
# person's own parts were cut out and filled in from around them: the network also sees a background, which moves
# with the augmentation.
MODES = ("none", "person", "scene")
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
SCALE_LIMITS = (0.5, 2.0)  # how far one part may stretch along its segment (a limb seen end-on has no length)


def with_middles(landmarks):
    """(..., 33, 4) landmarks -> (..., 35, 4), with the mid-shoulder and mid-hip points appended."""
    middles = np.stack([landmarks[..., [11, 12], :].mean(-2), landmarks[..., [23, 24], :].mean(-2)], -2)
    return np.concatenate([landmarks, middles], -2)


def torso_length(landmarks):
    joints = with_middles(landmarks)
    return np.linalg.norm(joints[..., MID_SHOULDER, :2] - joints[..., MID_HIP, :2], axis=-1)


def normalised(landmarks):
    """Landmarks with x, y centred on the mid-hip and divided by the torso length: the pose's shape, wherever the
    person stands and however large they are, so a search finds a like pose anywhere in the frame."""
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


def part_masks(landmarks, size):
    """One float mask (size x size, 0..1) per body part of PARTS, for a pose (33, 4) in 0..1 of the image side."""
    joints = with_middles(landmarks)[:, :2] * size
    torso = torso_length(landmarks) * size
    masks = []
    for a, b, start, end, width in PARTS:
        mask = np.zeros((size, size), np.float32)
        ends = [tuple(np.round((joints[a] + t * (joints[b] - joints[a])) * 16).astype(int)) for t in (start, end)]
        cv2.line(mask, ends[0], ends[1], 1.0, max(1, int(round(width * torso))), cv2.LINE_AA, shift=4)
        masks.append(mask)
    return masks


def warp_person(image, source_landmarks, target_landmarks, keep_scene=False):
    """The person of `image` (BGR uint8, square) in pose `source_landmarks` moved part by part to the pose
    `target_landmarks` (both (33, 4) in 0..1 of the image side). Where no part lands: black, or with keep_scene the
    image itself, with the person's own parts cut out and filled in from the background around them (inpainting),
    so that no ghost of the old pose remains."""
    size = image.shape[0]
    source, target = with_middles(source_landmarks), with_middles(target_landmarks)
    source_xy, target_xy = source[:, :2] * size, target[:, :2] * size
    scale = float(np.clip(torso_length(target_landmarks) / max(torso_length(source_landmarks), 1e-6), *SCALE_LIMITS))
    masks = part_masks(source_landmarks, size)
    if keep_scene:  # the parts' union, grown a little (MediaPipe's joints sit inside the limbs' outline), filled
        person = cv2.dilate(np.max(masks, axis=0), np.ones((5, 5), np.uint8)) > 0.1  # in from around it (Telea)
        out = cv2.inpaint(image, person.astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.float32)
    else:
        out = np.zeros(image.shape, np.float32)
    # Farthest first (larger z is farther in MediaPipe), the torso under everything.
    depth = [np.inf] + [target[a, 2] + target[b, 2] for a, b, *_ in PARTS[1:]]
    for index in sorted(range(len(PARTS)), key=lambda i: -depth[i]):
        a, b = PARTS[index][:2]
        affine = segment_affine(source_xy[a], source_xy[b], target_xy[a], target_xy[b], scale)
        moved = cv2.warpAffine(image, affine, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
        alpha = cv2.warpAffine(masks[index], affine, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
        out = out * (1 - alpha) + moved * alpha
    return out.round().astype(np.uint8)


class AppearanceMemory:
    """The target's training frames (crops at `size` and their poses), recalled warped to a new pose.

    images: (N, size, size, 3) BGR uint8; landmarks: (N, 33, 4) in crop coordinates; frame_index: (N,) frame
    numbers in the video; gap: frames within this many of a frame are never its memory (a second of video).
    """

    def __init__(self, images, landmarks, frame_index, gap, keep_scene=False):
        self.images, self.landmarks, self.keep_scene = images, landmarks, keep_scene
        self.frame_index, self.gap = np.asarray(frame_index), int(gap)
        self.shapes = normalised(landmarks)

    @classmethod
    def from_video(cls, video, indices, size, mode="person"):
        """Memory of frames `indices` of a VideoSkeleton (the training frames), at `size` pixels, in a MODES mode."""
        images = np.stack([cv2.resize(video.readImage(i), (size, size), interpolation=cv2.INTER_AREA)
                           for i in indices])
        return cls(images, video.landmarks[indices], video.frame_index[indices], gap=max(1, round(video.fps)),
                   keep_scene=mode == "scene")

    def nearest(self, landmarks, frame=None):
        """Index (into this memory) of the pose most alike in shape; with `frame`, none within `gap` of it."""
        distances = pose_distances(normalised(landmarks), self.shapes)
        if frame is not None:
            near = np.abs(self.frame_index - frame) < self.gap
            if not near.all():
                distances = np.where(near, np.inf, distances)
        return int(np.argmin(distances))

    def recall(self, landmarks, frame=None):
        """The remembered person warped to pose `landmarks` (33, 4): BGR uint8, size x size."""
        best = self.nearest(landmarks, frame)
        return warp_person(self.images[best], self.landmarks[best], landmarks, self.keep_scene)

    def recall_many(self, landmarks, frames=None):
        """(N, 3, size, size) uint8 tensor: recall() for each pose; `frames` (or None) excludes near frames."""
        frames = [None] * len(landmarks) if frames is None else frames
        return torch.from_numpy(np.stack([self.recall(l, f) for l, f in zip(landmarks, frames)])).permute(0, 3, 1, 2)


class ComposeWithMemory(nn.Module):
    """A generator that copies from the memory where it can. The wrapped network (any image-to-image network with 4
    output channels in [-1, 1]) draws an image and a mask m; the output is m x memory + (1 - m) x image, the memory
    being the last 3 channels of the input. This is how vid2vid composes a warped frame with a drawn one (Wang et
    al., NeurIPS 2018): from the first step the output already shows the remembered person, and training only has
    to learn where to trust it and what to draw instead."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        out = self.net(x)
        mask = (out[:, 3:4] + 1) / 2
        return mask * x[:, -3:] + (1 - mask) * out[:, :3]
