"""bench.py: how fast the pieces run, measured on your videos and printed as a table (and JSON with --json).

    python src/bench.py spine --target VIDEO --source VIDEO [--data-dir DIR] [--json OUT.json]
    python src/bench.py panels --video out/dance_gen4.mp4
    python src/bench.py decode --video VIDEO [--rounds 3]
    python src/bench.py curves --history A_history.json B_history.json [--labels A B] [--out curves.png]
    python src/bench.py long --video VIDEO --minutes 5 --out long.mp4
    python src/bench.py train --target VIDEO [--sizes 64 128 256] [--kinds gan ...] [--recipe FILE]
                              [--peak-tflops T] [--device D] [--data-dir DIR] [--json OUT.json]

spine:
- mediapipe alone: the detector (with its segmentation, as preprocessing runs it) in one process on the first 600
  frames, decoded beforehand, nothing else;
- preprocess: VideoSkeleton with FORCE_COMPUTE, every frame (decode, detect, crop, write), end to end;
- reload: VideoSkeleton from its cache;
- nearest: GenNearest queries per second (the source's poses against the target's frames);
- demo: DanceDemo with GEN_TYPE 1, frames written per second (caches warm).
decode: every frame to a BGR array with OpenCV (what VideoIO reads with) and with PyAV, alternated.
train (the same step functions and batch handling as the trainers, their default configuration unless --recipe
says otherwise, batch 16):
- bare: the training step alone on one batch already on the device: the network's own speed;
- fed: the step fed as train_loop feeds it: a random batch of the target's samples (Training.Samples: prepared on
  first use, then kept), moved to the device and augmented. The gap between the two is what the data path costs.
  Each row's GFLOP/s (the step's arithmetic, counted by torch, over its time) is also given as a share of a large
  matrix product's GFLOP/s in the same precision on the same device: how near the step comes to the hardware.
"""
import argparse
import itertools
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

import VideoIO
from DanceDemo import DanceDemo
from GenNearest import GenNearest
from Runtime import DEFAULT_DATA_DIR, UserError, native_stderr_silenced, run_main
from Skeleton import retarget
from Detection import PoseDetector
from VideoSkeleton import VideoSkeleton


MEDIAPIPE_FRAMES = 600  # frames decoded beforehand for "mediapipe alone": its speed, in bounded memory


def bench_mediapipe(video):
    frames = [frame for _, frame in itertools.islice(VideoIO.read_frames(video), MEDIAPIPE_FRAMES)]
    found = 0
    with native_stderr_silenced(), PoseDetector(segment=True) as detect:  # as preprocessing runs it: with masks
        started = time.perf_counter()
        for frame in frames:
            found += detect.detect_with_mask(frame)[0] is not None
        seconds = time.perf_counter() - started
    return {"frames": len(frames), "found": found, "fps": len(frames) / seconds}


def bench_spine(args):
    results = {"target": str(args.target), "source": str(args.source)}
    # MediaPipe includes its colour conversion in PoseDetector; the frames are decoded before the clock starts.
    results["mediapipe_alone"] = bench_mediapipe(args.target)
    started = time.perf_counter()
    target = VideoSkeleton(args.target, force_compute=True, mod_frame=1, data_dir=args.data_dir)
    seconds = time.perf_counter() - started
    results["preprocess"] = {"frames": target.frames_processed, "found": target.skeCount(),
                             "fps": target.frames_processed / seconds, "seconds": seconds}
    results["preprocess"]["ratio_to_mediapipe"] = results["preprocess"]["fps"] / results["mediapipe_alone"]["fps"]
    started = time.perf_counter()
    VideoSkeleton(args.target, mod_frame=1, data_dir=args.data_dir)
    results["reload_seconds"] = time.perf_counter() - started

    source = VideoSkeleton(args.source, mod_frame=1, data_dir=args.data_dir)
    generator = GenNearest(target)
    queries = [retarget(s, source.body_frame(), target.body_frame()) for s in source.ske] * 20
    generator.generate(queries[0])
    started = time.perf_counter()
    for query in queries:
        generator.nearest(query)
    results["nearest"] = {"target_frames": target.skeCount(), "queries_per_s": len(queries) /
                          (time.perf_counter() - started)}

    demo = DanceDemo(args.source, 1, args.target, args.data_dir)
    out = args.data_dir / "bench_demo.mp4"
    started = time.perf_counter()
    frames, codec, _ = demo.write(out, panel_size=256)  # 256-px panels, as every earlier record (RESULTS.md, "Speed")
    results["demo"] = {"frames": frames, "codec": codec, "fps": frames / (time.perf_counter() - started)}
    out.unlink()

    print(f"mediapipe alone : {results['mediapipe_alone']['fps']:7.1f} frames/s "
          f"({results['mediapipe_alone']['found']}/{results['mediapipe_alone']['frames']} with a person)")
    print(f"preprocess      : {results['preprocess']['fps']:7.1f} frames/s "
          f"({results['preprocess']['ratio_to_mediapipe']:.2f} x mediapipe alone; "
          f"{results['preprocess']['found']}/{results['preprocess']['frames']} with a person)")
    print(f"cache reload    : {results['reload_seconds']:7.2f} s")
    print(f"nearest         : {results['nearest']['queries_per_s']:7.0f} queries/s over "
          f"{results['nearest']['target_frames']} target frames")
    print(f"demo (GEN 1)    : {results['demo']['fps']:7.1f} frames/s ({codec})")
    return results


