"""GenNearest: the simplest generator. For a pose, return the target's frame whose pose is closest.

No training and no blur: every output is a real frame of the target. Its weakness is that it can only show poses
the target already made, and it jumps between them, so the result flickers when the poses are far apart.
generate_sequence() answers that for a whole sequence: among the few closest frames for each pose it picks the
path that also jumps least from one chosen frame to the next (a Viterbi pass, with a lag of a few frames so that a
stream can be answered as it comes), and turns each jump that is left into a short dissolve instead of a cut.
"""
import numpy as np

from Skeleton import pose_distance_matrix, pose_distances, reduced_landmarks

# The coherent choice (measured on taichi2 with karate1 as source, README "Smooth motion"): among 64 candidates
# rather than 8, held-out tOF 0.145 instead of 0.191; a jump weight of 3 rather than 1 halves the transfer's shake.
CANDIDATES = 64    # closest target frames considered for each pose
LAG = 8            # frames looked ahead before a choice is final: the delay of a live stream
JUMP_WEIGHT = 3.0  # cost of a jump to a non-adjacent target frame, in units of its pose difference (+ JUMP_FLOOR)
JUMP_FLOOR = 0.01  # the least cost of any jump (in image sides): two different frames never match perfectly
FREE_STEPS = 2     # a step of 0 to 2 frames forward in the target's video is no jump: its own motion, held or fast
# After a jump the frame before it fades out over this many frames (0.13 s at 30 fps): on taichi2 the held-out tOF
# falls from 0.145 to 0.098 and SSIM rises by 0.002 (README "Smooth motion"); a dissolve shows a brief double image.
FADE_FRAMES = 4


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
        distances = pose_distance_matrix(np.stack([ske.landmarks for ske in skeletons]), self.joints)

        def jump_difference(previous, following):
            return pose_distance_matrix(self.joints[previous], self.joints[following])

        return coherent_choice(distances, self.frames, jump_difference, CANDIDATES, JUMP_WEIGHT, JUMP_FLOOR)


def coherent_choice(distances, frames, pose_difference, candidates, jump_weight, jump_floor):
    """For each query t, the index of a stored frame: among its `candidates` closest (distances (T, N), query to
    stored frame), the choice that minimises distance + jump_weight x (pose_difference(previous, chosen) +
    jump_floor), a jump being free when the chosen frame follows the previous one in the video (`frames`, the
    stored frames' numbers); each decided once the next LAG queries are known. pose_difference(is, js) gives the
    (len(is), len(js)) differences between stored frames is and js. GenNearest and the appearance memory share it,
    each with its own weights (their distances are in different units)."""

    def jump_costs(previous, following):
        step = frames[following][None] - frames[previous][:, None]
        jump = jump_weight * (pose_difference(previous, following) + jump_floor)
        return np.where(own_step(step), 0.0, jump)  # the video's own next frames are free

    options = np.argsort(distances, axis=1)[:, :candidates]
    unary = list(np.take_along_axis(distances, options, axis=1))
    steps = [jump_costs(options[t], options[t + 1]) for t in range(len(distances) - 1)]  # from t to t + 1
    chosen = []
    for t in range(len(distances)):
        end = min(len(distances), t + LAG + 1)
        start_cost = unary[t] + (jump_costs(np.array([chosen[-1]]), options[t])[0] if chosen else 0)
        path = viterbi([start_cost] + unary[t + 1:end], steps[t:end - 1])
        chosen.append(int(options[t][path[0]]))
    return chosen


def own_step(step):
    """Whether going `step` frames forward in the target's video (a number or an array) is its own motion, no jump."""
    return (step >= 0) & (step <= FREE_STEPS)


def crossfades(chosen, frames, fade_frames=FADE_FRAMES):
    """For each step of a chosen sequence (positions into `frames`, the stored frames' numbers): (shown, faded
    from, weight of shown). After a jump (a step that is not 0 to FREE_STEPS frames forward) the last frame before
    it stays blended in for fade_frames steps, fading out linearly, so a cut becomes a dissolve; each step needs only
    the choices up to it, so a stream keeps its speed."""
    steps, fading, since = [], None, 0
    for t, shown in enumerate(chosen):
        if t > 0 and not own_step(frames[shown] - frames[chosen[t - 1]]):
            fading, since = chosen[t - 1], 0
        since += 1
        weight = since / (fade_frames + 1) if fading is not None and since <= fade_frames else 1.0
        steps.append((shown, fading, weight))
    return steps


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
