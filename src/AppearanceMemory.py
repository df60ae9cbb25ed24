"""AppearanceMemory: show the image networks what the target person looks like in a pose like the one asked for.

A U-Net cannot move pixels far, so from a pose alone it has to invent the person's texture, and after a short
training it invents a blur. Instead, for each pose we take the training frame whose pose is most alike, cut its
person along the segmentation (VideoSkeleton's masks) into body parts, move each part onto the new pose with an
affine transform of its own (BodyParts.py), and lay the parts, farthest first, on a clean plate of the background:
the median of the training frames around a moment, where the person is not (Everybody Dance Now and its successors
learn the background apart from the person for the same reason), and only of the frames that show the same view as
that moment: a camera that cuts, pans or zooms shows another background a second later. The network gets this
picture beside the pose and mostly has to mend seams and fill what no part covers (Networks.ComposeWithMemory).

Which frame is remembered: the one whose pose has the most alike shape and, with PLACEMENT_WEIGHT, stands in the
same place at the same size. The head comes from a frame of its own, the one whose face turns the same way
(face_shape), since a body alike often shows another side of the head. Which plate: that of the moment when the
person stood in the same place at the same size, whatever the pose, since that is what tells where a camera that
pans and zooms was. Where a plate's frames never saw the background, the frames from anywhere in the video that show
the same view fill it; else the hole is inpainted from around it.

While training, a frame's memory never comes from within a second of it in time (nor from within a quarter of the
training frames, which decides in clips of a few seconds), so that the network learns to correct a pose that is
only alike, as it will have to on poses it has never seen. Over a sequence (DanceDemo, Evaluate) the remembered
frames, the heads' frames and the plates are chosen together (Sequence.py), so they do not flicker.
"""
from collections import OrderedDict

import cv2
import numpy as np
import torch

from BodyParts import (CUT_WIDENING, HEAD, MID_HIP, boxed, face_distance_matrix, face_shape, lay_parts,
                       owned_part_masks, part_affines, with_middles)
from Sequence import ROWS_AT_ONCE, closest, coherent_choice, viterbi_uniform
from Skeleton import pose_distance_matrix, reduced_landmarks, torso_length

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
# Frames whose cut body parts are kept (the most recently used): a sequence shows one frame for a run of poses, and a
# frame's parts take longer to cut than to lay.
CUT_FRAMES_KEPT = 64
# Over a sequence, the cost of changing the plate, in placement()'s units (fractions of the crop): a change must save
# this much placement distance summed over the frames it serves, so the background does not flicker between two
# plates of nearly the same framing when the person stands between them.
PLATE_CHANGE_COST = 0.1


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
        self.cut = OrderedDict()  # frame -> its body parts' masks (BodyParts.boxed), likewise

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
        return self._coherent(landmarks, self.distances,
                              lambda p, f: pose_distance_matrix(self.shapes[p], self.shapes[f]))

    def coherent_heads(self, landmarks):
        """For a sequence of poses, the frame whose head each takes, chosen together as coherent_choice() does."""
        return self._coherent(landmarks, self.head_distances,
                              lambda p, f: face_distance_matrix(self.faces[p], self.faces[f]))

    def _coherent(self, landmarks, distances, difference):
        """Sequence.coherent_choice among each pose's MEMORY_CANDIDATES nearest frames by `distances` (poses ->
        (M, N)), a jump priced by `difference` (frames, frames -> their differences)."""
        poses = np.asarray(landmarks)
        options, values = closest(lambda start, stop: distances(poses[start:stop]), len(poses), MEMORY_CANDIDATES)
        return coherent_choice(options, values, self.frame_index, difference, MEMORY_JUMP_WEIGHT, MEMORY_JUMP_FLOOR)

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

    def parts(self, k):
        """Remembered frame k's person cut into body parts: their masks (BodyParts.owned_part_masks, boxed)."""
        if k in self.cut:
            self.cut.move_to_end(k)
        else:
            self.cut[k] = [boxed(m) for m in owned_part_masks(self.landmarks[k], self.mask(k) / 255.0, CUT_WIDENING)]
            if len(self.cut) > CUT_FRAMES_KEPT:
                self.cut.popitem(last=False)
        return self.cut[k]

    def picture(self, index, landmarks, plate_index, head_index):
        """Remembered frame `index` with its person warped to pose `landmarks` (33, 4), the head that of frame
        `head_index`, laid on the plate of frame `plate_index`: BGR uint8, size x size."""
        masks = list(self.parts(index))
        images = [self.image(index)] * len(masks)
        affines = part_affines(self.landmarks[index], landmarks, self.size)
        if head_index != index:
            images[HEAD], masks[HEAD] = self.image(head_index), self.parts(head_index)[HEAD]
            affines[HEAD] = part_affines(self.landmarks[head_index], landmarks, self.size)[HEAD]
        return lay_parts(images, masks, affines, landmarks, self.plate(plate_index))

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
