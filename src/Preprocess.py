"""Preprocess: a video -> the poses, square crops and person masks of VideoSkeleton's cache, on every core, resumable.

Two passes over the video, both cut into chunks (chunk_seconds) that worker processes (one per core, and one more)
take in turn:
1. poses: a worker goes to its chunk's first frame and runs MediaPipe Pose with segmentation on every FRAME_MOD-th
   frame (in RGB, one detector per chunk, tracking the person within it); the chunk's poses and person masks (at
   MASK_SCALE of the frame) are saved in the build folder, atomically. From all the poses, one square crop for the
   whole video: the box that holds the person in every frame, plus a margin. One crop per video, not one per frame,
   because the camera is still: the background then stays put and the person's position in the crop says where
   they stand, which is what a generator must learn.
2. crops: a worker cuts its chunk's frames and masks to that square (black where it leaves the picture, never
   wrapped or stretched), scales them to crop_size, writes them as files, and marks the chunk done.
A kill at any moment loses only the chunks in flight: a rerun with the same video and parameters finds the finished
chunks in the build folder and does the rest. A worker finds its chunk's first frame by the frames' own times (read
from the file's packets before any decoding), so that a video whose frames are unevenly spaced (a phone's, or one
with a dropped frame) is cut exactly where one read in order would be.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

import VideoIO
from Runtime import UserError, atomic_write, native_stderr_silenced

# A chunk of video, the unit of work, of parallelism and of resuming: an eighth of the video, so that the cores share
# the work evenly, but 5 to 20 s, since each chunk starts MediaPipe afresh (0.1 s, and its tracking).
CHUNK_SECONDS = (5.0, 20.0)
# One worker more than the cores: MediaPipe's graph waits between its stages and a worker's own decoding and
# writing run in its one thread, so a core is sometimes idle that another worker then uses (RESULTS.md).
EXTRA_WORKERS = 1
MASK_SCALE = 0.5      # the masks wait for the crop at half the frame's size (MediaPipe segments at 256 x 256)
CROP_MARGIN = 0.2     # added on each side of the person's box, as a fraction of its larger side: hair, fingers, toes
JPEG_QUALITY = 95
MIN_VISIBILITY = 0.5  # landmarks less visible than this do not count towards the person's box


def build(video_path, build_dir, params, fingerprint, workers=None):
    """Fill `build_dir` with crops/, masks/ and skeletons.npz for the video; return (crop box, frames read, frames
    with a person, frames without). Chunks finished by an earlier, interrupted build with the same video and
    params are kept; anything else found there is cleared first."""
    info = VideoIO.video_info(video_path)
    step, fps = params["mod_frame"], info["fps"]
    chunk_frames = max(1, round(params["chunk_seconds"] * fps / step)) * step
    plan = {"fingerprint": fingerprint, "params": params, "chunk_frames": chunk_frames}
    plan_file = build_dir / "plan.json"
    if not plan_file.exists() or json.loads(plan_file.read_text()) != plan:
        shutil.rmtree(build_dir, ignore_errors=True)
        for folder in ("poses", "crops", "masks"):
            (build_dir / folder).mkdir(parents=True)
        atomic_write(plan_file, lambda tmp: Path(tmp).write_text(json.dumps(plan)))
    times = VideoIO.frame_times(video_path)  # None where they cannot be read: then one worker, in order
    workers = (workers or (os.cpu_count() or 1) + EXTRA_WORKERS) if times is not None else 1
    chunks = max(1, math.ceil((len(times) if times is not None else info["stated_frames"]) / chunk_frames))
    job = {"path": str(video_path), "build": str(build_dir), "chunk_frames": chunk_frames, "step": step,
           "crop_size": params["crop_size"]}

    # Pass 1: poses and masks, chunk by chunk, until a chunk finds the video's end (a stated count can be wrong).
    done = {c for c in range(chunks) if (build_dir / "poses" / f"{c:05d}.npz").exists()}
    if done:
        print(f"going on with the build interrupted earlier: {len(done)} of {chunks} chunks of poses are done")
    reader = ChunkReader(video_path, times)  # for the chunks done in this process
    already = sum(read_count(build_dir, c) for c in done)
    with ProgressBar("detecting poses", chunks * chunk_frames // step, already) as bar:
        run_chunks(detect_chunk, job, [c for c in range(chunks) if c not in done], workers, times, bar, reader)
        while not load_chunk(build_dir, chunks - 1)["ended"]:
            run_chunks(detect_chunk, job, [chunks], 1, times, bar, reader)
            chunks += 1
    parts = [load_chunk(build_dir, c) for c in range(chunks)]
    processed = sum(int(part["read"]) for part in parts)
    frame_index = np.concatenate([part["frame_index"] for part in parts])
    if len(frame_index) == 0:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise UserError(f"MediaPipe found no person in any of the {processed} frames read from '{video_path}': use "
                        f"a video showing one person, whole body in view")
    landmarks = np.concatenate([part["landmarks"] for part in parts])
    box = square_crop_box(landmarks, info["width"], info["height"])

    # Pass 2: the crops and masks of the frames with a person.
    job["box"] = list(box)
    todo = [c for c in range(chunks) if len(parts[c]["frame_index"]) and not cropped_mark(build_dir, c).exists()]
    with ProgressBar("writing crops", sum(len(part["frame_index"]) for part in parts),
                  sum(len(parts[c]["frame_index"]) for c in range(chunks) if c not in todo)) as bar:
        run_chunks(crop_chunk, job, todo, workers, times, bar, ChunkReader(video_path, times))
    np.savez(build_dir / "skeletons.npz", landmarks=frame_to_crop(landmarks, box, info["width"], info["height"]),
             frame_index=frame_index.astype(np.int64))
    return box, processed, len(frame_index)


class ProgressBar:
    """A tqdm bar on the terminal while MediaPipe's C++ logging (on file descriptor 2) goes nowhere."""

    def __init__(self, what, total, initial):
        self.what, self.total, self.initial = what, total, initial

    def __enter__(self):
        self.silenced = native_stderr_silenced()
        terminal = self.silenced.__enter__()
        self.bar = tqdm(total=self.total, initial=self.initial, desc=self.what, unit="frame", file=terminal)
        return self.bar

    def __exit__(self, *exc):
        self.bar.close()
        self.silenced.__exit__(*exc)


