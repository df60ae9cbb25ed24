"""Steady motion: the One Euro filter, gap filling and the coherent choice of nearest neighbours, on hand-made cases
with known answers; then the --no-smooth switch of the real programs on the sample."""
import json

import numpy as np
import pytest

from conftest import run_program
from GenNearest import GenNearest
import Sequence
from Sequence import closest, crossfades, viterbi, viterbi_uniform
from Skeleton import Skeleton
from Smoothing import fill_gaps, one_euro, smooth_poses


def test_one_euro_removes_most_noise_and_follows_motion_with_a_small_lag():
    fps = 30
    t = np.arange(300) / fps
    truth = 0.2 * np.sin(2 * np.pi * 0.5 * t)  # a joint swinging once every 2 s, 0.2 torso lengths
    noisy = truth + np.random.default_rng(0).normal(0, 0.01, t.shape)
    smooth = one_euro(noisy, fps)
    shake = np.abs(np.diff(smooth, 2))[30:].mean() / np.abs(np.diff(noisy, 2))[30:].mean()
    assert shake < 0.5  # frame-to-frame shake cut by more than half
    assert np.abs(smooth - truth)[30:].mean() < 0.02  # and within 2% of a torso length of the truth
    lags = range(0, 10)
    best_lag = min(lags, key=lambda k: np.abs(smooth[30 + k:] - truth[30:len(truth) - k]).mean())
    assert best_lag <= 3  # at most 0.1 s behind


def test_a_still_joint_stays_still_and_a_jump_is_followed():
    steps = np.r_[np.zeros(30), np.ones(30)]
    smooth = one_euro(steps, 30)
    assert smooth[:30] == pytest.approx(0) and smooth[-1] == pytest.approx(1, abs=0.02)


def test_gaps_are_filled_by_interpolation_up_to_the_limit():
    landmarks = np.zeros((6, 33, 4), np.float32)
    landmarks[:, :, 3] = 1
    frames = np.array([0, 1, 2, 5, 6, 20])  # frames 3-4 missing (filled), 7-19 missing (too long)
    landmarks[:, :, 0] = frames[:, None] * 0.01
    landmarks[1, 15, 3] = 0.1  # a wrist barely visible in frame 1: interpolated from frames 0 and 2
    landmarks[1, 15, 0] = 0.9
    filled, index, frames_filled, joints_filled = fill_gaps(landmarks, frames, max_gap=3)
    assert index.tolist() == [0, 1, 2, 3, 4, 5, 6, 20]
    assert frames_filled == 2 and joints_filled == 1
    assert filled[3, 0, 0] == pytest.approx(0.03) and filled[4, 0, 0] == pytest.approx(0.04)
    assert filled[1, 15, 0] == pytest.approx(0.01)
    smoothed, index, report = smooth_poses(landmarks, frames, fps=30)
    assert len(smoothed) == len(index) == 8 and "2 frames without a person" in report


def test_viterbi_prefers_a_coherent_path_over_greedy_choices():
    # Three steps, two states. Greedily: state 0, 1, 0. Switching costs 1, so staying in state 0 is cheapest.
    unary = [np.array([0.0, 0.1]), np.array([0.2, 0.0]), np.array([0.0, 0.1])]
    switch = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert viterbi(unary, [switch, switch]) == [0, 0, 0]
    assert viterbi(unary, [switch * 0, switch * 0]) == [0, 1, 0]  # free switching: the greedy path


def test_viterbi_with_one_price_for_every_change_finds_the_same_path_as_the_general_one():
    rng = np.random.default_rng(0)
    for states, steps, change in ((5, 40, 0.3), (30, 200, 0.05), (1, 3, 1.0)):
        unary = list(rng.random((steps, states)))
        matrix = change * (1 - np.eye(states))
        assert viterbi_uniform(iter(unary), change) == viterbi(unary, [matrix] * (steps - 1))


