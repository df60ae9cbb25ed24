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


def write_with_sound(path, frames=90, fps=30, rate=44100, layout="stereo", beep_at=1.0, garbage_every=0, size=(64, 48),
                     images=None):
    """A real .mp4 with H.264 frames and an AAC soundtrack: silence, then a 440 Hz tone from `beep_at` seconds on.
    With garbage_every=N, every N-th audio packet is replaced by random bytes (a damaged track); `images`, BGR
    frames to use instead of flat grey ones."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = layout
        channels = len(av.AudioLayout(layout).channels)
        t = np.arange(int(frames / fps * rate)) / rate
        sound = np.tile(np.where(t >= beep_at, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32),
                        (channels, 1))
        written, packets = 0, 0
        for i in range(frames):
            image = images[i] if images is not None else np.full((size[1], size[0], 3), 3 * i % 255, np.uint8)
            picture = av.VideoFrame.from_ndarray(image, format="bgr24")
            picture.pts = i
            for packet in video.encode(picture):
                container.mux(packet)
            end = round((i + 1) / fps * rate)
            while written + 1024 <= end or (i == frames - 1 and written < end):  # the last chunk may be shorter
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(sound[:, written:written + 1024]),
                                                   format="fltp", layout=layout)
                chunk.sample_rate, chunk.pts = rate, written
                written += chunk.samples
                for packet in audio.encode(chunk):
                    packets += 1
                    if garbage_every and packets % garbage_every == 0:
                        damaged = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                        damaged.pts, damaged.dts, damaged.time_base = packet.pts, packet.dts, packet.time_base
                        damaged.stream = audio
                        packet = damaged
                    container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    return path


def sound_of(path):
    """(video seconds, audio seconds or None, the tone's onset in seconds or None) of an .mp4, as read back."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        video_seconds = float(video.duration * video.time_base)
        if not container.streams.audio:
            return video_seconds, None, None
        stream = container.streams.audio[0]
        samples = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(stream)])
        onset = np.flatnonzero(np.abs(samples) > 0.1)
        return (video_seconds, float(stream.duration * stream.time_base),
                onset[0] / stream.rate if len(onset) else None)


@pytest.mark.parametrize("layout, rate", [("stereo", 44100), ("mono", 8000), ("5.1", 48000)])
def test_the_source_sound_goes_along_cut_to_the_frames_and_in_step(tmp_path, layout, rate):
    """The writer copies a source's soundtrack, whatever its channels and rate, to exactly the frames written (here
    75 of the source's 90, at 30 fps): the audio lasts as long as the video, within one frame, and the tone that
    starts at 1 s in the source starts at 1 s in the output."""
    source = write_with_sound(tmp_path / "source.mp4", rate=rate, layout=layout)
    out = tmp_path / "out.mp4"
    with VideoIO.VideoWriter(out, 30, (64, 48), audio_from=source) as video:
        for _ in range(75):
            video.write(np.full((48, 64, 3), 100, np.uint8))
    assert video.has_audio
    video_seconds, audio_seconds, onset = sound_of(out)
    assert video_seconds == pytest.approx(2.5) and audio_seconds == pytest.approx(video_seconds, abs=1 / 30)
    assert onset == pytest.approx(1.0, abs=1 / 30)


def test_a_source_without_sound_or_with_a_damaged_track_still_gives_a_video(tmp_path, capsys):
    silent = tmp_path / "silent.mp4"
    write_ramp(silent)
    out = tmp_path / "out.mp4"
    with VideoIO.VideoWriter(out, 12, (96, 64), audio_from=silent) as video:
        video.write(np.zeros((64, 96, 3), np.uint8))
    assert not video.has_audio and sound_of(out)[1] is None and "notice" not in capsys.readouterr().out
    # Every audio packet damaged: the video all the same, and a notice.
    broken = write_with_sound(tmp_path / "broken.mp4", garbage_every=1)
    with VideoIO.VideoWriter(out, 30, (64, 48), audio_from=broken) as video:
        for _ in range(30):
            video.write(np.zeros((48, 64, 3), np.uint8))
    assert sum(1 for _ in VideoIO.read_frames(out)) == 30 and sound_of(out)[0] == pytest.approx(1.0)
    assert "notice:" in capsys.readouterr().out
    # A file that is not a video at all, given as the sound's source: a notice, and the video without sound.
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with VideoIO.VideoWriter(out, 30, (64, 48), audio_from=text) as video:
        video.write(np.zeros((48, 64, 3), np.uint8))
    assert not video.has_audio and "notice: the audio of" in capsys.readouterr().out
    # Every fifth packet damaged: those are skipped, with a notice, and the rest stays in step.
    damaged = write_with_sound(tmp_path / "damaged.mp4", garbage_every=5)
    with VideoIO.VideoWriter(out, 30, (64, 48), audio_from=damaged) as video:
        for _ in range(60):
            video.write(np.zeros((48, 64, 3), np.uint8))
    video_seconds, audio_seconds, onset = sound_of(out)
    assert video.has_audio and audio_seconds == pytest.approx(video_seconds, abs=1 / 30)
    assert onset == pytest.approx(1.0, abs=0.05)  # within the damaged packet's 23 ms
    assert "damaged packets of the source's audio were skipped" in capsys.readouterr().out