def chunk_seconds(info):
    """The length of a chunk of the video whose VideoIO.video_info is `info` (see CHUNK_SECONDS)."""
    return round(float(np.clip(info["stated_frames"] / info["fps"] / 8, *CHUNK_SECONDS)), 1)


def run_chunks(work, job, chunks, workers, times, bar, reader):
    """work(job, chunk, reader) for each chunk, counting its frames on `bar`: here with `reader` (one worker, or a
    single chunk), or in `workers` processes, each this file run as a program on its share of the chunks, with its
    own MediaPipe and reader of the video. Programs rather than multiprocessing's workers, which would import the
    caller's own script again (a user's script without a __main__ guard would start itself over and over)."""
    if workers == 1 or len(chunks) <= 1:
        for chunk in chunks:
            bar.update(work(job, chunk, reader))
        return
    build = Path(job["build"])
    np.save(build / "times.npy", times)
    atomic_write(build / "job.json", lambda tmp: Path(tmp).write_text(json.dumps(job)))
    shares = [chunks[w::workers] for w in range(min(workers, len(chunks)))]
    logs = [build / f"worker_{w}.log" for w in range(len(shares))]
    processes = []
    for share, log in zip(shares, logs):
        with open(log, "w") as errors:  # MediaPipe's C++ logging goes there too
            processes.append(subprocess.Popen([sys.executable, __file__, work.__name__, str(build),
                                               *map(str, share)], stdout=subprocess.DEVNULL, stderr=errors))
    counted = set()
    try:
        while True:
            running = any(process.poll() is None for process in processes)
            for chunk in chunks:  # a chunk is counted once its result is on disk
                if chunk not in counted and chunk_done(work, build, chunk):
                    counted.add(chunk)
                    bar.update(chunk_frames(work, build, chunk))
            if not running:
                break
            time.sleep(0.2)
    finally:  # on Ctrl-C too: no worker goes on alone
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
    failed = [log for process, log in zip(processes, logs) if process.returncode != 0]
    if failed or len(counted) < len(chunks):
        last = failed[0].read_text().strip().splitlines()[-1:] if failed else ["a worker stopped early"]
        raise RuntimeError(f"preprocessing worker failed: {last[0] if last else 'no message'}")


def chunk_done(work, build, chunk):
    """Whether `work` (detect_chunk or crop_chunk) has finished `chunk`."""
    done = build / "poses" / f"{chunk:05d}.npz" if work is detect_chunk else cropped_mark(build, chunk)
    return done.exists()


def chunk_frames(work, build, chunk):
    """The frames a finished chunk counts for on a progress bar: read (poses), or written (crops)."""
    part = load_chunk(build, chunk)
    return int(part["read"]) if work is detect_chunk else len(part["frame_index"])