def test_the_closest_candidates_are_those_of_a_full_sort_made_a_slice_at_a_time(monkeypatch):
    monkeypatch.setattr(Sequence, "ROWS_AT_ONCE", 7)  # several slices, the last one short
    distances = np.random.default_rng(1).random((30, 50))
    asked = []

    def rows(start, stop):
        asked.append(stop - start)
        return distances[start:stop]

    options, values = closest(rows, 30, 8)
    assert max(asked) == 7 and sum(asked) == 30
    assert np.array_equal(options, np.argsort(distances, axis=1)[:, :8])
    assert np.array_equal(values, np.sort(distances, axis=1)[:, :8])
    options, _ = closest(rows, 30, 80)  # more candidates than stored frames: all of them
    assert options.shape == (30, 50)


def test_coherent_nearest_neighbour_jumps_less_than_frame_by_frame(sample_target):
    generator = GenNearest(sample_target)
    rng = np.random.default_rng(0)
    queries = []
    for skeleton in sample_target.ske[20:60]:  # a real sequence, with detector-like noise added
        landmarks = skeleton.landmarks.copy()
        landmarks[:, :2] += rng.normal(0, 0.01, (33, 2))
        queries.append(Skeleton(landmarks))
    alone = [int(np.searchsorted(generator.indices, generator.nearest(q)[0])) for q in queries]
    coherent = generator.coherent_choice(queries)
    jumps = lambda choice: sum(not 0 <= b - a <= 2 for a, b in zip(choice, choice[1:]))  # noqa: E731
    assert jumps(coherent) < jumps(alone)


def test_a_jump_becomes_a_dissolve_and_the_video_s_own_steps_do_not():
    frames = np.array([0, 1, 2, 3, 20, 21, 22, 23, 24, 25])  # the stored frames' numbers
    chosen = [0, 1, 1, 3, 4, 5, 6, 7, 8, 9]  # steps of 1, 0 and 2 frames are the video's own; 3 -> 20 is a jump
    steps = crossfades(chosen, frames, fade_frames=4)
    assert [shown for shown, _, _ in steps] == chosen
    assert [weight for _, _, weight in steps[:4]] == [1.0] * 4
    assert [(faded, weight) for _, faded, weight in steps[4:8]] == [(3, 0.2), (3, 0.4), (3, 0.6), (3, 0.8)]
    assert [weight for _, _, weight in steps[8:]] == [1.0, 1.0]


def test_a_dissolve_blends_the_two_real_frames(sample_target):
    generator = GenNearest(sample_target)
    first, second = generator.image(0).astype(float), generator.image(40).astype(float)
    blended = generator.faded_image((40, 0, 0.25)).astype(float)
    assert np.abs(blended - (0.25 * second + 0.75 * first)).max() <= 1
    assert generator.faded_image((40, 0, 1.0)) is generator.image(40)


def test_evaluate_reports_shake_and_warp_error_with_and_without_smoothing(sample_videos, data_dir, tmp_path):
    source, target = sample_videos
    scores = {}
    for flag in ([], ["--no-smooth"]):
        out = tmp_path / f"scores{len(flag)}.json"
        result = run_program("src/Evaluate.py", "--target", target, "--source", source, "--gen-type", "1",
                             "--json", out, "--score-size", "64", "--data-dir", data_dir, *flag)
        assert result.returncode == 0, result.stderr
        scores[bool(flag)] = json.loads(out.read_text())
    assert scores[False]["smooth"] is True and scores[True]["smooth"] is False
    for report in scores.values():
        row = report["generators"]["1"]
        assert row["transfer_warp_error"] >= 0
        assert row["transfer_shake"] is None or row["transfer_shake"] >= 0
    smoothed, raw = scores[False]["generators"]["1"], scores[True]["generators"]["1"]
    assert smoothed["tof"] <= raw["tof"]  # the coherent choice flickers no more than frame-by-frame
