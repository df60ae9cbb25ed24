"""DanceDemo end to end on the real sample footage, and the inputs it must refuse."""
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import VideoIO
from conftest import assert_one_line_error, run_program


def count_frames(path):
    return sum(1 for _ in VideoIO.read_frames(path))


def test_demo_writes_a_playable_side_by_side_video(sample_videos, data_dir, tmp_path, sample_target):
    source, target = sample_videos
    out = tmp_path / "dance.mp4"
    result = run_program("src/DanceDemo.py", "--gen-type", "1", "--source", source, "--target", target,
                         "--out", out, "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}: 100 frames" in result.stdout
    assert count_frames(out) == 100
    info = VideoIO.video_info(out)
    assert (info["width"], info["height"]) == (1024, 512)
    with av.open(str(out)) as container:  # H.264, which browsers and phones play
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    # The right half is a real target crop, scaled up: it matches one of the target's frames closely.
    _, frame = next(VideoIO.read_frames(out))
    generated = cv2.resize(frame[:, 512:], (256, 256), interpolation=cv2.INTER_AREA).astype(float)
    errors = [np.abs(generated - sample_target.readImage(i)).mean() for i in range(sample_target.skeCount())]
    assert min(errors) < 6


def test_frames_without_a_person_are_shown_not_skipped(sample_videos, data_dir, tmp_path):
    """A source with 6 empty frames before the person walks in: every frame is in the output, in order."""
    source = tmp_path / "late_entry.mp4"
    with VideoIO.VideoWriter(source, 30, (540, 960)) as video:
        for i in range(6):
            video.write(np.full((960, 540, 3), 90, np.uint8))
        for i, frame in VideoIO.read_frames(sample_videos[0], step=4):
            video.write(cv2.resize(frame, (540, 960)))
    out = tmp_path / "late.mp4"
    result = run_program("src/DanceDemo.py", "--source", source, "--target", sample_videos[1], "--out", out,
                         "--data-dir", data_dir, "--size", "128")
    assert result.returncode == 0, result.stderr
    frames = [frame for _, frame in VideoIO.read_frames(out)]
    assert len(frames) == 6 + 25
    # The generated panel of an empty frame is the grey "no pose" panel; of a frame with a person, a real crop.
    assert abs(frames[0][:, 128:].mean() - 64) < 10
    assert frames[-1][:, 128:].std() > 20


def test_show_without_a_display_still_writes_the_video(sample_videos, data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "shown.mp4"
    result = run_program("src/DanceDemo.py", "--source", sample_videos[0], "--target", sample_videos[1],
                         "--out", out, "--data-dir", data_dir, "--show")
    assert result.returncode == 0, result.stderr
    assert "no display found" in result.stdout
    assert count_frames(out) == 100


@pytest.mark.parametrize("case, expected", [
    ("missing source", "does not exist"),
    ("text file", "not a video OpenCV can decode"),
    ("empty file", "is empty"),
    ("unknown gen type", "unknown GEN_TYPE 9"),
    ("unwritable output", "cannot create the folder"),
    ("read-only folder", "is not writable"),
    ("not mp4", "must end in .mp4"),
])
def test_demo_refuses_bad_input_in_one_line(sample_videos, data_dir, tmp_path, case, expected):
    source, target = sample_videos
    args = {"--gen-type": "1", "--source": source, "--target": target, "--out": tmp_path / "o.mp4"}
    if case == "missing source":
        args["--source"] = tmp_path / "nope.mp4"
    elif case == "text file":
        args["--target"] = tmp_path / "text.mp4"
        args["--target"].write_text("hello")
    elif case == "empty file":
        args["--source"] = tmp_path / "empty.mp4"
        args["--source"].write_bytes(b"")
    elif case == "unknown gen type":
        args["--gen-type"] = "9"
    elif case == "unwritable output":
        (tmp_path / "file").write_text("x")
        args["--out"] = tmp_path / "file" / "o.mp4"
    elif case == "read-only folder":  # a folder that exists, which even root cannot write in
        if not Path("/proc").is_dir():
            pytest.skip("no /proc here")
        args["--out"] = Path("/proc/o.mp4")
    elif case == "not mp4":
        args["--out"] = tmp_path / "o.gif"
    result = run_program("src/DanceDemo.py", *[str(x) for pair in args.items() for x in pair],
                         "--data-dir", data_dir)
    assert_one_line_error(result, expected)
    assert not (tmp_path / "o.mp4").exists()


def test_a_missing_source_is_said_before_the_target_is_preprocessed(sample_videos, tmp_path):
    result = run_program("src/DanceDemo.py", "--source", tmp_path / "nope.mp4", "--target", sample_videos[1],
                         "--data-dir", tmp_path / "data")
    assert_one_line_error(result, "does not exist")
    assert not (tmp_path / "data" / sample_videos[1].stem).exists()  # no minutes spent on the target first


def test_demo_rebuilds_a_corrupt_cache_and_still_works(sample_videos, tmp_path):
    source, target = sample_videos
    first = run_program("src/VideoSkeleton.py", source, "false", "10", "--data-dir", tmp_path)
    assert first.returncode == 0, first.stderr
    (tmp_path / source.stem / "manifest.json").write_text("garbage")
    out = tmp_path / "o.mp4"
    result = run_program("src/DanceDemo.py", "--source", target, "--target", source, "--target-mod-frame", "10",
                         "--out", out, "--data-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "manifest is unreadable" in result.stdout
    assert count_frames(out) == 100


def test_the_dance_carries_the_source_s_sound_in_step_unless_asked_not_to(sample_videos, data_dir, tmp_path):
    """The sample's source camera given a soundtrack (a tone from 0.5 s on): the demo's video carries it, as long as
    the video within one frame and with the tone still at 0.5 s; with --no-audio, no sound."""
    from test_videoio import sound_of, write_with_sound

    images = [cv2.resize(frame, (540, 960)) for _, frame in VideoIO.read_frames(sample_videos[0])]
    source = write_with_sound(tmp_path / "with_sound.mp4", frames=len(images), fps=60, beep_at=0.5, size=(540, 960),
                              images=images)
    for flags, expect_sound in (([], True), (["--no-audio"], False)):
        out = tmp_path / f"dance{len(flags)}.mp4"
        result = run_program("src/DanceDemo.py", "--source", source, "--target", sample_videos[1], "--out", out,
                             "--data-dir", data_dir, "--size", "128", *flags)
        assert result.returncode == 0, result.stderr
        assert ("with the source's audio" in result.stdout) == expect_sound
        video_seconds, audio_seconds, onset = sound_of(out)
        assert video_seconds == pytest.approx(100 / 60, abs=1 / 60)
        if expect_sound:
            assert audio_seconds == pytest.approx(video_seconds, abs=1 / 60) and onset == pytest.approx(0.5, abs=1 / 60)
        else:
            assert audio_seconds is None


def test_the_target_layout_gives_the_target_s_whole_frame_with_no_seam(sample_videos, data_dir, sample_target,
                                                                       tmp_path):
    """--layout target: the target's own size and shape (the sample's portrait 1080 x 1920), its background as it
    is outside the crop box, and no seam at the box's edges: the step across each edge inside the picture is no
    larger than in the target's real frame at the same place."""
    _, target = sample_videos
    source = tmp_path / "every_fourth.mp4"  # a short source: 25 of the sample's frames (writing 1080 x 1920 is slow)
    with VideoIO.VideoWriter(source, 15, (1080, 1920)) as video:
        for _, frame in VideoIO.read_frames(sample_videos[0], step=4):
            video.write(frame)
    out = tmp_path / "whole.mp4"
    result = run_program("src/DanceDemo.py", "--layout", "target", "--source", source, "--target", target,
                         "--out", out, "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    frames = [frame for _, frame in VideoIO.read_frames(out)]
    real = [frame for _, frame in VideoIO.read_frames(target)][:25]
    assert len(frames) == 25 and frames[0].shape == real[0].shape == (1920, 1080, 3)
    x0, y0, side = sample_target.crop_box
    top, bottom, right = max(y0, 0), min(y0 + side, 1920), min(x0 + side, 1080)
    outside = np.ones((1920, 1080), bool)
    outside[top:bottom, max(x0, 0):right] = False
    assert outside.mean() > 0.3  # the sample's box leaves a good part of the frame outside it
    assert np.mean([np.abs(f.astype(float) - r)[outside].mean() for f, r in zip(frames, real)]) < 4

    def steps_across_edges(image):
        grey = image.astype(float).mean(2)
        steps = []
        if y0 > 0:
            steps.append(np.abs(grey[top] - grey[top - 1])[max(x0, 0):right].mean())
        if bottom < 1920:
            steps.append(np.abs(grey[bottom] - grey[bottom - 1])[max(x0, 0):right].mean())
        if right < 1080:
            steps.append(np.abs(grey[:, right] - grey[:, right - 1])[top:bottom].mean())
        return np.array(steps)

    for index in (5, 12, 20):
        assert len(steps_across_edges(frames[index])) >= 2
        assert (steps_across_edges(frames[index]) < 1.5 * steps_across_edges(real[index]) + 0.5).all(), index


def test_a_variable_frame_rate_source_keeps_its_frame_times_and_its_sound_in_step(sample_videos, data_dir, tmp_path):
    """A phone-like source whose frames come at uneven intervals (1/60 s, then 1/20 s, in turn), with a tone from
    1 s on: every frame of the dance is shown at its source frame's own time, and the sound stays in step."""
    from fractions import Fraction

    from test_videoio import sound_of

    images = [cv2.resize(frame, (540, 960)) for _, frame in VideoIO.read_frames(sample_videos[0])]
    times = np.cumsum([0] + [1 / 60 if i % 2 else 1 / 20 for i in range(len(images) - 1)])
    source = tmp_path / "phone.mp4"
    with av.open(str(source), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 540, 960, "yuv420p"
        video.codec_context.time_base = Fraction(1, 600)
        audio = container.add_stream("aac", rate=44100)
        t = np.arange(int((times[-1] + 1 / 20) * 44100)) / 44100
        tone = np.where(t >= 1.0, 0.5 * np.sin(2 * np.pi * 440 * t), 0).astype(np.float32)[None].repeat(2, 0)
        for start in range(0, tone.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + 1024]), format="fltp",
                                               layout="stereo")
            chunk.sample_rate, chunk.pts = 44100, start
            for packet in audio.encode(chunk):
                container.mux(packet)
        for image, time in zip(images, times):
            picture = av.VideoFrame.from_ndarray(image, format="bgr24")
            picture.pts, picture.time_base = round(time * 600), Fraction(1, 600)
            for packet in video.encode(picture):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    out = tmp_path / "dance.mp4"
    result = run_program("src/DanceDemo.py", "--source", source, "--target", sample_videos[1], "--out", out,
                         "--data-dir", data_dir, "--size", "128")
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as container:
        shown = sorted(float(frame.time) for frame in container.decode(video=0))
    assert len(shown) == len(images)
    assert np.abs(np.array(shown) - times).max() < 0.002
    _, audio_seconds, onset = sound_of(out)
    assert onset == pytest.approx(1.0, abs=1 / 60) and audio_seconds == pytest.approx(times[-1] + 1 / 20, abs=0.05)


def test_the_whole_frame_s_plate_after_a_cut_shows_the_new_view_alone(tmp_path):
    """A target video that cuts, after one second, to another view (its picture mirrored): the whole frame's
    background plate half a second after the cut is that view, not a median of the two views of its 3-second window."""
    from types import SimpleNamespace

    from TargetFrame import TargetFrame
    width, height, fps, count = 128, 96, 30, 60
    first = np.zeros((height, width, 3), np.uint8)
    first[..., 1] = np.linspace(30, 220, width)[None]  # a horizontal ramp ...
    first[20:40, 10:30] = (0, 0, 255)  # ... and a red square at the left
    second = first[:, ::-1].copy()  # the other view
    path = tmp_path / "cut.mp4"
    with VideoIO.VideoWriter(path, fps, (width, height)) as video:
        for index in range(count):
            video.write(first if index < fps else second)
    landmarks = np.zeros((count, 33, 4), np.float32)
    landmarks[..., :2], landmarks[..., 3] = 0.5, 1  # nobody to see: only the background counts here
    target = SimpleNamespace(video_path=path, fps=fps, frame_index=np.arange(count), landmarks=landmarks,
                             crop_box=(16, 0, 96), readMask=lambda index: np.zeros((64, 64), np.uint8))
    canvas = TargetFrame(target)
    after, before = canvas.background(45).astype(float), canvas.background(14).astype(float)
    assert np.abs(after - second).mean() < 4 and np.abs(before - first).mean() < 4
