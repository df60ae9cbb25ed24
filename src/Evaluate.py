"""Evaluate: score generators on held-out frames of the target, as Everybody Dance Now did, plus time and speed.

    python src/Evaluate.py --target VIDEO [--source VIDEO] --gen-type 1 [2 3 4] [--baseline] --json OUT.json
                           [--report DIR] [--data-dir DIR] [--score-size N] [--device D]

Held-out protocol: the last --val-fraction (20%) of the target's frames, in time, which the trainers never train on
and GenNearest never searches. Each held-out frame's own pose goes into the generator; its real crop is the ground
truth. The poses go in as a sequence, as in DanceDemo: nearest neighbour's frames and the networks' remembered
frames are chosen together so that they seldom change (--no-smooth: each pose alone). Every image is compared at
--score-size pixels (default: the network's). A "real" row scores the real held-out crops as if generated: it is
the floor of every pose and temporal figure, because the detector and optical flow have errors of their own.

Per generator:
- psnr, ssim (whole crop) and ssim_person (the box around the driving pose, where the person is);
- pose_distance_px / _pct: MediaPipe run again on the generated frame, mean 2-D distance of the 13 reduced joints
  to the pose that drove it, in pixels at --score-size and in % of the side, over the frames where a pose was found;
  missed_rate: the share of frames where none was. Re-detection is made as reliable as we can for every row
  alike: the image is upscaled to 384 px (bicubic) and padded by 25% on each side with its edge colours, and the
  detector runs in static mode (each frame alone, so no tracking smooths jitter away);
- sharpness: variance of the Laplacian inside the person's box (real frames give the reference), and
  sharpness_ratio, each frame's over its real frame's, averaged (1.0 for the real row); ssim_face: SSIM inside a
  box around the face's landmarks (FACE_SIDE torso lengths square), as Everybody Dance Now crops the face;
- where ssim_person is lost (person_ssim_breakdown): the generated person on the real background, the real person
  on the generated background, and ssim_person on the frames whose person is larger than in any training frame
  (ssim_person_larger, with their count) and on the others (ssim_person_trained_sizes);
- tof: mean absolute difference between the optical flow (DIS) of consecutive generated frames and of the
  corresponding real frames, in pixels at --score-size (tOF of Chu et al. 2020); jitter: mean length of the second
  difference in time of the re-detected joints' error (pixels): the shake a viewer sees beyond the motion itself;
- with --source, transfer: the source's poses (smoothed, unless --no-smooth) moved into the target's space; pose
  distance, missed rate, shake and warp error (transfer_stability), as there is no true image;
- gen_fps (the held-out frames as generated above: as a sequence, or one pose at a time with --no-smooth),
  gen_fps_batched (32 poses at a time, each alone), and demo_fps (DanceDemo end to end, with --source).
LPIPS and FID need ImageNet weights that no package on this machine ships; they are not computed.
"""
import argparse
import json
import platform
import time
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np
import torch

from DanceDemo import DanceDemo, source_poses
from Detection import REDETECT_PAD, REDETECT_SIDE, Redetector
from GenNearest import GenNearest
from Generators import GEN_TYPES, TrainedGenerator, make_generator
from Measures import image_scores, pose_scores, sharpnesses, temporal_flow_error, transfer_stability
from Runtime import DEFAULT_DATA_DIR, UserError, native_stderr_silenced, pick_device, run_main
from Skeleton import REDUCED_JOINTS, torso_length
from VideoSkeleton import VideoSkeleton, split_indices


# ---- generators -------------------------------------------------------------------------------------------------

def generate_all(generator, skeletons, size, coherent=False):
    """One image per skeleton at size x size (BGR uint8), and the seconds it took, one pose at a time; with
    coherent=True, as a sequence (generate_sequence): nearest neighbour's frames, or a network's remembered frames,
    chosen together so that they seldom change, as DanceDemo does."""
    started = time.perf_counter()
    if coherent:
        images = generator.generate_sequence(skeletons)
    else:
        images = [generator.generate(s) for s in skeletons]
    seconds = time.perf_counter() - started
    return [cv2.resize(i, (size, size), interpolation=cv2.INTER_AREA if i.shape[0] > size else cv2.INTER_CUBIC)
            for i in images], seconds