def synchronize(device):
    """Wait for the GPU's queued work (CUDA and MPS run asynchronously), so the clock times the work itself."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def time_steps(step, next_batch, steps, device):
    """Seconds per step, after two warm-up steps, waiting for the GPU to finish."""
    for _ in range(2):
        step(next_batch())
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step(next_batch())
    synchronize(device)
    return (time.perf_counter() - started) / steps


def step_dtype(device):
    """The precision the trainers' convolutions run in on `device`: autocast's (bfloat16 on CUDA), else float32."""
    import torch

    import Training

    with Training.autocast(device):
        return torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else torch.float32


def matmul_ceiling(device, dtype, size=None, steps=5):
    """GFLOP/s of one large square matrix product in `dtype` on `device`: about the most arithmetic this hardware
    does in practice, the yardstick for a training step's GFLOP/s (its convolutions run as matrix products on the
    same units). A maker's stated peak is higher still; --peak-tflops compares with that."""
    import torch

    size = size or (8192 if device.type == "cuda" else 2048)
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    seconds = time_steps(lambda _: a @ b, lambda: None, steps, device)
    return 2 * size ** 3 / seconds / 1e9


def trainer_config(kind, size, recipe):
    """The configuration the trainers would use for `kind` at `size`, with a recipe file's settings if given."""
    import TrainingSetup

    settings = TrainingSetup.read_recipe(recipe, kind) if recipe else {}
    return TrainingSetup.make_config(kind, {**settings, "size": size})


