"""DanceDemo: the target person performing the source person's moves, written to an .mp4.

    python src/DanceDemo.py --gen-type N [--source VIDEO] [--target VIDEO] [--out FILE.mp4] [--data-dir DIR]

For each frame of the source video: take the source person's pose (detected once and cached, like the target's),
move it into the target's crop space (same place and size as the target person), ask the generator for the target
person in that pose, and write the two side by side: the source with its skeleton | the generated target.

GEN_TYPE (Generators.GEN_TYPES): 1 nearest neighbour (GenNearest), 2 network from the 26-value joint vector, 3 U-Net
from the pose and the appearance memory, 4 conditional GAN. 2 to 4 need a model trained on the target
(GenVanillaNN.py, GenGAN.py); it is found with the target's data. Without --source and --target the demo uses
the built-in sample footage (`make sample` fetches it).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

import VideoIO
from GenNearest import GenNearest
from Generators import GEN_TYPES, check_gen_type, make_generator
from Runtime import DEFAULT_DATA_DIR, REPO_DIR, UserError, check_writable, run_main
from Skeleton import Skeleton, body_frame, retarget
from Smoothing import smooth_poses
from TargetFrame import TargetFrame
from VideoSkeleton import VideoSkeleton

SAMPLE_SOURCE = DEFAULT_DATA_DIR / "sample" / "pose2sim_cam01.mp4"
SAMPLE_TARGET = DEFAULT_DATA_DIR / "sample" / "pose2sim_cam02.mp4"
# Each panel's height: twice a network's 256 px. H.264 on a 256-px panel costs the generated person detail that
# MediaPipe needs; scaled up first, the codec's losses are finer than that (RESULTS.md, "Built-in sample").
PANEL_SIZE = 512
LAYOUTS = ("side-by-side", "target")  # the source beside the generated crop, or the target's whole frame
FIRST_BATCH = 4  # a network's first frames come in a small batch, so that the video starts at once


def source_poses(source, target, smooth=True):
    """{source frame number: Skeleton} of the source's poses moved into the target's space (retarget), smoothed
    with short gaps filled (Smoothing) unless smooth=False, when they are MediaPipe's own."""
    landmarks, frames = source.landmarks, source.frame_index
    if smooth:
        landmarks, frames, report = smooth_poses(landmarks, frames, source.fps)
        print(report)
    body_frames = (body_frame(landmarks), target.body_frame())
    return {int(f): retarget(Skeleton(pose), *body_frames) for f, pose in zip(frames, landmarks)}


