"""Smoothing: steady source poses for DanceDemo and Evaluate's transfer.

MediaPipe's joints jump by a few pixels from one frame to the next even when the person stands still, and a
generator turns every jump into a shaking person. Two steps, both on by default (--no-smooth turns them off):

1. Gaps: a few frames where MediaPipe found nobody, or where a joint was barely visible, are filled by linear
   interpolation between the frames on either side (up to MAX_GAP_SECONDS); longer gaps stay empty.
2. The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) on every coordinate of every joint: a low-pass filter
   whose cut-off rises with the joint's speed, so a still joint is held steady (little jitter) and a fast one
   follows with little lag. Coordinates are measured in torso lengths, so the same parameters suit a person who
   fills the frame and one far away, and time in seconds, so they suit any frame rate.

The parameters, in one place:
"""
import numpy as np

from Skeleton import torso_length

MIN_CUTOFF_HZ = 1.0      # cut-off of a still joint: lower is steadier, but lags more when motion starts
BETA = 5.0               # how fast the cut-off rises with speed (per torso length per second): higher lags less
# With these, on a joint swinging 0.2 torso lengths at 0.5 Hz with 0.01 of detector noise (tests/test_smoothing.py):
# the frame-to-frame shake falls to 0.38 of the raw signal's, for a mean error of 0.014 torso lengths; beta 0.7 cut
# the shake to 0.2 but lagged 0.03 behind, beta 20 followed closely but kept 0.57 of the shake.
DERIVATIVE_CUTOFF_HZ = 1.0
MIN_VISIBILITY = 0.3     # a joint less visible than this is treated as missing in that frame and interpolated
MAX_GAP_SECONDS = 0.25   # gaps up to this long are filled by interpolation


def smoothing_alpha(cutoff_hz, fps):
    """Weight of the new sample in an exponential low-pass filter with this cut-off at this sampling rate."""
    tau = 1.0 / (2 * np.pi * cutoff_hz)
    return 1.0 / (1.0 + tau * fps)


def one_euro(values, fps, scale=1.0, min_cutoff=MIN_CUTOFF_HZ, beta=BETA, d_cutoff=DERIVATIVE_CUTOFF_HZ):
    """One Euro filter along axis 0 of `values` (T, ...), every other axis an independent signal; `scale` is the
    unit the speed is measured in (a torso length). Causal: frame t depends only on frames up to t."""
    values = np.asarray(values, np.float64)
    out = np.empty_like(values)
    out[0] = values[0]
    derivative = np.zeros_like(values[0])
    alpha_d = smoothing_alpha(d_cutoff, fps)
    for t in range(1, len(values)):
        speed = (values[t] - out[t - 1]) * fps / scale
        derivative = alpha_d * speed + (1 - alpha_d) * derivative
        alpha = smoothing_alpha(min_cutoff + beta * np.abs(derivative), fps)
        out[t] = alpha * values[t] + (1 - alpha) * out[t - 1]
    return out


def fill_gaps(landmarks, frame_index, max_gap):
    """Interpolate frames (and single joints of low visibility) missing for at most `max_gap` frames in a row.

    landmarks: (N, 33, 4) of the frames `frame_index` (increasing) where a person was found. Returns (landmarks,
    frame_index, frames filled, joints filled) over every frame from the first to the last that can be filled.
    """
    first, last = int(frame_index[0]), int(frame_index[-1])
    full = np.full((last - first + 1,) + landmarks.shape[1:], np.nan, np.float64)
    full[frame_index - first] = landmarks
    known = ~np.isnan(full[:, 0, 0])
    visible = known[:, None] & (np.nan_to_num(full[:, :, 3]) >= MIN_VISIBILITY)
    joints_filled = 0
    for joint in range(full.shape[1]):
        seen = np.flatnonzero(visible[:, joint])
        if len(seen) < 2:
            continue
        for start, end in zip(seen[:-1], seen[1:]):
            if 1 < end - start <= max_gap + 1:
                steps = np.linspace(0, 1, end - start + 1)[1:-1, None]
                coordinates = full[start, joint, :3] + steps * (full[end, joint, :3] - full[start, joint, :3])
                full[start + 1:end, joint, :3] = coordinates
                joints_filled += int(known[start + 1:end].sum())
                # a filled frame's joint counts as moderately visible: it is a guess, but a good one
                full[start + 1:end, joint, 3] = np.where(known[start + 1:end], full[start + 1:end, joint, 3],
                                                         MIN_VISIBILITY)
    now_known = ~np.isnan(full[:, :, :3]).any(axis=(1, 2))
    keep = np.flatnonzero(now_known)
    return (full[keep].astype(np.float32), keep + first, int(now_known.sum() - known.sum()), joints_filled)


def smooth_poses(landmarks, frame_index, fps):
    """Gap filling then the One Euro filter on a video's poses. Returns (landmarks, frame_index, report), the
    report a line saying what was filled, for the log."""
    max_gap = max(1, int(round(MAX_GAP_SECONDS * fps)))
    filled, index, frames_filled, joints_filled = fill_gaps(np.asarray(landmarks, np.float32),
                                                            np.asarray(frame_index), max_gap)
    torso = np.median(torso_length(filled))
    smoothed = filled.copy()
    # Runs of consecutive frames are filtered apart: a long gap restarts the filter instead of dragging across it.
    breaks = np.flatnonzero(np.diff(index) > 1) + 1
    for run in np.split(np.arange(len(index)), breaks):
        smoothed[run, :, :3] = one_euro(filled[run, :, :3], fps, scale=max(float(torso), 1e-3))
    report = (f"source poses smoothed (One Euro, min cut-off {MIN_CUTOFF_HZ:g} Hz, beta {BETA:g}); gaps of up to "
              f"{max_gap} frames filled: {frames_filled} frames without a person, {joints_filled} hidden joints")
    return smoothed, index, report