def batched_fps(generator, skeletons, batch_size=32):
    """Frames per second when the generator gets poses 32 at a time, each with its own memory (a network's natural
    mode)."""
    if not isinstance(generator, TrainedGenerator):
        return None  # GenNearest has no batch mode: each answer is a table lookup
    started = time.perf_counter()
    for start in range(0, len(skeletons), batch_size):
        generator.generate_many(skeletons[start:start + batch_size])
    return len(skeletons) / (time.perf_counter() - started)


def make_row_generator(name, target, train_indices, val_fraction, device):
    """The generator behind a row: GEN_TYPE 1-4 as DanceDemo makes them, or the course baseline."""
    if name == "1":
        return GenNearest(target, indices=train_indices)  # only the training frames: the held-out ones are answers
    if name == "baseline":
        generator = TrainedGenerator(target, "baseline", device=device)
    else:
        generator = make_generator(int(name), target, device=device)
    trained_fraction = generator.config["val_fraction"]
    if trained_fraction < val_fraction:
        raise UserError(f"{generator.checkpoint_path} held out only {trained_fraction:.0%} of the frames: it has "
                        f"seen some of the {val_fraction:.0%} evaluated here")
    return generator


RUN_FRAMES = 10  # a long video's held-out frames are scored in runs of this many consecutive frames
DEFAULT_SCORE_SIZE = 128