def worker(work_name, build, chunks):
    """A worker program: `work_name` (detect_chunk or crop_chunk) on `chunks`, in order, with the build's job and
    frame times; it stops if the program that started it is gone (killed: a rerun will go on from the chunks done)."""
    build = Path(build)
    job, times = json.loads((build / "job.json").read_text()), np.load(build / "times.npy")
    cv2.setNumThreads(1)  # the workers share the cores
    work, parent = {"detect_chunk": detect_chunk, "crop_chunk": crop_chunk}[work_name], os.getppid()
    reader = ChunkReader(job["path"], times)
    for chunk in chunks:
        if os.getppid() != parent:
            return
        work(job, chunk, reader)


class ChunkReader:
    """A video read chunk by chunk, in any order: going to a chunk's first frame by its number, then checking by its
    time (`times`, every frame's, from VideoIO.frame_times) which frame it found, since by number alone a player
    goes astray where frames are unevenly spaced (a phone's video, a dropped frame). Without times (None) the video
    is read in order only, from where the last chunk ended."""

    def __init__(self, path, times):
        self.path, self.times = path, times
        self.capture, self.position = VideoIO.open_video(path), 0

    def frames(self, start, count, step):
        """Yield (frame number, BGR frame or None) for frames start .. start + count - 1: decoded every step-th,
        grabbed otherwise; stop early where the video ends (then self.ended)."""
        first = self._go_to(start) if start != self.position else None
        self.ended = self.position != start
        for index in range(start, start + count):
            if self.ended:
                return
            if first is not None:
                ok, frame, first = True, first, None
            elif index % step == 0:
                ok, frame = self.capture.read()
            else:
                ok, frame = self.capture.grab(), None
            self.ended = not ok or (self.times is not None and index + 1 >= len(self.times))  # the last frame
            if ok:
                self.position = index + 1
                yield index, frame

    def _go_to(self, start):
        """Stand at frame `start`; return it, decoded, if going there had to decode it (else None)."""
        if self.times is not None and start < len(self.times):
            guess = start
            for _ in range(4):
                self.capture.set(cv2.CAP_PROP_POS_FRAMES, max(guess, 0))
                ok, frame = self.capture.read()
                found = self._index_of(self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000) if ok else None
                if found is None:
                    break
                if found == start:
                    self.position = start  # standing at it, its picture in hand
                    return frame
                if found < start:
                    self.position = found + 1
                    break
                guess -= found - start + 1  # it went past: go back by as much, and one more
            else:
                found = None
            if found is None:  # lost: from the beginning, in order
                self.capture.release()
                self.capture, self.position = VideoIO.open_video(self.path), 0
        elif start < self.position:
            self.capture.release()
            self.capture, self.position = VideoIO.open_video(self.path), 0
        while self.position < start and self.capture.grab():
            self.position += 1
        return None

    def _index_of(self, seconds):
        """The number of the frame shown at `seconds`, or None if no frame is (within a millisecond)."""
        index = int(np.argmin(np.abs(self.times - seconds)))
        return index if abs(self.times[index] - seconds) < 1e-3 else None


def detect_chunk(job, chunk, reader):
    """Pass 1 for one chunk: poses and masks of its frames, saved atomically. Returns the frames read."""
    from Detection import PoseDetector  # here: the workers load MediaPipe, the main process need not

    start, step = chunk * job["chunk_frames"], job["step"]
    frame_index, landmarks, masks, read = [], [], [], 0
    with PoseDetector(consecutive=step == 1, segment=True) as detect:
        for index, frame in reader.frames(start, job["chunk_frames"], step):
            if frame is None:
                continue
            read += 1
            skeleton, mask = detect.detect_with_mask(frame)
            if skeleton is not None:
                height, width = frame.shape[:2]
                small = (max(1, round(width * MASK_SCALE)), max(1, round(height * MASK_SCALE)))
                mask = np.zeros(frame.shape[:2], np.uint8) if mask is None else mask
                frame_index.append(index)
                landmarks.append(skeleton.landmarks)
                masks.append(cv2.imencode(".png", cv2.resize(mask, small, interpolation=cv2.INTER_AREA))[1])
    ends = np.cumsum([len(m) for m in masks]).astype(np.int64)
    arrays = {"frame_index": np.array(frame_index, np.int64), "read": np.int64(read), "ended": reader.ended,
              "landmarks": np.array(landmarks, np.float32).reshape(-1, 33, 4), "mask_ends": ends,
              "mask_png": np.concatenate(masks) if masks else np.zeros(0, np.uint8)}
    atomic_write(Path(job["build"]) / "poses" / f"{chunk:05d}.npz", lambda tmp: np.savez(tmp, **arrays))
    return read


