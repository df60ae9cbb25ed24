"""Sequence: choosing one stored frame per pose of a whole sequence, so that the choice changes seldom.

A frame chosen for each pose alone jumps back and forth between stored frames that fit about as well, and the result
flickers. coherent_choice() instead balances each pose's distance to its frame against the cost of a jump between
the frames chosen for consecutive poses (a Viterbi pass, decided with a lag of a few poses so that a stream can be
answered as it comes), and crossfades() turns each jump that is left into a short dissolve. GenNearest (whose frames
are the output) and the networks' appearance memory (whose frames are their input) both choose this way, each with
its own weights, since their distances are in different units.
"""
import numpy as np

LAG = 8            # poses looked ahead before a choice is final: the delay of a live stream
ROWS_AT_ONCE = 32  # queries whose distances to every stored frame are held at once (closest()): 180 MB of joint
# distances against a 60-minute target
FREE_STEPS = 2     # a step of 0 to 2 frames forward in the stored video is no jump: its own motion, held or fast
FADE_FRAMES = 4    # after a jump the frame before it fades out over this many frames (0.13 s at 30 fps)


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


def viterbi_uniform(unary, change):
    """viterbi() for a chain where every move between two different states costs `change` and staying costs
    nothing, in O(states) a step instead of O(states^2): the cheapest way into a state is to stay in it or to come
    from the previous step's cheapest state. unary: an iterable of (K,) cost arrays, one per step, which may be made
    as it is read. Returns one state index per step."""
    total, stays, cheapest = None, [], []
    for costs in unary:
        if total is None:
            total = np.asarray(costs, np.float64)
            continue
        best = int(np.argmin(total))
        stay = total <= total[best] + change
        stays.append(stay)
        cheapest.append(best)
        total = np.where(stay, total, total[best] + change) + costs
    path = [int(np.argmin(total))]
    for stay, best in zip(reversed(stays), reversed(cheapest)):
        path.append(path[-1] if stay[path[-1]] else best)
    return path[::-1]


def closest(distance_rows, count, candidates):
    """For each of `count` queries, its `candidates` nearest stored frames, nearest first: (their positions (T, K),
    their distances (T, K)). distance_rows(start, stop) gives rows start to stop of the (T, N) matrix of distances
    from queries to stored frames; they are asked for ROWS_AT_ONCE at a time, so the whole matrix is never held (a
    3-minute source against a 60-minute target: 5,400 x 108,000 distances)."""
    options, values = [], []
    for start in range(0, count, ROWS_AT_ONCE):
        rows = distance_rows(start, min(count, start + ROWS_AT_ONCE))
        k = min(candidates, rows.shape[1])
        nearest = np.argpartition(rows, k - 1, axis=1)[:, :k]
        nearest = np.take_along_axis(nearest, np.argsort(np.take_along_axis(rows, nearest, 1), axis=1), 1)
        options.append(nearest)
        values.append(np.take_along_axis(rows, nearest, 1))
    return np.concatenate(options), np.concatenate(values)


def own_step(step):
    """Whether going `step` frames forward in the stored video (a number or an array) is its own motion, no jump."""
    return (step >= 0) & (step <= FREE_STEPS)


def coherent_choice(options, distances, frames, pose_difference, jump_weight, jump_floor):
    """For each query t, the index of a stored frame: among its candidates `options` (T, K), at `distances` (T, K)
    (closest() gives both), the choice that minimises distance + jump_weight x (pose_difference(previous, chosen) +
    jump_floor), a jump being free when the chosen frame follows the previous one in the video (`frames`, the
    stored frames' numbers); each decided once the next LAG queries are known. pose_difference(is, js) gives the
    (len(is), len(js)) differences between stored frames is and js."""

    def jump_costs(previous, following):
        step = frames[following][None] - frames[previous][:, None]
        jump = jump_weight * (pose_difference(previous, following) + jump_floor)
        return np.where(own_step(step), 0.0, jump)  # the video's own next frames are free

    unary = list(distances)
    steps = [jump_costs(options[t], options[t + 1]) for t in range(len(distances) - 1)]  # from t to t + 1
    chosen = []
    for t in range(len(distances)):
        end = min(len(distances), t + LAG + 1)
        start_cost = unary[t] + (jump_costs(np.array([chosen[-1]]), options[t])[0] if chosen else 0)
        path = viterbi([start_cost] + unary[t + 1:end], steps[t:end - 1])
        chosen.append(int(options[t][path[0]]))
    return chosen


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
