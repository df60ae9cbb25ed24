"""bench.py: how fast the pieces run, measured on your videos and printed as a table (and JSON with --json).

    python src/bench.py --target VIDEO --source VIDEO [--data-dir DIR] [--json OUT.json]

- mediapipe alone: the detector on frames decoded to RGB beforehand, nothing else: the ceiling for preprocessing;
- preprocess: VideoSkeleton with FORCE_COMPUTE, every frame (decode, detect, crop, write), end to end;
- reload: VideoSkeleton from its cache;
- nearest: GenNearest queries per second (the source's poses against the target's frames);
- demo: DanceDemo with GEN_TYPE 1, frames written per second (caches warm).
"""
import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np

import VideoIO
from DanceDemo import DanceDemo
from GenNearest import GenNearest
from Runtime import DEFAULT_DATA_DIR, native_stderr_silenced, run_main
from Skeleton import retarget
from VideoSkeleton import PoseDetector, VideoSkeleton


def bench_mediapipe(video):
    frames = [frame for _, frame in VideoIO.read_frames(video)]
    found = 0
    with native_stderr_silenced(), PoseDetector() as detect:
        started = time.perf_counter()
        for frame in frames:
            found += detect(frame) is not None
        seconds = time.perf_counter() - started
    return {"frames": len(frames), "found": found, "fps": len(frames) / seconds}


def main():
    parser = argparse.ArgumentParser(description="Measure preprocessing, nearest-neighbour and demo speed.")
    parser.add_argument("--target", type=Path, required=True)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {cv2.getNumberOfCPUs()} cores",
               "target": str(args.target), "source": str(args.source)}

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
    frames, codec = demo.write(out)
    results["demo"] = {"frames": frames, "codec": codec, "fps": frames / (time.perf_counter() - started)}
    out.unlink()

    print(f"\nmachine: {results['machine']}")
    print(f"mediapipe alone : {results['mediapipe_alone']['fps']:7.1f} frames/s "
          f"({results['mediapipe_alone']['found']}/{results['mediapipe_alone']['frames']} with a person)")
    print(f"preprocess      : {results['preprocess']['fps']:7.1f} frames/s "
          f"({results['preprocess']['ratio_to_mediapipe']:.2f} x mediapipe alone; "
          f"{results['preprocess']['found']}/{results['preprocess']['frames']} with a person)")
    print(f"cache reload    : {results['reload_seconds']:7.2f} s")
    print(f"nearest         : {results['nearest']['queries_per_s']:7.0f} queries/s over "
          f"{results['nearest']['target_frames']} target frames")
    print(f"demo (GEN 1)    : {results['demo']['fps']:7.1f} frames/s ({codec})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    run_main(main)
