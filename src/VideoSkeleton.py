"""VideoSkeleton: one video's person as a dataset of (skeleton, square crop) pairs, cached on disk.

    python src/VideoSkeleton.py VIDEO [FORCE_COMPUTE] [FRAME_MOD] [--data-dir DIR] [--crop-size N]

Two passes over the video. The first runs MediaPipe Pose on every FRAME_MOD-th frame (in RGB, one detector for
the whole pass, so it tracks the person from frame to frame). From all the poses found it fixes one square crop for
the whole video: the box that holds the person in every frame, plus a margin. One crop per video, not one per
frame, because the camera is still: the background then stays put and the person's position in the crop says
where they stand, which is what a generator must learn. The second pass cuts that square out of each frame (black
where it leaves the picture, never wrapped or stretched), scales it to crop_size and writes it as a JPEG.

MediaPipe also segments the person (enable_segmentation): the mask is cut like the frame, so the generators know
which pixels are the person and which the background.

The cache lives in DATA_DIR/<video name>/: crops/NNNNNN.jpg (named by frame number), masks/NNNNNN.png (the
person's segmentation on the same crop, 0..255), skeletons.npz (landmarks in crop coordinates, frame numbers; numpy
arrays, no pickle) and manifest.json (parameters, the video's fingerprint, versions, crop box). The manifest is
written last, so a cache without one is incomplete. A cache whose manifest does not match the video and parameters
asked for, or that fails to load, is rebuilt with a notice. Other files in that folder (trained models) are left
alone.
"""
import argparse
import json
import os
import shutil
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import numpy as np

import VideoIO
from Runtime import DEFAULT_DATA_DIR, UserError, atomic_write, native_stderr_silenced, run_main
from Skeleton import REDUCED_JOINTS, Skeleton, body_frame

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging: warnings and info lines off
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import cv2  # noqa: E402
from tqdm import tqdm  # noqa: E402

CACHE_VERSION = 2  # 2: person masks beside the crops
DEFAULT_CROP_SIZE = 256
CROP_MARGIN = 0.2      # added on each side of the person's box, as a fraction of its larger side: hair, fingers, toes
JPEG_QUALITY = 95
MIN_VISIBILITY = 0.5   # landmarks less visible than this do not count towards the person's box


class PoseDetector:
    """MediaPipe Pose for one pass over a video: call it on BGR frames in order; use as a context manager.

    model_complexity=1 is the model the 0.10.21 wheel ships. static_image_mode=False makes it track the person
    from one frame to the next, so one detector must see one video's frames in order. segment=True also computes
    the person's segmentation mask, for detect_with_mask().
    """

    def __init__(self, consecutive=True, static=False, segment=False):
        import mediapipe as mp  # here, so that loading a cached dataset does not pay for importing MediaPipe

        # Smoothing across frames helps when frames are consecutive and lags when they are far apart. static=True
        # detects every image afresh (no tracking), for images that are not a video's frames in order.
        self.pose = mp.solutions.pose.Pose(static_image_mode=static, model_complexity=1,
                                           smooth_landmarks=consecutive and not static,
                                           enable_segmentation=segment, smooth_segmentation=consecutive,
                                           min_detection_confidence=0.5, min_tracking_confidence=0.5)

    def __call__(self, frame_bgr):
        """The Skeleton of the person in a BGR frame (coordinates normalised to the frame), or None."""
        return self.detect_with_mask(frame_bgr)[0]

    def detect_with_mask(self, frame_bgr):
        """(Skeleton or None, the person's mask as uint8 0..255 at the frame's size, or None)."""
        result = self.pose.process(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))  # MediaPipe expects RGB
        if result.pose_landmarks is None:
            return None, None
        mask = result.segmentation_mask
        mask = None if mask is None else (mask * 255).round().astype(np.uint8)
        return Skeleton.from_mediapipe(result.pose_landmarks), mask

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.pose.close()


REDETECT_SIDE = 384  # upscaled side before detection: MediaPipe misses many people in small crops
REDETECT_PAD = 0.25