def crop_chunk(job, chunk, reader):
    """Pass 2 for one chunk: the crop and mask of each of its frames with a person, then a mark that it is done.
    Returns the frames written."""
    build, size, box = Path(job["build"]), job["crop_size"], tuple(job["box"])
    part = load_chunk(build, chunk)
    masks = np.split(part["mask_png"], part["mask_ends"][:-1]) if len(part["mask_ends"]) else []
    masks = dict(zip(part["frame_index"].tolist(), masks))
    written = 0
    start = chunk * job["chunk_frames"]
    for index, frame in reader.frames(start, int(part["frame_index"][-1]) + 1 - start, job["step"]):
        if index not in masks:
            continue
        cv2.imwrite(str(build / "crops" / f"{index:06d}.jpg"), crop_square(frame, box, size),
                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        mask = cv2.imdecode(masks[index], cv2.IMREAD_GRAYSCALE)
        scale = mask.shape[1] / frame.shape[1]
        small_box = (round(box[0] * scale), round(box[1] * scale), max(1, round(box[2] * scale)))
        cv2.imwrite(str(build / "masks" / f"{index:06d}.png"), crop_square(mask, small_box, size))
        written += 1
    cropped_mark(build, chunk).touch()
    return written


def load_chunk(build_dir, chunk):
    with np.load(Path(build_dir) / "poses" / f"{chunk:05d}.npz", allow_pickle=False) as arrays:
        return {key: arrays[key] for key in arrays.files}


def cropped_mark(build_dir, chunk):
    """The file that says a chunk's crops are all written."""
    return Path(build_dir) / "poses" / f"{chunk:05d}.cropped"


def read_count(build_dir, chunk):
    return int(load_chunk(build_dir, chunk)["read"])


def square_crop_box(landmarks, width, height, margin=CROP_MARGIN):
    """(x0, y0, side) in frame pixels: a square holding the person of every frame, with a margin around them.

    `landmarks` is (N, 33, 4), normalised to a width x height frame. The box spans the 1st to 99th percentile of
    the per-frame extents, so one bad detection cannot blow it up. It may leave the frame: crop_square pads.
    """
    points = landmarks[:, :, :2] * (width, height)
    visible = landmarks[:, :, 3:4] >= MIN_VISIBILITY
    visible[~visible.any(axis=1)[:, 0]] = True  # a frame with nothing visible uses all its points
    low = np.where(visible, points, np.inf).min(axis=1)    # (N, 2): per-frame left, top
    high = np.where(visible, points, -np.inf).max(axis=1)  # (N, 2): per-frame right, bottom
    left, top = np.percentile(low, 1, axis=0)
    right, bottom = np.percentile(high, 99, axis=0)
    side = max(right - left, bottom - top) * (1 + 2 * margin)
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    side = int(np.ceil(side))
    return int(round(centre_x - side / 2)), int(round(centre_y - side / 2)), side


def crop_square(frame, box, size):
    """Cut the square `box` (x0, y0, side) out of `frame` (colour or one channel) and scale it to size x size;
    black outside the frame."""
    x0, y0, side = box
    height, width = frame.shape[:2]
    scale = size / side
    out = np.zeros((size, size) + frame.shape[2:], frame.dtype)
    left, top, right, bottom = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    if right <= left or bottom <= top:
        return out
    # Where the part inside the frame lands in the output, rounded to whole output pixels.
    out_left, out_top = round((left - x0) * scale), round((top - y0) * scale)
    out_right, out_bottom = round((right - x0) * scale), round((bottom - y0) * scale)
    if out_right > out_left and out_bottom > out_top:
        region, out_width, out_height = frame[top:bottom, left:right], out_right - out_left, out_bottom - out_top
        # INTER_AREA does not alias but is slow at large non-integer factors: halve with pyrDown (fast, smoothed)
        # while more than a halving remains, and let INTER_AREA do the rest.
        while region.shape[1] >= 2 * out_width and region.shape[0] >= 2 * out_height:
            region = cv2.pyrDown(region)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        out[out_top:out_bottom, out_left:out_right] = cv2.resize(region, (out_width, out_height),
                                                                 interpolation=interpolation)
    return out


def frame_to_crop(landmarks, box, width, height):
    """Landmarks normalised to a width x height frame -> normalised to the crop square `box` (x0, y0, side)."""
    x0, y0, side = box
    out = np.array(landmarks, np.float32, copy=True)
    out[..., 0] = (out[..., 0] * width - x0) / side
    out[..., 1] = (out[..., 1] * height - y0) / side
    out[..., 2] = out[..., 2] * width / side  # MediaPipe's z is in units of the frame width
    return out


if __name__ == "__main__":  # a worker started by run_chunks
    worker(sys.argv[1], sys.argv[2], [int(chunk) for chunk in sys.argv[3:]])