def bench_train(args):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import PoseEncoding
    import Training
    from GenGAN import gan_step
    from GenVanillaNN import l1_step
    from Generators import build_memory
    from VideoSkeleton import CropCache
    from Networks import build_discriminator, build_generator
    from Runtime import pick_device

    if args.peak_tflops is not None and args.peak_tflops <= 0:
        raise UserError(f"--peak-tflops must be a positive number of TFLOP/s, got {args.peak_tflops:g}")
    device = pick_device(args.device)
    for kind in args.kinds:  # a bad recipe is refused before the target's (possibly long) preprocessing
        trainer_config(kind, args.sizes[0], args.recipe)
    video = VideoSkeleton(args.target, mod_frame=1, data_dir=args.data_dir)
    results = {"target": str(args.target), "device": str(device), "batch_size": args.batch_size,
               "recipe": str(args.recipe) if args.recipe else None, "rows": []}
    print(f"device {device}, batch {args.batch_size}, torch threads {torch.get_num_threads()}"
          + (f", recipe {args.recipe}" if args.recipe else ""))
    ceilings = {}  # GFLOP/s of a large matrix product, per precision the steps run in
    for size in args.sizes:
        for kind in args.kinds:
            config = trainer_config(kind, size, args.recipe)
            indices = np.arange(min(video.skeCount(), 4 * args.batch_size))
            crops = CropCache(video, size)
            data = Training.Samples(video, indices, config, build_memory(video, indices, config, crops), crops)
            torch.manual_seed(0)
            generator = Training.prepare_module(build_generator(config), device, 1)
            optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
            if kind == "gan":
                discriminator = Training.prepare_module(build_discriminator(config), device, 1)
                optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
                step = gan_step(generator, discriminator, optimizer, optimizer_d, config, device)
            else:
                step = l1_step(generator, optimizer, config, device)
            on_device = Training.on_device(data.batch(range(args.batch_size)), device)
            with FlopCounterMode(display=False) as counter:  # the arithmetic one step needs, to compare with
                step(on_device)                              # what the hardware can do
            steps = max(2, int(args.steps * 64 / size))
            bare = time_steps(step, lambda: on_device, steps, device)
            count = len(data)
            augmentation = torch.Generator().manual_seed(0)

            def fed_batch():
                batch = Training.on_device(data.batch(torch.randint(count, (args.batch_size,))), device)
                return PoseEncoding.augment(batch, augmentation) if config["augment"] else batch

            fed = time_steps(step, fed_batch, steps, device)
            dtype = step_dtype(device)
            if dtype not in ceilings:
                ceilings[dtype] = matmul_ceiling(device, dtype)
                print(f"matrix product ceiling in {str(dtype).removeprefix('torch.')}: {ceilings[dtype]:.1f} GFLOP/s")
            gflop = counter.get_total_flops() / 1e9
            achieved = gflop / bare
            row = {"kind": kind, "size": size, "bare_step_s": bare, "bare_images_per_s": args.batch_size / bare,
                   "fed_step_s": fed, "fed_images_per_s": args.batch_size / fed,
                   "gflop_per_step": gflop, "achieved_gflops": achieved,
                   "dtype": str(dtype).removeprefix("torch."), "matmul_ceiling_gflops": ceilings[dtype],
                   "share_of_ceiling": achieved / ceilings[dtype]}
            line = (f"{kind:9s} {size:4d} px: bare {1000 * bare:8.1f} ms/step ({row['bare_images_per_s']:7.1f} img/s, "
                    f"{achieved:6.1f} GFLOP/s, {row['share_of_ceiling']:4.0%} of the ceiling")
            if args.peak_tflops is not None:
                row["share_of_stated_peak"] = achieved / (1000 * args.peak_tflops)
                line += f", {row['share_of_stated_peak']:5.1%} of {args.peak_tflops:g} TFLOP/s"
            print(f"{line}), fed {1000 * fed:8.1f} ms/step ({row['fed_images_per_s']:7.1f} img/s)")
            results["rows"].append(row)
    return results