def scored_frames(held, most):
    """The held-out frames scored: all of them, or for a long video `most` of them, in runs of RUN_FRAMES
    consecutive frames evenly spaced (so that the flicker measures still see consecutive pairs)."""
    if len(held) <= most:
        return held
    starts = np.linspace(0, len(held) - RUN_FRAMES, most // RUN_FRAMES).round().astype(int)
    return held[np.unique((starts[:, None] + np.arange(RUN_FRAMES)).ravel())]


def evaluate(args):
    device = pick_device(args.device)
    target = VideoSkeleton(args.target, mod_frame=1, data_dir=args.data_dir)
    train_indices, held = split_indices(target.skeCount(), args.val_fraction)
    held_out_count, held = len(held), scored_frames(held, args.max_frames)
    rows = ["real"] + [str(g) for g in args.gen_type] + (["baseline"] if args.baseline else [])
    generators = {name: make_row_generator(name, target, train_indices, args.val_fraction, device)
                  for name in rows[1:]}  # made first, to fail early, and to know the networks' size
    sizes = [g.size for g in generators.values() if isinstance(g, TrainedGenerator)]
    size = args.score_size or (sizes[0] if sizes else DEFAULT_SCORE_SIZE)
    if size > target.crop_size:
        raise UserError(f"--score-size {size} is larger than the target's cached crops ({target.crop_size} px): the "
                        f"real frames are not known at that size")
    landmarks = target.landmarks[held]
    driving = target.landmarks[held][:, REDUCED_JOINTS, :2]
    skeletons = [target.ske[i] for i in held]
    frame_numbers = target.frame_index[held]
    consecutive = [i for i in range(len(held) - 1) if frame_numbers[i + 1] - frame_numbers[i] == 1]
    real = [cv2.resize(target.readImage(i), (size, size), interpolation=cv2.INTER_AREA) for i in held]
    masks = [cv2.resize(target.readMask(i), (size, size), interpolation=cv2.INTER_AREA) for i in held]
    real_sharpness = sharpnesses(real, driving, size)
    larger = torso_length(target.landmarks[held]) > torso_length(target.landmarks[train_indices]).max()
    if args.source:
        source = VideoSkeleton(args.source, mod_frame=1, data_dir=args.data_dir)
        poses = source_poses(source, target, args.smooth)
        transfer_frames = np.array(sorted(poses))
        transfer_skeletons = [poses[f] for f in transfer_frames]
        transfer_driving = np.stack([s.landmarks[REDUCED_JOINTS, :2] for s in transfer_skeletons])

    results, images = {}, {}
    with native_stderr_silenced():
        redetect = Redetector()
    try:
        for name in rows:
            print(f"evaluating {name} on {len(held)} held-out frames ...")
            if name == "real":
                generator, generated, seconds = None, real, None
            else:
                generator = generators[name]
                generated, seconds = generate_all(generator, skeletons, size, args.smooth)
            images[name] = [generated[i] for i in sheet_picks(len(held))]  # the contact sheet's: memory stays bounded
            with native_stderr_silenced():
                detected = [redetect(image) for image in generated]
            row = pose_scores(detected, driving, size)
            if name != "real":  # the real row's image scores would be perfect by definition
                row.update(image_scores(generated, real, driving, landmarks, size, masks, larger))
            row["tof"] = temporal_flow_error(generated, real, consecutive)
            sharp = sharpnesses(generated, driving, size)
            row["sharpness"] = float(sharp.mean())
            row["sharpness_ratio"] = float(np.mean(sharp / np.maximum(real_sharpness, 1e-6)))  # 1.0 for the real
            if generator is not None:
                row["gen_fps"] = len(held) / seconds
                row["gen_fps_batched"] = batched_fps(generator, skeletons)
                if isinstance(generator, TrainedGenerator):
                    row.update(checkpoint=str(generator.checkpoint_path), trained_epochs=generator.epochs,
                               best_epoch=generator.best_epoch, trained_minutes=generator.minutes,
                               config=generator.config)
                if args.source:
                    transfer, _ = generate_all(generator, transfer_skeletons, size, args.smooth)
                    with native_stderr_silenced():
                        found = [redetect(image) for image in transfer]
                    scores = pose_scores(found, transfer_driving, size)
                    scores.update(transfer_stability(found, transfer, transfer_frames, transfer_driving))
                    row.update({f"transfer_{k}": v for k, v in scores.items() if k != "frames"})
                    if name != "baseline":
                        demo = DanceDemo(args.source, int(name), args.target, args.data_dir, device=args.device,
                                         smooth=args.smooth)
                        out = Path(args.report or args.data_dir) / f"evaluate_demo_{name}.mp4"
                        started = time.perf_counter()
                        frames = demo.write(out)[0]
                        row["demo_fps"] = frames / (time.perf_counter() - started)
                        out.unlink()
            results[name] = row
    finally:
        redetect.close()

    report = {"target": str(args.target), "source": str(args.source) if args.source else None, "smooth": args.smooth,
              "split": {"frames": target.skeCount(), "train": len(train_indices), "held_out": held_out_count,
                        "scored": len(held),
                        "val_fraction": args.val_fraction, "consecutive_pairs": len(consecutive)},
              "image_size": size, "device": str(device), "machine": f"{platform.machine()}, "
              f"{cv2.getNumberOfCPUs()} cores", "versions": {"torch": str(torch.__version__),
                                                              "mediapipe": version("mediapipe"),
                                                              "opencv": cv2.__version__},
              "redetection": f"static mode, upscaled to {REDETECT_SIDE} px, padded {REDETECT_PAD:.0%} by edge colours",
              "lpips": "not computed: no package on this machine ships its ImageNet weights",
              "generators": results}
    return report, images, skeletons, size


# ---- report -----------------------------------------------------------------------------------------------------

COLUMNS = [("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("ssim_person", "SSIM person", "{:.3f}"),
           ("ssim_face", "SSIM face", "{:.3f}"), ("sharpness_ratio", "sharpness / real", "{:.2f}"),
           ("pose_distance_px", "pose dist px", "{:.2f}"), ("pose_distance_pct", "pose dist %", "{:.2f}"),
           ("missed_rate", "missed", "{:.1%}"), ("tof", "tOF px", "{:.3f}"), ("jitter", "jitter px", "{:.2f}"),
           ("sharpness", "sharpness", "{:.0f}"), ("ssim_person_real_background", "SSIM person on real bg", "{:.3f}"),
           ("ssim_person_real_person", "SSIM real person on its bg", "{:.3f}"),
           ("ssim_person_larger", "SSIM person, larger than trained", "{:.3f}"),
           ("transfer_pose_distance_pct", "transfer dist %", "{:.2f}"), ("transfer_missed_rate", "transfer missed",
                                                                        "{:.1%}"),
           ("transfer_shake", "transfer shake %", "{:.2%}"), ("transfer_warp_error", "transfer warp err", "{:.2f}"),
           ("gen_fps", "gen fps", "{:.1f}"), ("gen_fps_batched", "gen fps x32", "{:.1f}"),
           ("demo_fps", "demo fps", "{:.1f}")]
SHORT_NAMES = {"real": "real", **{str(k): f"{k} {v.short}" for k, v in GEN_TYPES.items()}, "baseline": "course"}
ROW_NAMES = {"real": "real frames", **{str(k): f"{k} {v.name}" for k, v in GEN_TYPES.items()},
             "baseline": "course baseline"}


def markdown_table(report):
    rows = report["generators"]
    columns = [c for c in COLUMNS if any(rows[r].get(c[0]) is not None for r in rows)]
    lines = ["| generator | " + " | ".join(c[1] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        cells = [fmt.format(row[key]) if row.get(key) is not None else "" for key, _, fmt in columns]
        lines.append(f"| {ROW_NAMES.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sheet_picks(count):
    """The held-out frames on the contact sheet: 6, evenly spaced."""
    return np.linspace(0, count - 1, min(6, count)).astype(int)


def write_report(directory, report, images, skeletons, size):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.md").write_text(
        f"# Evaluation on {Path(report['target']).name}\n\n{report['split']['held_out']} held-out frames (the last "
        f"{report['split']['val_fraction']:.0%}), {size} px, {report['device']}, {report['machine']}.\n"
        f"Re-detection: {report['redetection']}. LPIPS: {report['lpips']}.\n\n{markdown_table(report)}\n")
    # Contact sheet: the same held-out frames in every column.
    picks = sheet_picks(len(skeletons))
    columns = [[skeletons[i].draw_image(size) for i in picks]] + [images[name] for name in images]
    sheet = np.vstack([np.hstack([column[r] for column in columns]) for r in range(len(picks))])
    header = np.zeros((24, sheet.shape[1], 3), np.uint8)
    for c, title in enumerate(["pose"] + [SHORT_NAMES.get(n, n) for n in images]):
        cv2.putText(header, title, (c * size + 3, 17), cv2.FONT_HERSHEY_SIMPLEX, min(0.4, size / 200), (255, 255, 255),
                    1, cv2.LINE_AA)
    cv2.imwrite(str(directory / "contact_sheet.png"), np.vstack([header, sheet]))
    # One bar chart per key figure.
    keys = [("ssim", "SSIM (higher is better)"), ("pose_distance_pct", "pose distance, % of side (lower)"),
            ("missed_rate", "missed re-detections (lower)"), ("tof", "tOF, px (lower)")]
    figure, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.5))
    names = list(report["generators"])
    for axis, (key, title) in zip(axes, keys):
        values = [report["generators"][n].get(key) or 0 for n in names]
        axis.bar([ROW_NAMES.get(n, n) for n in names], values, color="tab:blue")
        axis.set_title(title, fontsize=9)
        axis.tick_params(axis="x", labelrotation=45, labelsize=7)
    figure.tight_layout()
    figure.savefig(directory / "metrics.png", dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Score generators on the target's held-out frames (image, pose, "
                                     "time, speed), as Everybody Dance Now did.")
    parser.add_argument("--target", type=Path, required=True)
    parser.add_argument("--source", type=Path, help="also score transfer from this video's poses")
    parser.add_argument("--gen-type", type=int, nargs="+", default=[1], choices=sorted(GEN_TYPES))
    parser.add_argument("--baseline", action="store_true", help="add the course baseline (GenVanillaNN.py --baseline)")
    parser.add_argument("--json", type=Path, required=True, help="write the results here")
    parser.add_argument("--report", type=Path, help="write report.md, contact_sheet.png and metrics.png here")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--score-size", type=int, metavar="N",
                        help="compare the images at this side, each enlarged or reduced to it (default: the first "
                        f"network's size; {DEFAULT_SCORE_SIZE} with nearest neighbour alone); up to the cached crops' "
                        "256 px")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--max-frames", type=int, default=1000,
                        help="score at most this many held-out frames, in evenly spaced runs of consecutive frames, "
                        "so that a long video is scored in bounded time and memory (default 1000)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-smooth", dest="smooth", action="store_false",
                        help="as DanceDemo --no-smooth: raw source poses, and nearest neighbour frame by frame")
    args = parser.parse_args(argv)
    if args.score_size is not None and args.score_size < 32:
        raise UserError("--score-size must be 32 or more")
    if args.max_frames < 2 * RUN_FRAMES:
        raise UserError(f"--max-frames must be {2 * RUN_FRAMES} or more")
    report, images, skeletons, size = evaluate(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    if args.report:
        write_report(args.report, report, images, skeletons, size)
    print(markdown_table(report))
    print(f"wrote {args.json}" + (f" and {args.report}/" if args.report else ""))


if __name__ == "__main__":
    run_main(main)
