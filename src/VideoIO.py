"""Video in and out: open a video with clear errors, read its frames ahead in a thread, write an .mp4.

Reading decodes on a background thread (OpenCV releases the GIL while it decodes), so the pose detector on the
main thread never waits for frames. Writing encodes H.264 in-process with PyAV (its wheel carries FFmpeg's libx264;
H.264 in yuv420p plays in every browser, phone and player), since the OpenCV wheels carry no H.264 encoder; only if
that encoder is missing does it fall back, with a notice, to OpenCV's MPEG-4 part 2 ('mp4v').
"""
import hashlib
import os
import queue
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # keep FFmpeg's own complaints about a bad file off stderr
import cv2  # noqa: E402  (the variable above must be set before OpenCV loads FFmpeg)

from Runtime import UserError, check_writable  # noqa: E402


def open_video(path):
    """An opened cv2.VideoCapture, or a UserError that says why `path` is not a readable video."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"video '{path}' does not exist")
    if not path.is_file():
        raise UserError(f"'{path}' is not a file: give the path of a video file")
    if path.stat().st_size == 0:
        raise UserError(f"video '{path}' is empty (0 bytes)")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened() or not capture.grab():
        capture.release()
        raise UserError(f"'{path}' is not a video OpenCV can decode: is it a damaged or non-video file?")
    capture.release()
    return cv2.VideoCapture(str(path))  # reopened: seeking back to frame 0 is not exact with every codec


def video_info(path):
    """Width, height, frame rate and frame count, as the container states them (the count can be wrong)."""
    capture = open_video(path)
    info = {"width": int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), "height": int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            "fps": capture.get(cv2.CAP_PROP_FPS) or 25.0, "stated_frames": int(capture.get(cv2.CAP_PROP_FRAME_COUNT))}
    capture.release()
    return info


def read_frames(path, step=1, prefetch=16, with_time=False):
    """Yield (frame_index, BGR frame) for every `step`-th frame, decoded ahead on a background thread; with_time=True,
    (frame_index, BGR frame, its time in seconds), which a variable-frame-rate video (a phone's) needs.

    Frames in between are grabbed but not decoded to pixels, which is much cheaper. The frame count a container
    states can be wrong, so the end is wherever decoding stops.
    """
    capture = open_video(path)
    frames = queue.Queue(maxsize=prefetch)
    stop = threading.Event()
    end = object()

    def put(item):
        while not stop.is_set():
            try:
                frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def decode():
        try:
            index = 0
            while not stop.is_set():
                if index % step == 0:
                    ok, frame = capture.read()
                    item = (index, frame, capture.get(cv2.CAP_PROP_POS_MSEC) / 1000) if with_time else (index, frame)
                    if not ok or not put(item):
                        break
                elif not capture.grab():
                    break
                index += 1
        finally:
            capture.release()
            put(end)

    thread = threading.Thread(target=decode, daemon=True)
    thread.start()
    try:
        while (item := frames.get()) is not end:
            yield item
    finally:
        stop.set()
        thread.join()


def frame_times(path):
    """Every frame's time in seconds from the first, in the order a player shows them (as OpenCV reports them, its
    CAP_PROP_POS_MSEC), from the file's packets, read without decoding; None if they cannot be read."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stamps = sorted(packet.pts for packet in container.demux(stream) if packet.pts is not None)
            unit = stream.time_base  # read while the file is open: a closed one's streams say nothing
    except (av.error.FFmpegError, IndexError):
        return None
    if not stamps or unit is None or len(set(stamps)) != len(stamps):  # frames must be told apart by their times
        return None
    return (np.array(stamps, np.float64) - stamps[0]) * float(unit)


