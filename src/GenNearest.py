"""GenNearest: the simplest generator. For a pose, return the target's frame whose pose is closest.

No training and no blur: every output is a real frame of the target. Its weakness is that it can only show poses
the target already made, and it jumps between them, so the result flickers when the poses are far apart.
generate_sequence() answers that for a whole sequence: among the few closest frames for each pose it picks the
path that also jumps least from one chosen frame to the next (a Viterbi pass, with a lag of a few frames so that a
stream can be answered as it comes), and turns each jump that is left into a short dissolve instead of a cut
(Sequence.py).
"""
import numpy as np

from Sequence import closest, coherent_choice, crossfades
from Skeleton import pose_distance_matrix, pose_distances, reduced_landmarks
from VideoSkeleton import CropCache

# The coherent choice's weights (RESULTS.md, "Smooth motion"): more candidates and a dearer jump shake less.
CANDIDATES = 64    # closest target frames considered for each pose
JUMP_WEIGHT = 3.0  # cost of a jump to a non-adjacent target frame, in units of its pose difference (+ JUMP_FLOOR)
JUMP_FLOOR = 0.01  # the least cost of any jump (in image sides): two different frames never match perfectly


class GenNearest:
    def __init__(self, videoSkeTgt, indices=None):
        """Search the frames of `videoSkeTgt` (a VideoSkeleton), or only those listed in `indices`.

        The crops are read when first needed and kept while they fit (VideoSkeleton.CropCache).
        """
        self.videoSkeTgt = videoSkeTgt
        self.indices = np.arange(videoSkeTgt.skeCount()) if indices is None else np.asarray(indices)
        if len(self.indices) == 0:
            raise ValueError("GenNearest needs at least one target frame to search")
        self.joints = reduced_landmarks(videoSkeTgt.landmarks[self.indices])  # sliced once, not per query
        self.frames = videoSkeTgt.frame_index[self.indices]
        self.crops = CropCache(videoSkeTgt, videoSkeTgt.crop_size)

    def nearest(self, ske):
        """Index (into the target video's frames) of the frame whose pose is closest to `ske`, and its distance."""
        distances = pose_distances(ske.landmarks, self.joints)
        best = int(np.argmin(distances))
        return int(self.indices[best]), float(distances[best])

    def image(self, index):
        return self.crops.image(index)

    def generate(self, ske):
        """The target frame (BGR uint8, the target's crop size) closest in pose to `ske`."""
        return self.image(self.nearest(ske)[0])

    def generate_sequence(self, skeletons):
        """One image per pose of a sequence (BGR uint8): the frames coherent_choice picks, jumps dissolved."""
        return [self.faded_image(step) for step in self.sequence_steps(skeletons)]

    def sequence_steps(self, skeletons):
        """For each pose of a sequence, the step of crossfades() to show: (shown, faded from, weight of shown)."""
        return crossfades(self.coherent_choice(skeletons), self.frames)

    def faded_image(self, step):
        """The image of one step of crossfades(): (shown, faded from, weight of shown), positions in self.indices."""
        shown, faded_from, weight = step
        image = self.image(int(self.indices[shown]))
        if weight == 1:
            return image
        faded = self.image(int(self.indices[faded_from])).astype(np.float32)
        return np.clip(weight * image + (1 - weight) * faded + 0.5, 0, 255).astype(np.uint8)

    def coherent_choice(self, skeletons):
        """For each pose, a position in self.indices: the sequence that balances pose distance against jumps
        between the chosen frames (coherent_choice below)."""
        queries = np.stack([ske.landmarks for ske in skeletons])
        options, distances = closest(lambda start, stop: pose_distance_matrix(queries[start:stop], self.joints),
                                     len(queries), CANDIDATES)

        def jump_difference(previous, following):
            return pose_distance_matrix(self.joints[previous], self.joints[following])

        return coherent_choice(options, distances, self.frames, jump_difference, JUMP_WEIGHT, JUMP_FLOOR)
