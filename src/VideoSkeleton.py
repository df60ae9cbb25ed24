"""VideoSkeleton: one video's person as a dataset of (skeleton, square crop, person mask), cached on disk.

    python src/VideoSkeleton.py VIDEO [FORCE_COMPUTE] [FRAME_MOD] [--data-dir DIR] [--crop-size N]

Preprocess.py builds the cache, on every core: MediaPipe Pose and its segmentation on every FRAME_MOD-th frame, one
square crop for the whole video around everywhere the person goes, and each frame's crop and mask.

The cache lives in DATA_DIR/<video name>/: crops/NNNNNN.jpg (named by frame number), masks/NNNNNN.png (the
person's segmentation on the same crop, 0..255), skeletons.npz (landmarks in crop coordinates, frame numbers; numpy
arrays, no pickle) and manifest.json (parameters, the video's fingerprint, versions, crop box). The manifest is
written last, so a cache without one is incomplete. A cache whose manifest does not match the video and parameters
asked for, or that fails to load, is rebuilt with a notice; a build that was interrupted goes on from its last
finished chunk (in .build/). Other files in that folder (trained models) are left alone.
"""
import argparse
import json
import os
import shutil
import time
from collections import OrderedDict
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np

import Preprocess
import VideoIO
from Runtime import DEFAULT_DATA_DIR, UserError, atomic_write, run_main
from Skeleton import Skeleton, body_frame

CACHE_VERSION = 3  # 2: person masks beside the crops; 3: built in chunks (MediaPipe's tracking restarts with each)
DEFAULT_CROP_SIZE = 256


CROP_CACHE_BYTES = 1 << 30  # decoded crops and masks kept at most, however long the video


class CropCache:
    """The crops and masks of a VideoSkeleton at one size, read from its cache when first asked for and kept while
    they fit in max_bytes, the least recently used going first: training and generating on a long video in bounded
    memory, and on a short one without reading a file twice."""

    def __init__(self, video, size, max_bytes=CROP_CACHE_BYTES):
        self.video, self.size, self.max_bytes = video, size, max_bytes
        self.kept, self.bytes = OrderedDict(), 0

    def image(self, i):
        """Crop i (BGR uint8, size x size)."""
        return self._get(i, self.video.readImage)

    def mask(self, i):
        """The person's mask on crop i (uint8 0..255, size x size)."""
        return self._get(i, self.video.readMask)

    def _get(self, i, read):
        key = (read.__name__, int(i))
        if key in self.kept:
            self.kept.move_to_end(key)
            return self.kept[key]
        picture = read(i)
        if picture.shape[0] != self.size:
            picture = cv2.resize(picture, (self.size, self.size), interpolation=cv2.INTER_AREA)
        self.kept[key] = picture
        self.bytes += picture.nbytes
        while self.bytes > self.max_bytes and len(self.kept) > 1:
            self.bytes -= self.kept.popitem(last=False)[1].nbytes
        return picture


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
        self.params = {"mod_frame": int(mod_frame), "crop_size": int(crop_size), "margin": Preprocess.CROP_MARGIN,
                       "jpeg_quality": Preprocess.JPEG_QUALITY, "model_complexity": 1, "min_detection_confidence": 0.5,
                       "chunk_seconds": Preprocess.chunk_seconds(VideoIO.video_info(self.video_path)),
                       "mask_scale": Preprocess.MASK_SCALE}
        self.fingerprint = VideoIO.file_fingerprint(self.video_path)
        reason = "FORCE_COMPUTE was given" if force_compute else self._load()
        if reason:
            print(f"{self.video_path}: building the skeleton cache in {self.dir} ({reason})")
            self._build(fresh=force_compute)
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
        return Preprocess.crop_square(frame, self.crop_box, self.crop_size)

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

    def _build(self, fresh=False):
        """Build the cache in .build/ (going on from its finished chunks unless `fresh`), then swap it in."""
        started = time.perf_counter()
        build = self.dir / ".build"
        for stale in [*self.dir.glob(".build-*"), *([build] if fresh else [])]:  # .build-PID: older versions'
            shutil.rmtree(stale, ignore_errors=True)
        box, processed, found = Preprocess.build(self.video_path, build, self.params, self.fingerprint)
        seconds = time.perf_counter() - started
        info = VideoIO.video_info(self.video_path)
        manifest = {
            "cache_version": CACHE_VERSION,
            "video": {"path": str(self.video_path.resolve()), "fingerprint": self.fingerprint, **info},
            "params": self.params,
            "versions": {"mediapipe": version("mediapipe"), "opencv": cv2.__version__, "numpy": np.__version__},
            "crop_box": list(box),
            "frames_processed": processed,
            "frames_without_person": processed - found,
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
        print(f"{processed} frames read, a person in {found}, none in {processed - found}; "
              f"{processed / seconds:.1f} frames/s; the cache takes {disk_megabytes(self.dir):.1f} MB")


def disk_megabytes(folder):
    """The space the files under `folder` take (trained models included), in MB."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file()) / 1e6


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
