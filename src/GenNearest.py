"""GenNearest: the simplest generator. For a pose, return the target's frame whose pose is closest.

No training and no blur: every output is a real frame of the target. Its weakness is that it can only show poses
the target already made, and it jumps between them, so the result flickers when the poses are far apart.
generate_sequence() answers that for a whole sequence: among the few closest frames for each pose it picks the
path that also jumps least from one chosen frame to the next (a Viterbi pass, with a lag of a few frames so that a
stream can be answered as it comes).
"""
import numpy as np

from Skeleton import pose_distances, reduced_landmarks

CANDIDATES = 8     # closest target frames considered for each pose
LAG = 8            # frames looked ahead before a choice is final: the delay of a live stream
JUMP_WEIGHT = 1.0  # cost of a jump to a non-adjacent target frame, in units of its pose difference (+ JUMP_FLOOR)
JUMP_FLOOR = 0.01  # the least cost of any jump (in image sides): two different frames never match perfectly


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
        self.frames = videoSkeTgt.frame_index[self.indices]
        self.images = {}

    def nearest(self, ske):
        """Index (into the target video's frames) of the frame whose pose is closest to `ske`, and its distance."""
        distances = pose_distances(ske.landmarks, self.joints)
        best = int(np.argmin(distances))
        return int(self.indices[best]), float(distances[best])

    def image(self, index):
        if index not in self.images:
            self.images[index] = self.videoSkeTgt.readImage(index)
        return self.images[index]

    def generate(self, ske):
        """The target frame (BGR uint8, the target's crop size) closest in pose to `ske`."""
        return self.image(self.nearest(ske)[0])

    def generate_sequence(self, skeletons):
        """One target frame per pose of a sequence, chosen by coherent_choice: a list of BGR uint8 images."""
        return [self.image(int(self.indices[c])) for c in self.coherent_choice(skeletons)]

    def coherent_choice(self, skeletons, candidates=CANDIDATES, lag=LAG):
        """For each pose, a position in self.indices: the sequence that balances pose distance against jumps
        between the chosen frames (coherent_choice below)."""
        distances = np.stack([pose_distances(ske.landmarks, self.joints) for ske in skeletons])
        return coherent_choice(distances, self.frames, lambda p, f: pose_distances(self.joints[p], self.joints[f]),
                               candidates, lag)


def coherent_choice(distances, frames, pose_difference, candidates=CANDIDATES, lag=LAG):
    """For each query t, the index of a stored frame: among its `candidates` closest (distances (T, N), query to
    stored frame), the choice that minimises distance + JUMP_WEIGHT x (pose_difference(previous, chosen) +
    JUMP_FLOOR), a jump being free when the chosen frame follows the previous one in the video (`frames`, the
    stored frames' numbers); each decided once the next `lag` queries are known. pose_difference(i, js) gives the
    (len(js),) differences between stored frame i and frames js. GenNearest and the appearance memory share it."""

    def jump_costs(previous, following):
        costs = np.empty((len(previous), len(following)))
        for row, p in enumerate(previous):
            step = frames[following] - frames[p]
            jump = JUMP_WEIGHT * (pose_difference(p, following) + JUMP_FLOOR)
            costs[row] = np.where((step >= 0) & (step <= 2), 0.0, jump)  # the video's own next frames are free
        return costs

    options = np.argsort(distances, axis=1)[:, :candidates]
    unary = list(np.take_along_axis(distances, options, axis=1))
    chosen = []
    for t in range(len(distances)):
        end = min(len(distances), t + lag + 1)
        start_cost = unary[t] + (jump_costs([chosen[-1]], options[t])[0] if chosen else 0)
        path = viterbi([start_cost] + unary[t + 1:end],
                       [jump_costs(options[s - 1], options[s]) for s in range(t + 1, end)])
        chosen.append(int(options[t][path[0]]))
    return chosen


def viterbi(unary, pairwise):
    """The cheapest path through a chain: unary[t] (K_t,) costs of each state at step t, pairwise[t] (K_t, K_t+1)
    costs of moving between consecutive steps' states. Returns one state index per step."""
    total = np.asarray(unary[0], np.float64)
    back = []
    for costs, step in zip(pairwise, unary[1:]):
        through = total[:, None] + costs
        back.append(np.argmin(through, axis=0))
        total = through.min(axis=0) + step
    path = [int(np.argmin(total))]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return path[::-1]