class Redetector:
    """MediaPipe Pose in static mode on square BGR images (generated or real crops), to check that a picture shows
    a person in the pose asked for: returns the 13 reduced joints in the image's own coordinates (0..1), or None
    where it finds nobody. Evaluate.py and the trainers' per-epoch scores use it alike."""

    def __init__(self):
        self.detect = PoseDetector(static=True)

    def __call__(self, image):
        pad = int(REDETECT_SIDE * REDETECT_PAD)
        big = cv2.resize(image, (REDETECT_SIDE, REDETECT_SIDE), interpolation=cv2.INTER_CUBIC)
        skeleton = self.detect(cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE))
        if skeleton is None:
            return None
        return (skeleton.landmarks[REDUCED_JOINTS, :2] * (REDETECT_SIDE + 2 * pad) - pad) / REDETECT_SIDE

    def close(self):
        self.detect.close()


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


def split_indices(count, val_fraction):
    """(train, held-out) indices of a dataset of `count` frames: the last val_fraction of the frames in time are
    held out. A split in time rather than at random, because neighbouring frames are near copies of each other: a
    random split would score a network on frames it has all but seen."""
    held_out = int(round(count * val_fraction))
    if held_out < 1 or count - held_out < 1:
        raise UserError(f"the target has {count} frames with a person: too few to hold out {val_fraction:.0%} and "
                        f"train on the rest; use a longer video (a minute or more is good)")
    return np.arange(count - held_out), np.arange(count - held_out, count)