def plot_curves(args):
    """Held-out SSIM and missed re-detections against training minutes, one line per run (its history JSON)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = args.labels or [Path(h).stem.replace("_history", "") for h in args.history]
    if len(labels) != len(args.history):
        raise UserError("give one --labels entry per --history file")
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for path, label in zip(args.history, labels):
        try:
            history = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"cannot read training history {path}: {error}") from None
        if not all("minutes" in h and "val_missed" in h for h in history):
            raise UserError(f"{path} has no minutes or missed rates: it was written before they were recorded")
        minutes = [h["minutes"] for h in history]
        left.plot(minutes, [h["val_ssim"] for h in history], marker="o", markersize=3, label=label)
        right.plot(minutes, [100 * h["val_missed"] for h in history], marker="o", markersize=3, label=label)
    left.set(xlabel="training minutes", ylabel="held-out SSIM", title="SSIM (higher is better)")
    right.set(xlabel="training minutes", ylabel="% of held-out frames",
              title="no person re-detected (lower is better)")
    for axis in (left, right):
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")
    return {"history": [str(h) for h in args.history], "labels": labels, "plot": str(args.out)}


def count_people_in_panels(args):
    """In how many frames of a DanceDemo video MediaPipe finds a person in the generated (right-hand) panel."""
    from Detection import Redetector

    found = total = 0
    with native_stderr_silenced() as terminal:
        redetect = Redetector()
        for _, frame in tqdm(VideoIO.read_frames(args.video), desc="re-detecting", unit="frame", file=terminal):
            total += 1
            found += redetect(frame[:, frame.shape[1] // 2:]) is not None
        redetect.close()
    if total == 0:
        raise UserError(f"{args.video} has no frames")
    print(f"{args.video}: a person found in {found} of {total} generated panels ({found / total:.0%})")
    return {"video": str(args.video), "frames": total, "person_found": found}


def bench_decode(args):
    """Decoding alone, every frame of a video to a BGR array: OpenCV against PyAV, alternated round by round, so
    that both see the same machine load."""
    import av

    def with_opencv():
        capture, frames = cv2.VideoCapture(str(args.video)), 0
        while capture.read()[0]:
            frames += 1
        capture.release()
        return frames

    def with_pyav():
        frames = 0
        with av.open(str(args.video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                frame.to_ndarray(format="bgr24")
                frames += 1
        return frames

    if not args.video.is_file():
        raise UserError(f"{args.video} does not exist")
    if with_opencv() == 0:
        raise UserError(f"{args.video} has no frames OpenCV can decode")
    rates, frames = {"opencv": [], "pyav": []}, {}
    for _ in tqdm(range(args.rounds), desc="decoding", unit="round"):
        for name, decode in (("opencv", with_opencv), ("pyav", with_pyav)):
            start = time.perf_counter()
            frames[name] = decode()
            rates[name].append(frames[name] / (time.perf_counter() - start))
    for name, rate in rates.items():
        print(f"{name}: {frames[name]} frames, {min(rate):.0f} to {max(rate):.0f} frames/s over {args.rounds} rounds")
    return {"video": str(args.video), "frames": frames, "frames_per_s": rates}


def make_long(args):
    """A long target joined from a shorter video played over and over until it lasts --minutes: H.264 at the video's
    own size and frame rate, read and written a frame at a time."""
    info = VideoIO.video_info(args.video)
    wanted = round(args.minutes * 60 * info["fps"])
    size = (info["width"] // 2 * 2, info["height"] // 2 * 2)
    written = 0
    with VideoIO.VideoWriter(args.out, info["fps"], size) as video, tqdm(total=wanted, desc="writing",
                                                                           unit="frame") as bar:
        while written < wanted:
            lap = 0
            for _, frame in VideoIO.read_frames(args.video):
                if written == wanted:
                    break
                video.write(frame[:size[1], :size[0]])
                written, lap = written + 1, lap + 1
                bar.update()
            if lap == 0:
                raise UserError(f"{args.video} has no frames to make a long video of")
    print(f"wrote {args.out}: {written} frames, {written / info['fps'] / 60:.1f} minutes")
    return {"video": str(args.video), "out": str(args.out), "frames": written, "fps": info["fps"]}


def main():
    parser = argparse.ArgumentParser(description="Measure preprocessing, nearest-neighbour, demo and training speed.")
    commands = parser.add_subparsers(dest="command", required=True)
    spine = commands.add_parser("spine", help="preprocessing, cache reload, nearest neighbour, demo")
    spine.add_argument("--target", type=Path, required=True)
    spine.add_argument("--source", type=Path, required=True)
    train = commands.add_parser("train", help="training step time per network and size")
    train.add_argument("--target", type=Path, required=True)
    train.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--steps", type=int, default=8, help="timed steps at 64 px (fewer at larger sizes)")
    train.add_argument("--device", default=None)
    train.add_argument("--kinds", nargs="+", default=["vanilla1", "vanilla2", "gan"],
                       choices=("vanilla1", "vanilla2", "gan"))
    train.add_argument("--recipe", type=Path, metavar="FILE",
                       help="measure the networks a recipe file (config/*.py) sets (default: the trainers' defaults)")
    train.add_argument("--peak-tflops", type=float, metavar="T",
                       help="the device's peak in the steps' precision as its maker states it (e.g. 989 for an "
                       "H100 or H200 in bfloat16), to report each step's share of it")
    curves = commands.add_parser("curves", help="plot held-out SSIM and missed rate against training minutes")
    curves.add_argument("--history", type=Path, nargs="+", required=True,
                        help="the runs' DATA_DIR/<target>/models/<kind>_<size>_history.json files")
    curves.add_argument("--labels", nargs="+", help="one name per run (default: the file names)")
    curves.add_argument("--out", type=Path, default=Path("curves.png"))
    panels = commands.add_parser("panels", help="re-detect the person in a DanceDemo video's generated panels")
    panels.add_argument("--video", type=Path, required=True, help="a video written by DanceDemo.py")
    decode = commands.add_parser("decode", help="decoding speed: OpenCV against PyAV")
    decode.add_argument("--video", type=Path, required=True)
    decode.add_argument("--rounds", type=int, default=3)
    long = commands.add_parser("long", help="make a long target from a short video, for measuring long footage")
    long.add_argument("--video", type=Path, required=True)
    long.add_argument("--minutes", type=float, default=5.0)
    long.add_argument("--out", type=Path, required=True)
    for command in (spine, train, curves, panels, decode, long):
        command.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
        command.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    machine = f"{platform.machine()}, {cv2.getNumberOfCPUs()} cores"
    print(f"machine: {machine}")
    results = {"spine": bench_spine, "train": bench_train, "curves": plot_curves,
               "panels": count_people_in_panels, "decode": bench_decode, "long": make_long}[args.command](args)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, **results}, indent=1))


if __name__ == "__main__":
    run_main(main)
