"""Evaluate's measures on known cases, and a small evaluation end to end on the sample footage."""
import json

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, run_program
from Evaluate import scored_frames
from Measures import MIRRORED, person_ssim_breakdown, pose_scores, temporal_flow_error


def test_pose_distance_of_a_known_shift():
    rng = np.random.default_rng(0)
    driving = rng.uniform(0.2, 0.8, (10, 13, 2))
    shifted = [d + (0.03, 0.04) for d in driving]  # 0.05 of the side
    scores = pose_scores(shifted, driving, size=128)
    assert scores["pose_distance_pct"] == pytest.approx(5.0)
    assert scores["pose_distance_px"] == pytest.approx(6.4)
    assert scores["missed_rate"] == 0
    assert scores["jitter"] == pytest.approx(0, abs=1e-9)  # a constant shift does not shake


def test_missed_frames_and_mirrored_labels():
    rng = np.random.default_rng(1)
    driving = rng.uniform(0.2, 0.8, (4, 13, 2))
    detected = [driving[0], None, driving[2][MIRRORED], None]  # the third labelled left for right
    scores = pose_scores(detected, driving, size=100)
    assert scores["missed_rate"] == 0.5
    assert scores["pose_distance_px"] == pytest.approx(0, abs=1e-9)
    assert "jitter" not in scores  # no three consecutive detections


def test_jitter_of_a_shaking_pose():
    driving = np.full((6, 13, 2), 0.5)
    driving[:, :, 0] += np.linspace(0, 0.3, 6)[:, None]  # moving smoothly: no shake in itself
    shaking = [d + (0.01 * (-1) ** i, 0) for i, d in enumerate(driving)]  # +-1% every other frame
    assert pose_scores(shaking, driving, size=100)["jitter"] == pytest.approx(4.0)  # |1 - 2(-1) + 1| = 4 px


def test_a_static_sequence_has_no_flow_difference():
    rng = np.random.default_rng(2)
    frame = (rng.uniform(0, 255, (64, 64, 3))).astype(np.uint8)
    still = [frame] * 5
    assert temporal_flow_error(still, still, range(4)) == pytest.approx(0, abs=1e-6)
    moving = [np.roll(frame, 2 * i, axis=1) for i in range(5)]
    assert temporal_flow_error(still, moving, range(4)) > 0.5  # the real frames move, the generated do not


def test_a_long_video_is_scored_on_runs_of_consecutive_frames_spread_over_its_held_out_end():
    held = np.arange(7000, 10000)  # a 10-minute target's 3,000 held-out frames
    scored = scored_frames(held, 1000)
    assert len(scored) == 1000 and scored[0] == 7000 and scored[-1] == 9999 and len(set(scored)) == 1000
    assert (np.diff(scored) == 1).sum() == 900  # 100 runs of 10 consecutive frames: 9 pairs each
    assert scored_frames(held[:500], 1000) is not None and len(scored_frames(held[:500], 1000)) == 500


def test_person_ssim_breakdown_tells_person_from_background():
    rng = np.random.default_rng(3)
    real = [rng.uniform(0, 255, (64, 64, 3)).astype(np.uint8) for _ in range(2)]
    masks = [np.zeros((64, 64), np.uint8) for _ in range(2)]
    for m in masks:
        m[16:48, 24:40] = 255  # the person: a block in the middle of the box
    driving = np.tile(np.array([[0.35, 0.2], [0.65, 0.8]]), (2, 1, 1))
    # A generator that gets the background right and the person wrong: only the person's composite loses.
    generated = [np.where(m[..., None] > 0, 255 - r, r).astype(np.uint8) for r, m in zip(real, masks)]
    scores = person_ssim_breakdown(generated, real, masks, driving, 64, np.array([True, False]))
    assert scores["ssim_person_real_person"] == pytest.approx(1, abs=1e-4)
    assert scores["ssim_person_real_background"] < 0.8
    assert scores["larger_than_trained"] == 1
    assert scores["ssim_person_larger"] == pytest.approx(scores["ssim_person_trained_sizes"], abs=0.2)
    assert "ssim_person_larger" not in person_ssim_breakdown(real, real, masks, driving, 64, np.array([False, False]))