def file_fingerprint(path, chunk=4 << 20):
    """sha256 of a file's size, first and last 4 MiB: tells videos apart without reading gigabytes."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as file:
        digest.update(file.read(chunk))
        if size > chunk:
            file.seek(max(chunk, size - chunk))
            digest.update(file.read(chunk))
    return digest.hexdigest()


TIME_BASE = Fraction(1, 90000)  # the unit of the output's frame times: MPEG's 90 kHz clock


def h264_available():
    """Whether PyAV and its libx264 encoder can be loaded."""
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


class SourceAudio:
    """The soundtrack of a source video, re-encoded as AAC into a writer's container in step with its frames.

    write_until(seconds) puts the source's audio up to that time of the output into the container. Time 0 of the
    output is the source's first video frame: audio before it is dropped, a late start or a gap (a damaged packet
    skipped) is filled with silence, so the sound stays in sync with the frames it belongs to. More than two channels
    are mixed down to stereo. Raises AudioUnavailable when the soundtrack cannot be decoded.
    """

    def __init__(self, input, container):
        import av

        self.input = input
        stream = self.input.streams.audio[0]
        video = self.input.streams.video
        self.start = float(video[0].start_time * video[0].time_base) if video and video[0].start_time else 0.0
        self.rate = stream.codec_context.sample_rate or 44100
        layout = "mono" if stream.codec_context.channels == 1 else "stereo"
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=self.rate)
        self.frames = self._decoded(stream)
        self.fifo = av.AudioFifo()
        self.queued = 0  # samples of the output placed in the fifo, silence included
        self.written = 0  # samples of the output encoded
        self.skipped = 0
        first = next(self.frames, None)  # one frame now, so that an undecodable track is known before any work
        if first is None:
            raise AudioUnavailable("no sound in it can be decoded")
        self.pending = [first]
        self.stream = container.add_stream("aac", rate=self.rate)
        self.stream.layout = layout
        self.container = container

    def _decoded(self, stream):
        """(time in seconds or None, resampled frame) for each frame of the track, skipping damaged packets."""
        import av

        for packet in self.input.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                self.skipped += 1
                continue
            for frame in frames:
                time = frame.time
                for out in self.resampler.resample(frame):
                    yield time, out
                    time = None  # the resampler's later frames follow on

    def _fill(self, samples):
        """Place the source's sound in the fifo up to `samples` of the output (or as far as the track goes)."""
        import av

        while self.queued < samples:
            item = self.pending.pop() if self.pending else next(self.frames, None)
            if item is None:
                return
            time, frame = item
            if time is not None:  # where this frame belongs in the output, in samples
                start = round((time - self.start) * self.rate)
                if start > self.queued:  # a late start or a gap: silence until it
                    silence = np.zeros((len(frame.layout.channels), start - self.queued), np.float32)
                    self._queue(av.AudioFrame.from_ndarray(silence, format="fltp", layout=frame.layout.name))
                elif start + frame.samples <= self.queued:  # wholly before what is already placed
                    continue
                elif start < self.queued:  # partly before: keep its end
                    array = frame.to_ndarray()[:, self.queued - start:]
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(array), format="fltp",
                                                       layout=frame.layout.name)
            self._queue(frame)

    def _queue(self, frame):
        frame.pts, frame.sample_rate = None, self.rate
        self.fifo.write(frame)
        self.queued += frame.samples

    def write_until(self, seconds, last=False):
        """Encode the output's audio up to `seconds`: whole encoder frames, and with last=True the rest too."""
        target = round(seconds * self.rate)
        self._fill(target)
        size = self.stream.codec_context.frame_size or 1024
        while self.written < target:
            count = min(size, target - self.written)
            if count < size and not last:
                break
            frame = self.fifo.read(count, partial=last)
            if frame is None:
                break
            frame.pts = self.written
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.written += frame.samples

    def close(self, seconds):
        """Write the audio up to the output's end, flush the encoder, and say if damaged packets were skipped."""
        self.write_until(seconds, last=True)
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.input.close()
        if self.skipped:
            print(f"notice: {self.skipped} damaged packets of the source's audio were skipped (silence there)")


class AudioUnavailable(Exception):
    """The source's soundtrack cannot be copied; the message says why."""


