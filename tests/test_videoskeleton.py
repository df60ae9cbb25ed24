"""VideoSkeleton on the real sample footage with the real MediaPipe detector: detection, crops, the cache."""
import json
import shutil
import time

import numpy as np
import pytest

from conftest import assert_one_line_error, run_program
from VideoSkeleton import VideoSkeleton


def test_sample_target_has_a_person_in_almost_every_frame(sample_target):
    assert sample_target.frames_processed == 100
    assert sample_target.skeCount() >= 95
    image = sample_target.readImage(0)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    # The person stands inside the crop: the hips lie well within it.
    hips = sample_target.landmarks[:, [23, 24], :2]
    assert (hips > 0.1).all() and (hips < 0.9).all()
    assert len(sample_target.ske) == len(sample_target.frame_index) == sample_target.skeCount()


def test_person_masks_cover_the_person_and_not_the_corners(sample_target):
    """MediaPipe's segmentation, cut like the crops: 255 on the person's hips in almost every frame, 0 in the
    crop's corners (the sample's background), and about as large as a person is in the crop."""
    masks = np.stack([sample_target.readMask(i) for i in range(sample_target.skeCount())])
    assert masks.shape == (sample_target.skeCount(), 256, 256) and masks.dtype == np.uint8
    hips = np.clip(np.round(sample_target.landmarks[:, [23, 24], :2].mean(1) * 256).astype(int), 0, 255)
    on_hips = masks[np.arange(len(masks)), hips[:, 1], hips[:, 0]]
    assert (on_hips > 128).mean() >= 0.95
    assert masks[:, :8, :8].max() < 32 and masks[:, :8, -8:].max() < 32
    share = (masks > 128).mean((1, 2))
    assert 0.02 < np.median(share) < 0.4


def test_cache_reloads_fast_without_rebuilding(sample_target, data_dir, capsys):
    started = time.perf_counter()
    again = VideoSkeleton(sample_target.video_path, mod_frame=1, data_dir=data_dir)
    assert time.perf_counter() - started < 2.0
    assert "building" not in capsys.readouterr().out
    np.testing.assert_array_equal(again.landmarks, sample_target.landmarks)
    np.testing.assert_array_equal(again.readImage(5), sample_target.readImage(5))


@pytest.fixture
def small_cache(sample_videos, tmp_path):
    """A cache of every 10th frame of the sample source: quick to rebuild."""
    video = VideoSkeleton(sample_videos[0], mod_frame=10, data_dir=tmp_path)
    assert video.frames_processed == 10
    return video, tmp_path


def rebuild_reason(video_path, data_dir, capsys, **kwargs):
    capsys.readouterr()
    video = VideoSkeleton(video_path, data_dir=data_dir, **{"mod_frame": 10, **kwargs})
    out = capsys.readouterr().out
    return video, out


def test_changed_parameters_rebuild_the_cache(small_cache, capsys):
    video, data_dir = small_cache
    again, out = rebuild_reason(video.video_path, data_dir, capsys, crop_size=128)
    assert "parameters changed: crop_size 256 -> 128" in out
    assert again.readImage(0).shape == (128, 128, 3)


def test_a_foreign_video_with_the_same_name_is_not_taken_for_the_cached_one(small_cache, sample_videos, tmp_path,
                                                                          capsys):
    video, data_dir = small_cache
    impostor = tmp_path / "other" / video.video_path.name
    impostor.parent.mkdir()
    shutil.copy(sample_videos[1], impostor)  # another video under the same file name
    again, out = rebuild_reason(impostor, data_dir, capsys)
    assert "another file named" in out
    assert again.fingerprint != video.fingerprint


