"""TrainingSetup: the command line that GenVanillaNN.py and GenGAN.py share, and how it becomes a training run.

- the arguments every trainer takes (add_training_arguments) and the plain configuration saved in each checkpoint
  (make_config);
- prepare(): checks the arguments, starts the devices and processes, loads the target's data and appearance memory
  (Training.py), and finds the checkpoint to resume, refusing one trained with other network shapes;
- finish(): closes the processes and says where the files are.
The training itself (data, losses, loop) is Training.py's.
"""
import argparse
from pathlib import Path

import torch

import PoseEncoding
from AppearanceMemory import MODES, PLATE_CHOICES, PLATE_FILLS
from Checkpoints import checkpoint_path, load_checkpoint
from Runtime import UserError
from Training import (VECTOR_KINDS, build_memory, load_pairs, refuse_slow_cpu_bf16, setup_distributed,
                      split_indices)

VANILLA_NGF = 32  # the vanilla networks' width; GenGAN.GAN_NGF is the GAN's
# Without --epochs: this many, or with a time budget as many as fit in it (a short clip trained 10 epochs stops far
# short of the minutes it was given: karate1's held-out SSIM rose from 0.833 after 10 epochs to 0.869 after 51).
EPOCHS_WITHOUT_BUDGET = 10


def add_training_arguments(parser, default_size, default_ngf=VANILLA_NGF, default_ssim_weight=0.0,
                           default_trust_weight=0.0, default_trust_region="frame"):
    parser.add_argument("--target", type=Path, required=True, help="video of the person to learn")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"train until this many epochs in all (default: as many as --time-budget allows, or "
                        f"{EPOCHS_WITHOUT_BUDGET} without one)")
    parser.add_argument("--size", type=int, default=default_size, choices=(64, 128, 256),
                        help=f"image side in pixels (default {default_size})")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (betas 0.5, 0.999)")
    parser.add_argument("--ngf", type=int, default=default_ngf,
                        help=f"channels of the generator's first layer (default {default_ngf})")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="last fraction of the frames, in time, held out and never trained on (default 0.2)")
    parser.add_argument("--pose-encoding", choices=PoseEncoding.ENCODINGS, default="limbs",
                        help="how the image networks see the pose: limbs (a channel per limb and a depth channel, "
                        "the default) or drawing (the skeleton drawn in colour, as before)")
    parser.add_argument("--memory", choices=MODES, default="plate",
                        help="appearance memory given beside the pose: the most alike training frame, its person cut "
                        "along the segmentation and moved part by part to the pose, on a clean background plate "
                        "(plate, the default); the same cut as capsules over that frame with its own person "
                        "inpainted (scene) or on black (person); or none")
    parser.add_argument("--plate-choice", choices=PLATE_CHOICES, default="placement",
                        help="the plate memory's background: that of the frame where the person stood in the same "
                        "place at the same size, which follows a camera that pans and zooms (placement, the default), "
                        "or that of the remembered frame itself (remembered, as before)")
    parser.add_argument("--plate-fill", choices=PLATE_FILLS, default="agree",
                        help="where a plate's moments never saw the background: the whole video's median if it "
                        "shows the same view around the hole, else inpainted (agree, the default), or the whole "
                        "video's median always (whole, as before)")
    parser.add_argument("--person-weight", type=float, default=1.0,
                        help="weight of the person's pixels (MediaPipe's segmentation) in the L1 and SSIM terms, "
                        "against 1 for the background (default 1: plain means)")
    parser.add_argument("--ssim-weight", type=float, default=default_ssim_weight,
                        help=f"weight of 1 - SSIM added to the L1 loss (default {default_ssim_weight:g}; 0: L1 alone)")
    parser.add_argument("--gradient-weight", type=float, default=0.0,
                        help="weight of L1 on the images' neighbour differences (edges) added to the L1 loss "
                        "(default 0: off)")
    parser.add_argument("--detail-weight", type=float, default=1.0,
                        help="weight of the pixels near the face's and hands' limbs in the L1, SSIM and edge terms, "
                        "against 1 elsewhere (needs --pose-encoding limbs; default 1: off)")
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="dropout in the U-Net's inner decoder levels while training, as in pix2pix (0.5 there; "
                        "none at 64 px, which has no such level; default 0: off)")
    parser.add_argument("--trust-weight", type=float, default=default_trust_weight,
                        help="price on the generator redrawing what the appearance memory shows (its mask's mean "
                        f"distrust), added to the L1 loss (default {default_trust_weight:g})")
    parser.add_argument("--trust-region", choices=("frame", "person"), default=default_trust_region,
                        help="where that price is paid: over the whole frame (frame) or over the person's pixels "
                        f"alone (person: the background may be redrawn freely; default {default_trust_region})")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=False,
                        help="random zoom, shift and turn of pose, image and memory together, per sample (default "
                        "off: it cost held-out scores in a 30-minute budget, see RESULTS.md)")
    parser.add_argument("--cpu-bf16", action=argparse.BooleanOptionalAction, default=False,
                        help="bfloat16 autocast on the CPU (default off: slower for these networks on the README's "
                        "CPUs; refused where oneDNN has no bfloat16; CUDA always uses mixed precision)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                        help="stop after the epoch during which this many minutes of training have passed")
    parser.add_argument("--mod-frame", type=int, default=1, help="use every N-th target frame (default 1)")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the target's cache and models live")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint of this kind and size")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: the best available)")


def epochs_to_train(epochs, time_budget):
    """--epochs as given; without it, as many as the time budget allows (None) or EPOCHS_WITHOUT_BUDGET."""
    return EPOCHS_WITHOUT_BUDGET if epochs is None and time_budget is None else epochs


def make_config(args, kind):
    """A run's configuration from the parsed arguments: plain values, saved in every checkpoint."""
    return {"kind": kind, "size": args.size, "ngf": args.ngf, "batch_size": args.batch_size, "lr": args.lr,
            "val_fraction": args.val_fraction, "seed": args.seed, "epochs": args.epochs,
            "pose_encoding": args.pose_encoding, "memory": args.memory,
            "plate_choice": args.plate_choice, "plate_fill": args.plate_fill, "cpu_bf16": args.cpu_bf16,
            "person_weight": args.person_weight, "ssim_weight": args.ssim_weight,
            "gradient_weight": args.gradient_weight, "detail_weight": args.detail_weight,
            "dropout": args.dropout, "trust_weight": args.trust_weight, "trust_region": args.trust_region,
            "augment": args.augment and kind not in VECTOR_KINDS,  # a joint vector cannot zoom with its image
            "time_budget_minutes": args.time_budget}


def refuse_changed_shape(resumed, config, shaping, path):
    """Resuming needs the networks (and optimiser states) the checkpoint was trained with: refuse, in one line, if
    any key of `shaping` differs; `shaping` maps each key to what a checkpoint from before that key was trained with
    (None: every checkpoint has it)."""
    trained_with = {key: resumed["config"].get(key, before_the_key) for key, before_the_key in shaping.items()}
    changed = [key for key in shaping if trained_with[key] != config[key]]
    if changed:
        raise UserError(f"cannot resume {path}: it was trained with " +
                        ", ".join(f"{key}={trained_with[key]}" for key in changed))


def prepare(args, kind, train_command):
    """Set up a training run from the parsed arguments: devices, processes, the target data, and the checkpoint
    to resume. Returns (run dict without step/generate_batch/checkpoint, checkpoint to resume or None)."""
    from VideoSkeleton import VideoSkeleton

    args.epochs = epochs_to_train(args.epochs, args.time_budget)
    if (args.epochs is not None and args.epochs < 1) or args.batch_size < 1 or not 0 < args.val_fraction < 1:
        raise UserError("--epochs and --batch-size must be 1 or more, --val-fraction between 0 and 1")
    if args.time_budget is not None and args.time_budget <= 0:
        raise UserError(f"--time-budget must be a positive number of minutes, got {args.time_budget:g}")
    if min(args.trust_weight, args.ssim_weight, args.gradient_weight) < 0 or args.person_weight <= 0:
        raise UserError("--trust-weight, --ssim-weight and --gradient-weight must be 0 or more, --person-weight "
                        "more than 0")
    if args.detail_weight <= 0 or (args.detail_weight != 1 and args.pose_encoding != "limbs"):
        raise UserError("--detail-weight must be more than 0, and other than 1 only with --pose-encoding limbs")
    if not 0 <= args.dropout < 1:
        raise UserError(f"--dropout is a probability from 0 up to (not including) 1, got {args.dropout:g}")
    device, rank, world = setup_distributed(args.device)
    refuse_slow_cpu_bf16(device, args.cpu_bf16)
    torch.manual_seed(args.seed + rank)
    if rank == 0:  # one process builds the cache if needed; the others wait, then read it
        video = VideoSkeleton(args.target, mod_frame=args.mod_frame, data_dir=args.data_dir)
    if world > 1:
        torch.distributed.barrier()
    if rank != 0:
        video = VideoSkeleton(args.target, mod_frame=args.mod_frame, data_dir=args.data_dir)
    train_indices, held_out_indices = split_indices(video.skeCount(), args.val_fraction)
    config = make_config(args, kind)
    path = checkpoint_path(video, kind, args.size)
    resumed = None
    if args.resume:
        resumed = load_checkpoint(path, kind, video, train_command)
        shaping = dict.fromkeys(("size", "ngf", "val_fraction", "pose_encoding", "memory"))
        refuse_changed_shape(resumed, config, {**shaping, "plate_choice": "remembered", "plate_fill": "whole"},
                             path)
        if args.epochs is not None and resumed["epoch"] >= args.epochs:
            raise UserError(f"{path} has already trained {resumed['epoch']} epochs: ask for more with --epochs")
    elif path.exists() and rank == 0:
        raise UserError(f"{path} exists: add --resume to continue it, or delete it to start over")
    memory = build_memory(video, train_indices, config)
    run = {"config": config, "device": device, "rank": rank, "world": world, "video": video,
           "train_indices": train_indices, "data": load_pairs(video, train_indices, config, memory, training=True),
           "held_out": load_pairs(video, held_out_indices, config, memory), "out_dir": path.parent,
           "name": path.stem, "start_epoch": resumed["epoch"] if resumed else 0,
           "history": resumed["history"] if resumed else []}
    if rank == 0:
        print(f"{kind}: {len(train_indices)} training frames, {len(held_out_indices)} held out, {args.size} px, "
              f"on {device}" + (f" x {world} processes" if world > 1 else "") +
              (f", resuming after epoch {run['start_epoch']}" if resumed else ""))
    return run, resumed


def finish(run):
    if run["world"] > 1:
        torch.distributed.destroy_process_group()
    if run["rank"] == 0:
        print(f"checkpoint, samples and loss plot in {run['out_dir']}/{run['name']}*")