def test_evaluation_end_to_end_on_the_sample(trained, sample_videos, data_dir, tmp_path):
    source, target = sample_videos
    out = tmp_path / "scores.json"
    result = run_program("src/Evaluate.py", "--target", target, "--source", source, "--gen-type", "1", "3", "4",
                         "--baseline", "--json", out, "--report", tmp_path / "report", "--data-dir", data_dir,
                         "--score-size", "64", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["split"] == {"frames": 100, "train": 80, "held_out": 20, "scored": 20, "val_fraction": 0.2,
                               "consecutive_pairs": 19}
    rows = report["generators"]
    assert list(rows) == ["real", "1", "3", "4", "baseline"]
    assert rows["real"]["missed_rate"] < 0.5 and rows["real"]["tof"] == 0 and rows["real"]["sharpness"] > 0
    assert rows["real"]["sharpness_ratio"] == 1.0 and report["image_size"] == 64
    assert all(0 < rows[row]["ssim_face"] <= 1 and rows[row]["sharpness_ratio"] > 0 for row in ("1", "3", "4"))
    nearest = rows["1"]
    assert 10 < nearest["psnr"] < 60 and 0 < nearest["ssim"] <= 1 and 0 <= nearest["missed_rate"] <= 1
    assert nearest["gen_fps"] > 0 and nearest["demo_fps"] > 0 and "transfer_missed_rate" in nearest
    assert nearest["transfer_warp_error"] >= 0 and "transfer_shake" in nearest
    assert rows["4"]["gen_fps_batched"] > 0 and rows["4"]["trained_epochs"] == 1
    for row in ("1", "3", "4"):
        assert 0 < rows[row]["ssim_person_real_background"] <= 1 and 0 < rows[row]["ssim_person_real_person"] <= 1
    assert "ssim_person_real_person" not in rows["real"]
    for name in ("report.md", "contact_sheet.png", "metrics.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert "| 1 nearest neighbour |" in (tmp_path / "report" / "report.md").read_text()


def test_psnr_and_ssim_of_an_evaluation_are_those_of_independent_code(sample_videos, data_dir, sample_target,
                                                                     tmp_path):
    """Evaluate's PSNR and SSIM for nearest neighbour, frame by frame (--no-smooth), on the sample's held-out frames,
    against independent code: the nearest training frame found by a plain loop over the joints, then
    scikit-image's PSNR (all channels, peak 255) and SSIM (grey, Gaussian window of sigma 1.5) on the same 64-px
    crops."""
    import cv2
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    out = tmp_path / "nearest.json"
    result = run_program("src/Evaluate.py", "--target", sample_videos[1], "--gen-type", "1", "--no-smooth",
                         "--json", out, "--score-size", "64", "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    row = json.loads(out.read_text())["generators"]["1"]

    count = sample_target.skeCount()
    held_out = count - round(0.2 * count)
    joints = sample_target.landmarks[:, [0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]]

    def distance(a, b):  # the visibility-weighted mean distance of the 13 joints, one joint at a time
        weights = [min(max(ja[3], 0), 1) * min(max(jb[3], 0), 1) + 1e-3 for ja, jb in zip(joints[a], joints[b])]
        lengths = [((ja[0] - jb[0]) ** 2 + (ja[1] - jb[1]) ** 2) ** 0.5 for ja, jb in zip(joints[a], joints[b])]
        return sum(w * d for w, d in zip(weights, lengths)) / sum(weights)

    def crop(i):
        return cv2.resize(sample_target.readImage(i), (64, 64), interpolation=cv2.INTER_AREA)

    psnrs, ssims = [], []
    for i in range(held_out, count):
        nearest = min(range(held_out), key=lambda j: distance(i, j))
        real, generated = crop(i), crop(nearest)
        psnrs.append(peak_signal_noise_ratio(real, generated, data_range=255))
        ssims.append(structural_similarity(cv2.cvtColor(real, cv2.COLOR_BGR2GRAY),
                                           cv2.cvtColor(generated, cv2.COLOR_BGR2GRAY), gaussian_weights=True,
                                           sigma=1.5, use_sample_covariance=False, data_range=255))
    assert row["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-3)
    assert row["ssim"] == pytest.approx(np.mean(ssims), abs=0.002)
    assert 0.3 < row["ssim"] < 0.99  # real frames of one man that differ: neither noise nor copies


def test_evaluation_refuses_a_missing_model(sample_videos, tmp_path):
    result = run_program("src/Evaluate.py", "--target", sample_videos[1], "--gen-type", "4", "--json",
                         tmp_path / "x.json", "--data-dir", tmp_path)
    assert_one_line_error(result, "no trained gan model")


def test_the_sharpness_ratio_and_the_face_s_ssim_on_real_frames(sample_target):
    """On the sample's real crops and poses: the sharpness of a blurred copy is a fraction of the real frames', the
    real frames' own ratio 1; the face's box holds the nose and is about a head across, and blurring inside it costs
    the face's SSIM while blurring elsewhere leaves it whole."""
    from Measures import face_box, face_ssims, sharpnesses
    from Skeleton import REDUCED_JOINTS, torso_length

    picks = range(0, 100, 10)
    frames = [sample_target.readImage(i) for i in picks]
    landmarks = sample_target.landmarks[list(picks)]
    driving = landmarks[:, REDUCED_JOINTS, :2]
    real = sharpnesses(frames, driving, 256)
    assert (sharpnesses(frames, driving, 256) / real == 1).all()
    blurred = [cv2.GaussianBlur(frame, (0, 0), 2) for frame in frames]
    assert np.mean(sharpnesses(blurred, driving, 256) / real) < 0.5
    boxes = [face_box(pose, 256) for pose in landmarks]
    for (x0, y0, x1, y1), pose in zip(boxes, landmarks):
        nose = pose[0, :2] * 256
        assert x0 <= nose[0] <= x1 and y0 <= nose[1] <= y1
        assert 0.4 < (x1 - x0) / (torso_length(pose) * 256) < 0.6
    face_blurred, elsewhere = [f.copy() for f in frames], [f.copy() for f in frames]
    for image, blur, (x0, y0, x1, y1) in zip(face_blurred, blurred, boxes):
        image[y0:y1, x0:x1] = blur[y0:y1, x0:x1]
    for image, blur, (x0, y0, x1, y1) in zip(elsewhere, blurred, boxes):
        image[y1:] = blur[y1:]  # everything below the face
    assert face_ssims(face_blurred, frames, landmarks, 256).mean() < 0.95
    assert face_ssims(elsewhere, frames, landmarks, 256).mean() == pytest.approx(1, abs=1e-4)