class VideoSkeleton:
    """The skeletons and square crops of the person in one video, built once and loaded from the cache after.

    ske[i] is the i-th Skeleton (crop coordinates), readImage(i) its crop (BGR uint8, crop_size square),
    frame_index[i] the frame of the video it came from. mod_frame=10 is the course's default step; our programs
    use every frame (1).
    """

    def __init__(self, filename, force_compute=False, mod_frame=10, data_dir=None, crop_size=DEFAULT_CROP_SIZE):
        self.video_path = Path(filename)
        if int(mod_frame) < 1:
            raise UserError(f"FRAME_MOD must be 1 or more, got {mod_frame}")
        if int(crop_size) < 16:
            raise UserError(f"crop size must be at least 16 pixels, got {crop_size}")
        VideoIO.open_video(self.video_path).release()  # a clear error now if it is not a readable video
        self.name = self.video_path.stem
        self.dir = Path(data_dir or DEFAULT_DATA_DIR) / self.name
        self.params = {"mod_frame": int(mod_frame), "crop_size": int(crop_size), "margin": CROP_MARGIN,
                       "jpeg_quality": JPEG_QUALITY, "model_complexity": 1, "min_detection_confidence": 0.5}
        self.fingerprint = VideoIO.file_fingerprint(self.video_path)
        reason = "FORCE_COMPUTE was given" if force_compute else self._load()
        if reason:
            print(f"{self.video_path}: building the skeleton cache in {self.dir} ({reason})")
            self._build()
            if self._load():
                raise UserError(f"the cache just written in {self.dir} does not load: is the disk full?")

    # The course's names.
    def skeCount(self):
        return len(self.ske)

    def imagePath(self, i):
        return self.dir / "crops" / f"{self.frame_index[i]:06d}.jpg"

    def readImage(self, i):
        return self._read(self.imagePath(i), cv2.IMREAD_COLOR)

    def maskPath(self, i):
        return self.dir / "masks" / f"{self.frame_index[i]:06d}.png"

    def readMask(self, i):
        """The person's segmentation on crop i: uint8, crop_size square, 255 on the person, 0 elsewhere."""
        return self._read(self.maskPath(i), cv2.IMREAD_GRAYSCALE)

    def _read(self, path, flags):
        image = cv2.imread(str(path), flags)
        if image is None:
            raise UserError(f"cached image {path} is unreadable: rebuild with "
                            f"python src/VideoSkeleton.py {self.video_path} true {self.params['mod_frame']}")
        return image

    @property
    def crop_size(self):
        return self.params["crop_size"]

    def crop(self, frame):
        """This video's square crop of one of its frames (BGR), at crop_size."""
        return crop_square(frame, self.crop_box, self.crop_size)

    def body_frame(self):
        """(median mid-hip point, median torso length) of this video's person, in crop coordinates."""
        return body_frame(self.landmarks)

    def __str__(self):
        return (f"VideoSkeleton({self.video_path.name}: {self.skeCount()} frames with a person, "
                f"{self.frames_without_person} without, crop {self.crop_box} -> {self.crop_size} px, in {self.dir})")

    def _load(self):
        """Load the cache; return None on success, else why it must be rebuilt."""
        try:
            manifest = json.loads((self.dir / "manifest.json").read_text())
        except FileNotFoundError:
            return "no cache yet"
        except (OSError, ValueError):
            return "its manifest is unreadable"
        if manifest.get("cache_version") != CACHE_VERSION:
            return "it was written by another version of this program"
        if manifest.get("video", {}).get("fingerprint") != self.fingerprint:
            return f"it was made from another file named {self.video_path.name}, or the video has changed"
        if manifest.get("params") != self.params:
            changed = [f"{k} {v} -> {self.params.get(k)}" for k, v in manifest.get("params", {}).items()
                       if self.params.get(k) != v]
            return f"parameters changed: {', '.join(changed) or 'unknown'}"
        if manifest.get("versions", {}).get("mediapipe") != version("mediapipe"):
            return "it was made with another MediaPipe version"
        try:
            with np.load(self.dir / "skeletons.npz", allow_pickle=False) as arrays:
                landmarks, frame_index = arrays["landmarks"], arrays["frame_index"]
            crops = set(os.listdir(self.dir / "crops"))
            masks = set(os.listdir(self.dir / "masks"))
            crop_box, fps = tuple(manifest["crop_box"]), manifest["video"]["fps"]
            processed, without_person = manifest["frames_processed"], manifest["frames_without_person"]
        except (OSError, ValueError, KeyError, TypeError):
            return "its manifest, skeleton arrays or crops folder are incomplete or damaged"
        if (landmarks.shape != (len(frame_index), 33, 4) or any(f"{i:06d}.jpg" not in crops for i in frame_index)
                or any(f"{i:06d}.png" not in masks for i in frame_index)):
            return "its skeleton arrays, crops and masks do not match"
        self.manifest, self.crop_box, self.fps = manifest, crop_box, fps
        self.landmarks, self.frame_index = landmarks, frame_index
        self.ske = [Skeleton(pose) for pose in landmarks]
        self.frames_processed, self.frames_without_person = processed, without_person
        return None

    def _build(self):
        step = self.params["mod_frame"]
        info = VideoIO.video_info(self.video_path)
        total = -(-info["stated_frames"] // step) or None  # for the progress bar only
        started = time.perf_counter()

        # Pass 1: the pose and the person's mask in every step-th frame. The masks wait as PNG bytes (a few kB
        # each) until the crop is known.
        frame_index, frame_landmarks, frame_masks, processed = [], [], {}, 0
        with native_stderr_silenced() as terminal, PoseDetector(consecutive=step == 1, segment=True) as detect:
            frames = VideoIO.read_frames(self.video_path, step)
            for index, frame in tqdm(frames, total=total, desc="detecting poses", unit="frame", file=terminal):
                processed += 1
                skeleton, mask = detect.detect_with_mask(frame)
                if skeleton is not None:
                    frame_index.append(index)
                    frame_landmarks.append(skeleton.landmarks)
                    frame_masks[index] = cv2.imencode(".png", mask if mask is not None else
                                                      np.zeros(frame.shape[:2], np.uint8))[1]
        if not frame_index:
            raise UserError(f"MediaPipe found no person in any of the {processed} frames read from "
                            f"'{self.video_path}': use a video showing one person, whole body in view")
        frame_landmarks = np.stack(frame_landmarks)
        box = square_crop_box(frame_landmarks, info["width"], info["height"])

        # Pass 2: crops of the frames with a person, written into a build folder beside the cache.
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".build-*"):  # left by a build that was interrupted
            shutil.rmtree(stale, ignore_errors=True)
        build = self.dir / f".build-{os.getpid()}"
        (build / "crops").mkdir(parents=True)
        (build / "masks").mkdir()

        def write_crop(index, frame):
            crop = crop_square(frame, box, self.params["crop_size"])
            cv2.imwrite(str(build / "crops" / f"{index:06d}.jpg"), crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            mask = crop_square(cv2.imdecode(frame_masks.pop(index), cv2.IMREAD_GRAYSCALE), box,
                               self.params["crop_size"])
            cv2.imwrite(str(build / "masks" / f"{index:06d}.png"), mask)

        # OpenCV releases the GIL while it resizes and encodes, so threads use every core; the bound on work in
        # flight keeps decoded frames from piling up in memory.
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            in_flight = deque()
            for index, frame in tqdm(VideoIO.read_frames(self.video_path, step), total=processed,
                                     desc="writing crops", unit="frame"):
                if index in frame_masks:
                    in_flight.append(pool.submit(write_crop, index, frame))
                while len(in_flight) > 2 * os.cpu_count() or (in_flight and in_flight[0].done()):
                    in_flight.popleft().result()
            for job in in_flight:
                job.result()
        np.savez(build / "skeletons.npz", landmarks=frame_to_crop(frame_landmarks, box, info["width"], info["height"]),
                 frame_index=np.array(frame_index, np.int64))
        seconds = time.perf_counter() - started
        manifest = {
            "cache_version": CACHE_VERSION,
            "video": {"path": str(self.video_path.resolve()), "fingerprint": self.fingerprint, **info},
            "params": self.params,
            "versions": {"mediapipe": version("mediapipe"), "opencv": cv2.__version__, "numpy": np.__version__},
            "crop_box": list(box),
            "frames_processed": processed,
            "frames_without_person": processed - len(frame_index),
            "build_seconds": round(seconds, 2),
        }

        # Swap the build in. The old manifest goes first: from then on the old cache counts as incomplete.
        (self.dir / "manifest.json").unlink(missing_ok=True)
        for folder in ("crops", "masks"):
            if (self.dir / folder).exists():
                (self.dir / folder).rename(build / f"old-{folder}")
            (build / folder).rename(self.dir / folder)
        os.replace(build / "skeletons.npz", self.dir / "skeletons.npz")
        atomic_write(self.dir / "manifest.json", lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1)))
        shutil.rmtree(build, ignore_errors=True)
        print(f"{processed} frames read, a person in {len(frame_index)}, none in {processed - len(frame_index)}; "
              f"{processed / seconds:.1f} frames/s")


def parse_bool(text):
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "y"):
        return True
    if value in ("0", "false", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Detect the person's pose in every FRAME_MOD-th frame of a video "
                                     "and cache the skeletons and square crops for the generators.")
    parser.add_argument("video", help="the video to preprocess")
    parser.add_argument("force_compute", nargs="?", type=parse_bool, default=False, metavar="FORCE_COMPUTE",
                        help="true to rebuild the cache even if it is up to date (default false)")
    parser.add_argument("mod_frame", nargs="?", type=int, default=1, metavar="FRAME_MOD",
                        help="use every FRAME_MOD-th frame (default 1: all; the course used 10)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"where the cache goes, in a folder named after the video (default {DEFAULT_DATA_DIR})")
    parser.add_argument("--crop-size", type=int, default=DEFAULT_CROP_SIZE, help="side of the saved crops in pixels")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    video = VideoSkeleton(args.video, args.force_compute, args.mod_frame, args.data_dir, args.crop_size)
    print(f"{video}  [{time.perf_counter() - started:.2f} s]")


if __name__ == "__main__":
    run_main(main)
