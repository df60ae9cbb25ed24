"""GenNearest: the simplest generator. For a pose, return the target's frame whose pose is closest.

No training and no blur: every output is a real frame of the target. Its weakness is that it can only show poses
the target already made, and it jumps between them, so the result flickers when the poses are far apart.
"""
import numpy as np

from Skeleton import pose_distances, reduced_landmarks


class GenNearest:
    def __init__(self, videoSkeTgt, indices=None):
        """Search the frames of `videoSkeTgt` (a VideoSkeleton), or only those listed in `indices`.

        The crops are read once, when first needed, and kept in memory (256 px crops: 0.2 MB a frame).
        """
        self.videoSkeTgt = videoSkeTgt
        self.indices = np.arange(videoSkeTgt.skeCount()) if indices is None else np.asarray(indices)
        if len(self.indices) == 0:
            raise ValueError("GenNearest needs at least one target frame to search")
        self.joints = reduced_landmarks(videoSkeTgt.landmarks[self.indices])  # sliced once, not per query
        self.images = {}

    def nearest(self, ske):
        """Index (into the target video's frames) of the frame whose pose is closest to `ske`, and its distance."""
        distances = pose_distances(ske.landmarks, self.joints)
        best = int(np.argmin(distances))
        return int(self.indices[best]), float(distances[best])

    def generate(self, ske):
        """The target frame (BGR uint8, the target's crop size) closest in pose to `ske`."""
        index, _ = self.nearest(ske)
        if index not in self.images:
            self.images[index] = self.videoSkeTgt.readImage(index)
        return self.images[index]