def source_audio(source, container):
    """A SourceAudio writing `source`'s soundtrack into `container`, or None: for a source without sound, and, with
    a notice, for one whose sound cannot be read (the video is written all the same)."""
    import av

    try:
        input = av.open(str(source))
    except av.error.FFmpegError as error:
        print(f"notice: the audio of {source} cannot be read ({error.strerror}): writing the video without it")
        return None
    if not input.streams.audio:
        input.close()
        return None
    try:
        return SourceAudio(input, container)
    except (AudioUnavailable, av.error.FFmpegError, ValueError) as error:
        input.close()
        print(f"notice: the audio of {source} cannot be read ({error}): writing the video without it")
        return None


class VideoWriter:
    """Write same-sized BGR frames to an .mp4, atomically: the file appears complete when the writer closes.

    With `audio_from` (a video file), its soundtrack goes along, cut to the frames written and in step with them;
    a source without sound, or whose sound cannot be decoded, gives a silent video (with a notice for the latter).
    Use as a context manager. Frames written before an error or Ctrl-C are still saved.
    """

    def __init__(self, path, fps, frame_size, audio_from=None):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise UserError(f"output '{self.path}' must end in .mp4")
        check_writable(self.path)
        self.fps, self.frame_size = float(fps), tuple(frame_size)  # (width, height)
        self.partial = self.path.with_name(f".{self.path.stem}.partial.mp4")
        self.frames, self.audio, self.end = 0, None, 0.0
        width, height = self.frame_size
        if h264_available() and width % 2 == 0 and height % 2 == 0:  # yuv420p needs even sides
            import av
            try:
                self.container = av.open(str(self.partial), "w", format="mp4", options={"movflags": "+faststart"})
            except av.error.FFmpegError as error:
                raise UserError(f"cannot write output '{self.path}': {error.strerror}") from None
            self.rate = Fraction(self.fps).limit_denominator(1001)
            self.stream = self.container.add_stream("libx264", rate=self.rate)
            self.stream.codec_context.time_base = TIME_BASE  # fine enough for a phone's frame times
            self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
            self.stream.options = {"crf": "18", "preset": "fast"}
            # Tagged as what write() makes, so that no player guesses another matrix: FFmpeg's codes 1 (limited
            # range) and 6 (SMPTE 170M, that is BT.601) for the range, matrix, primaries and transfer.
            context = self.stream.codec_context
            context.color_range, context.colorspace, context.color_primaries, context.color_trc = 1, 6, 6, 6
            self.codec = "h264"
            if audio_from is not None:
                self.audio = source_audio(audio_from, self.container)
        else:
            if not h264_available():
                print("notice: PyAV's H.264 encoder is missing (pip install av): writing MPEG-4 part 2 (mp4v), "
                      "which browsers do not play, and no audio")
            self.encoder = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                           self.frame_size)
            if not self.encoder.isOpened():
                raise UserError(f"OpenCV cannot write '{self.partial}'")
            self.codec = "mp4v"

    def write(self, frame, time=None):
        """Add a frame, shown at `time` seconds (a source's own frame time, for a variable frame rate), or else one
        frame after the last."""
        if (frame.shape[1], frame.shape[0]) != self.frame_size:
            raise ValueError(f"frame of {frame.shape[1]}x{frame.shape[0]} written to a {self.frame_size} video")
        if self.codec == "h264":
            import av
            # OpenCV's BT.601 conversion (limited range): PyAV's own bgr24 path (swscale) shifted the colours by up
            # to 5 levels (mid-grey came back as 123, 126, 124), which made generated people harder to detect.
            picture = av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
            start = self.end if time is None else max(float(time), self.end - 1 / self.rate + 1e-3)
            picture.pts, picture.time_base = round(start / TIME_BASE), TIME_BASE
            self.end = start + 1 / self.rate  # where this frame ends, until the next one says otherwise
            for packet in self.stream.encode(picture):
                self.container.mux(packet)
            if self.audio:
                self.audio.write_until(self.end)
        else:
            self.encoder.write(frame)
        self.frames += 1

    def close(self):
        if self.codec == "h264":
            for packet in self.stream.encode():  # flush the frames the encoder still holds
                self.container.mux(packet)
            if self.audio:
                self.audio.close(self.end)
            self.container.close()
        else:
            self.encoder.release()
        os.replace(self.partial, self.path)

    @property
    def has_audio(self):
        return self.audio is not None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