def label(image, text, colour=(255, 255, 255)):
    """Write `text` on the top left of `image`, readable on any background."""
    scale = image.shape[0] / 512
    position = (round(8 * scale) + 2, round(24 * scale) + 6)
    cv2.putText(image, text, position, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, position, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
    return image


def display_available():
    """Whether a window can open. OpenCV's Qt build aborts the whole process on imshow without a display."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class DanceDemo:
    """Make the target video's person dance like the source video's person, with generator GEN_TYPE."""

    def __init__(self, filename_src, typeOfGen=1, filename_tgt=SAMPLE_TARGET, data_dir=None, target_mod_frame=1,
                 checkpoint=None, device=None, smooth=True):
        self.target = VideoSkeleton(filename_tgt, mod_frame=target_mod_frame, data_dir=data_dir)
        # Made before the source is read, to fail early. Every frame of the target is remembered: unlike Evaluate,
        # the demo has no held-out frames to keep unseen.
        self.generator = make_generator(typeOfGen, self.target, checkpoint, device, remember_all=True)
        self.source = VideoSkeleton(filename_src, mod_frame=1, data_dir=data_dir)
        self.gen_type = typeOfGen
        self.poses = source_poses(self.source, self.target, smooth)  # {source frame: pose in the target's space}
        self.pose_frames = sorted(self.poses)
        # Nearest neighbour's shown frames, and the networks' remembered frames, are chosen for the whole sequence
        # so that they seldom change, each change a short dissolve (sequence_steps); with --no-smooth, for each
        # frame alone.
        self.steps = {}
        if smooth:
            steps = self.generator.sequence_steps([self.poses[f] for f in self.pose_frames])
            self.steps = dict(zip(self.pose_frames, steps))
        self.ahead = {}  # a network's images generated ahead, in one batch, by source frame
        self._canvas = None

    def generate(self, frame, batch_size=32):
        """The generated target for source frame `frame` (BGR uint8), or None if it has no pose."""
        if frame not in self.poses:
            return None
        if isinstance(self.generator, GenNearest):
            if frame in self.steps:
                return self.generator.faded_image(self.steps[frame])
            return self.generator.generate(self.poses[frame])
        if frame not in self.ahead:  # a network is faster on a batch: this frame and the next ones at once
            start = self.pose_frames.index(frame)
            upcoming = self.pose_frames[start:start + (batch_size if start else FIRST_BATCH)]
            images = self.generator.generate_many([self.poses[f] for f in upcoming],
                                                  [self.steps[f] for f in upcoming] if self.steps else None)
            self.ahead = dict(zip(upcoming, images))
        return self.ahead.pop(frame)

    def moment(self, frame):
        """The target frame whose surroundings suit the person generated for source frame `frame`: nearest
        neighbour's frame shown, a network's plate, else where the target stood in the same place and size."""
        pose, step = self.poses[frame], self.steps.get(frame)
        if isinstance(self.generator, GenNearest):
            shown = step[0] if step else int(np.searchsorted(self.generator.indices, self.generator.nearest(pose)[0]))
            return int(self.generator.frames[shown])
        memory = self.generator.memory
        if memory is None:
            return self.canvas.moment_of(pose.landmarks)
        plate = step[1] if step else memory.plate_index(pose.landmarks)
        return int(memory.frame_index[plate])

    def frames(self, panel_size=PANEL_SIZE, layout="side-by-side"):
        """Yield (time in seconds, picture) for each frame of the source video: side by side, the source and the
        generated target, each panel_size high; or the target's whole frame with the generated person in it (layout
        "target"). The time is the source frame's own, so that a phone's variable frame rate stays in step."""
        source_skeletons = dict(zip(self.source.frame_index.tolist(), self.source.ske))
        for index, frame, seconds in VideoIO.read_frames(self.source.video_path, with_time=True):
            image = self.generate(index)
            if layout == "target":
                if image is None:  # no pose to follow: the target's own background
                    yield seconds, self.canvas.background(self.last_moment)
                else:
                    self.last_moment = self.moment(index)
                    yield seconds, self.canvas.compose(image, self.poses[index].landmarks, self.last_moment)
                continue
            source_panel = cv2.resize(self.source.crop(frame), (panel_size, panel_size), interpolation=cv2.INTER_AREA)
            if image is None:  # MediaPipe found nobody in this frame, and no gap filling could: say so
                label(source_panel, "no person found", (0, 0, 255))
                generated = label(np.full_like(source_panel, 64), "no pose to follow", (0, 0, 255))
            else:
                if index in source_skeletons:  # the detector's own pose, as found (frames filled in have none)
                    source_skeletons[index].draw(source_panel)
                generated = cv2.resize(image, (panel_size, panel_size),
                                       interpolation=cv2.INTER_AREA if image.shape[0] > panel_size else cv2.INTER_CUBIC)
            yield seconds, np.hstack([label(source_panel, "source"), generated])

    @property
    def canvas(self):
        """The target's whole frame (TargetFrame), made when the "target" layout first needs it."""
        if self._canvas is None:
            self._canvas = TargetFrame(self.target)
        return self._canvas

    def write(self, out_path, panel_size=PANEL_SIZE, show=False, audio=True, layout="side-by-side"):
        """Write the demo to `out_path` (.mp4) in a LAYOUTS layout, with the source's soundtrack unless audio=False;
        show it in a window too if asked. Returns (frames written, codec, whether the sound went along)."""
        frame_count = self.source.frames_processed
        audio_from = self.source.video_path if audio else None
        size = self.canvas.size if layout == "target" else (2 * panel_size, panel_size)
        self.last_moment = int(self.target.frame_index[0])  # the background shown before the first pose
        with VideoIO.VideoWriter(out_path, self.source.fps, size, audio_from) as video:
            for seconds, frame in tqdm(self.frames(panel_size, layout), total=frame_count, desc="dancing",
                                       unit="frame"):
                video.write(frame, seconds)
                if show:
                    cv2.imshow(f"DanceDemo GEN_TYPE {self.gen_type} (q quits)", frame)
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
        if show:
            cv2.destroyAllWindows()
        return video.frames, video.codec, video.has_audio


