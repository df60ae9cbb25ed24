"""Writing and reading back real .mp4 files, through PyAV's H.264 and through OpenCV's mp4v."""
import json
import threading

import av
import numpy as np
import pytest

import VideoIO
from conftest import assert_one_line_error, run_program
from Runtime import UserError


def write_ramp(path, frames=24, size=(96, 64)):
    with VideoIO.VideoWriter(path, 12, size) as video:
        for i in range(frames):
            video.write(np.full((size[1], size[0], 3), 8 * i, np.uint8))
    return video


@pytest.mark.parametrize("codec", ["h264", "mp4v"])
def test_written_video_reads_back_with_every_frame(tmp_path, monkeypatch, codec):
    if codec == "mp4v":  # the fallback, where PyAV's encoder is missing
        monkeypatch.setattr(VideoIO, "h264_available", lambda: False)
    path = tmp_path / "ramp.mp4"
    video = write_ramp(path)
    assert video.codec == codec
    frames = list(VideoIO.read_frames(path))
    assert [i for i, _ in frames] == list(range(24))
    assert frames[0][1].shape == (64, 96, 3)
    assert abs(int(frames[10][1].mean()) - 80) <= 3  # the content survives, not just the count
    assert VideoIO.video_info(path)["fps"] == pytest.approx(12)
    assert not list(tmp_path.glob(".*partial*"))
    with av.open(str(path)) as container:  # what a browser or player will find in the file
        stream = container.streams.video[0]
        assert stream.codec_context.name == ("h264" if codec == "h264" else "mpeg4")
        assert (stream.codec_context.width, stream.codec_context.height) == (96, 64)
        assert sum(1 for _ in container.decode(stream)) == 24
        if codec == "h264":
            assert stream.codec_context.pix_fmt == "yuv420p"
            assert stream.codec_context.colorspace == 6 and stream.codec_context.color_range == 1  # BT.601, limited


def test_written_video_keeps_the_colours_of_flat_and_real_frames(tmp_path, sample_videos):
    """The colours come back as written: mid-grey once came back as (123, 126, 124), PyAV's own BGR to YUV path
    and the decoders' matrix disagreeing. Real footage keeps its mean colour within a level or two (what is left
    is H.264's loss and the halved chroma)."""
    real = [frame for _, frame in VideoIO.read_frames(sample_videos[1], step=20)][:4]
    height, width = real[0].shape[:2]
    flats = [np.full((height, width, 3), colour, np.uint8) for colour in ((128, 128, 128), (40, 90, 200))]
    path = tmp_path / "colours.mp4"
    with VideoIO.VideoWriter(path, 25, (width, height)) as video:
        for frame in flats + real:
            video.write(frame)
    back = [frame for _, frame in VideoIO.read_frames(path)]
    assert len(back) == len(flats) + len(real)
    bias = [np.abs((read.astype(float) - written).reshape(-1, 3).mean(axis=0)).max()
            for written, read in zip(flats + real, back)]
    assert bias[0] < 1.0 and bias[1] <= 2.0, bias  # grey exact; a colour within YUV's 8-bit rounding
    assert max(bias[len(flats):]) < 1.8, bias  # 2.5 through PyAV's own conversion


def test_read_frames_with_a_step_and_early_stop(tmp_path):
    path = tmp_path / "ramp.mp4"
    write_ramp(path)
    assert [i for i, _ in VideoIO.read_frames(path, step=5)] == [0, 5, 10, 15, 20]
    before = set(threading.enumerate())
    frames = VideoIO.read_frames(path, prefetch=2)  # a queue shorter than the video: the reader waits to put more
    for i, _ in frames:
        if i == 2:
            break
    readers = [thread for thread in threading.enumerate() if thread not in before]
    assert len(readers) == 1 and readers[0].is_alive()  # still decoding ahead while the loop holds the generator
    # Closing the generator is what leaving the loop does once it is dropped; on a thread of its own, so that a
    # reader that never stops fails this test instead of hanging it.
    closing = threading.Thread(target=frames.close, daemon=True)
    closing.start()
    closing.join(timeout=5)
    readers[0].join(timeout=1)
    assert not closing.is_alive() and not readers[0].is_alive()  # the decoding thread has ended


def test_writer_refuses_paths_it_cannot_write(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot create the folder"):
        VideoIO.VideoWriter(blocker / "out.mp4", 10, (32, 32))
    with pytest.raises(UserError, match="must end in .mp4"):
        VideoIO.VideoWriter(tmp_path / "out.avi", 10, (32, 32))


def test_fingerprint_tells_files_apart(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"0" * 10_000_000)
    b.write_bytes(b"0" * 9_999_999 + b"1")  # differs only in the last byte, past the first 4 MiB
    assert VideoIO.file_fingerprint(a) != VideoIO.file_fingerprint(b)
    assert VideoIO.file_fingerprint(a) == VideoIO.file_fingerprint(a)


def test_decode_bench_reads_every_sample_frame_with_both_decoders_and_refuses_a_non_video(sample_videos, tmp_path):
    """`bench.py decode`, which chose OpenCV over PyAV for reading: both decoders see all 100 frames of the sample."""
    out = tmp_path / "decode.json"
    result = run_program("src/bench.py", "decode", "--video", sample_videos[0], "--rounds", "1", "--json", out)
    assert result.returncode == 0, result.stderr
    measured = json.loads(out.read_text())
    assert measured["frames"] == {"opencv": 100, "pyav": 100}
    assert all(rate[0] > 0 for rate in measured["frames_per_s"].values())
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video")
    assert_one_line_error(run_program("src/bench.py", "decode", "--video", bad), "no frames OpenCV can decode")