@pytest.mark.parametrize("damage", ["manifest", "manifest field", "arrays", "crop", "mask"])
def test_a_damaged_cache_is_rebuilt_with_a_notice(small_cache, capsys, damage):
    video, data_dir = small_cache
    if damage == "manifest":
        (video.dir / "manifest.json").write_text("{not json")
    elif damage == "manifest field":
        manifest = json.loads((video.dir / "manifest.json").read_text())
        del manifest["crop_box"]
        (video.dir / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "arrays":
        (video.dir / "skeletons.npz").write_bytes(b"garbage")
    elif damage == "crop":
        video.imagePath(3).unlink()
    else:
        video.maskPath(3).unlink()
    again, out = rebuild_reason(video.video_path, data_dir, capsys)
    assert "building the skeleton cache" in out
    assert again.skeCount() == video.skeCount()
    assert again.imagePath(3).exists() and again.maskPath(3).exists()


def test_rebuilding_keeps_other_files_such_as_trained_models(small_cache, capsys):
    video, data_dir = small_cache
    model = video.dir / "models" / "keep.pt"
    model.parent.mkdir()
    model.write_bytes(b"weights")
    rebuild_reason(video.video_path, data_dir, capsys, crop_size=64)
    assert model.read_bytes() == b"weights"
    manifest = json.loads((video.dir / "manifest.json").read_text())
    assert manifest["params"]["crop_size"] == 64 and manifest["versions"]["mediapipe"] == "0.10.21"
    assert not list(video.dir.glob(".build-*"))


def test_cli_preprocesses_and_reports(sample_videos, tmp_path):
    result = run_program("src/VideoSkeleton.py", sample_videos[0], "true", "20", "--data-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "5 frames read, a person in 5" in result.stdout
    assert (tmp_path / sample_videos[0].stem / "manifest.json").exists()
    assert "FRAME_MOD" in run_program("src/VideoSkeleton.py", "--help").stdout


@pytest.mark.parametrize("make_input, expected", [
    (lambda d: d / "missing.mp4", "does not exist"),
    (lambda d: (d / "notes.mp4").write_text("not a video") and d / "notes.mp4", "not a video OpenCV can decode"),
    (lambda d: (d / "empty.mp4").write_bytes(b"") or d / "empty.mp4", "is empty"),
    (lambda d: d, "is not a file"),
])
def test_cli_refuses_what_is_not_a_video(tmp_path, make_input, expected):
    assert_one_line_error(run_program("src/VideoSkeleton.py", make_input(tmp_path), "--data-dir", tmp_path), expected)


def test_cli_refuses_a_video_without_a_person(tmp_path):
    import cv2
    path = tmp_path / "empty_room.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(12):
        writer.write(np.full((120, 160, 3), 40 + 10 * i, np.uint8))
    writer.release()
    result = run_program("src/VideoSkeleton.py", path, "--data-dir", tmp_path)
    assert_one_line_error(result, "found no person in any of the 12 frames")
    assert not (tmp_path / "empty_room" / "manifest.json").exists()


def test_a_killed_build_goes_on_from_its_finished_chunks(sample_videos, tmp_path):
    """kill -9 during preprocessing, then the same command again: it goes on from the chunks already finished, and
    the cache is the one an uninterrupted build makes (the same poses, crops and masks)."""
    import os
    import signal
    import subprocess
    import sys

    import cv2

    import VideoIO
    from conftest import SRC
    from Preprocess import chunk_seconds

    video = tmp_path / "ten_fps.mp4"  # the sample target's frames at 10 fps, twice: 200 frames, 4 chunks of 5 s
    frames = [cv2.resize(frame, (540, 960)) for _, frame in VideoIO.read_frames(sample_videos[1])]
    with VideoIO.VideoWriter(video, 10, (540, 960)) as writer:
        for frame in frames + frames[::-1]:
            writer.write(frame)
    assert chunk_seconds(VideoIO.video_info(video)) == 5  # 20 s of video: the shortest chunks
    fresh = VideoSkeleton(video, mod_frame=1, data_dir=tmp_path / "fresh")
    command = [sys.executable, str(SRC / "VideoSkeleton.py"), str(video), "--data-dir", str(tmp_path / "killed")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=SRC.parent,
                               start_new_session=True)
    poses = tmp_path / "killed" / "ten_fps" / ".build" / "poses"
    deadline = time.time() + 300
    while not list(poses.glob("*.npz")) and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the program and its worker processes, as a crash would
    process.wait()
    assert not (tmp_path / "killed" / "ten_fps" / "manifest.json").exists()  # killed before the end
    finished = len(list(poses.glob("*.npz")))
    assert 1 <= finished < 4
    result = run_program("src/VideoSkeleton.py", video, "--data-dir", tmp_path / "killed")
    assert result.returncode == 0, result.stderr
    assert f"going on with the build interrupted earlier: {finished} of 4 chunks" in result.stdout
    again = VideoSkeleton(video, mod_frame=1, data_dir=tmp_path / "killed")
    np.testing.assert_array_equal(again.frame_index, fresh.frame_index)
    np.testing.assert_array_equal(again.landmarks, fresh.landmarks)
    assert again.crop_box == fresh.crop_box
    for i in (0, 77, 150, again.skeCount() - 1):
        np.testing.assert_array_equal(again.readImage(i), fresh.readImage(i))
        np.testing.assert_array_equal(again.readMask(i), fresh.readMask(i))
    assert not (tmp_path / "killed" / "ten_fps" / ".build").exists()