def main(argv=None):
    parser = argparse.ArgumentParser(description="Make the target person dance like the source person; write the "
                                     "result side by side with the source to an .mp4.")
    parser.add_argument("--gen-type", type=int, default=1,
                        help="generator: " + ", ".join(f"{k} {v.name}" for k, v in GEN_TYPES.items()) + " (default 1)")
    parser.add_argument("--source", type=Path, default=SAMPLE_SOURCE, help="video whose moves are copied")
    parser.add_argument("--target", type=Path, default=SAMPLE_TARGET, help="video of the person who will dance")
    parser.add_argument("--out", type=Path, help="output .mp4 (default out/dance_gen<N>.mp4 in the repository)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where the per-video caches live")
    parser.add_argument("--target-mod-frame", type=int, default=1,
                        help="use every N-th target frame for the target dataset (default 1)")
    parser.add_argument("--size", type=int, default=PANEL_SIZE,
                        help=f"height of each panel in pixels (default {PANEL_SIZE})")
    parser.add_argument("--show", action="store_true", help="also show the frames in a window (needs a display)")
    parser.add_argument("--checkpoint", type=Path, help="model for GEN_TYPE 2-4 (default: the newest trained on "
                        "the target, in DATA_DIR/<target>/models/)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: the best available)")
    parser.add_argument("--no-smooth", dest="smooth", action="store_false",
                        help="use the source's raw poses (no One Euro filter, no gap filling) and, for GEN_TYPE 1, "
                        "the nearest frame for each pose alone instead of a coherent sequence")
    parser.add_argument("--layout", choices=LAYOUTS, default="side-by-side",
                        help="side-by-side: the source with its pose beside the generated target, each --size high "
                        "(default); target: the target's whole frame, its size and shape, with the generated person")
    parser.add_argument("--no-audio", dest="audio", action="store_false",
                        help="leave the source's soundtrack out (by default it goes along, in step with the frames)")
    args = parser.parse_args(argv)

    check_gen_type(args.gen_type)  # before any long work
    for role, path in (("source", args.source), ("target", args.target)):
        if path in (SAMPLE_SOURCE, SAMPLE_TARGET) and not path.exists():
            raise UserError(f"the sample {role} video {path} is not here yet: run `make sample`, or give --{role}")
        VideoIO.open_video(path).release()  # a missing or unreadable video is said before any long work
    if args.size < 16 or args.size % 2:
        raise UserError(f"--size must be an even number of pixels, 16 or more, got {args.size}")
    out = args.out or REPO_DIR / "out" / f"dance_gen{args.gen_type}.mp4"
    if out.suffix.lower() != ".mp4":
        raise UserError(f"output '{out}' must end in .mp4")
    check_writable(out)  # before any long work
    if args.show and not display_available():
        print("no display found: not showing a window (the video is still written)")
        args.show = False

    demo = DanceDemo(args.source, args.gen_type, args.target, args.data_dir, args.target_mod_frame,
                     args.checkpoint, args.device, args.smooth)
    if args.gen_type > 1:
        print(f"GEN_TYPE {args.gen_type}: {demo.generator.checkpoint_path} (a {demo.generator.size}-px network, "
              f"{demo.generator.output_size}-px images, on {demo.generator.device})")
    started = time.perf_counter()
    frames, codec, with_audio = demo.write(out, args.size, args.show, args.audio, args.layout)
    seconds = time.perf_counter() - started
    print(f"wrote {out}: {frames} frames ({codec}" + (", with the source's audio" if with_audio else "") +
          f"), {frames / seconds:.1f} frames/s")


if __name__ == "__main__":
    run_main(main)
