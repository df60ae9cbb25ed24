"""TrainingSetup: how a trainer's command line becomes a training run; GenVanillaNN.py and GenGAN.py share it.

A run's settings come from three places, each over the one before: the settled recipe (Checkpoints.DEFAULTS), a
recipe file if one is given (--recipe config/NAME.py: `name = value` lines, read without running them), and the
command line, which offers what a user tunes most. With --resume they start from the checkpoint's own settings
instead, and only how long to train comes anew. The whole configuration is saved in every checkpoint.
prepare() then starts the devices and processes, loads the target's data and appearance memory (Training.py) and
finds the checkpoint to resume; finish() closes the processes and says where the files are.
"""
import argparse
import ast
from pathlib import Path

import numpy as np
import torch

from Checkpoints import DEFAULTS, checkpoint_path, load_checkpoint, train_command
from Generators import TRAINERS, build_memory
from Networks import VECTOR_KINDS, GANLoss
from Runtime import UserError
from Training import Samples, setup_distributed
from VideoSkeleton import CropCache, VideoSkeleton, split_indices

# Without --epochs: this many, or with a time budget as many as fit in it (a short clip stops far short of its
# minutes after 10 epochs; RESULTS.md).
EPOCHS_WITHOUT_BUDGET = 10
# Held-out frames scored after each epoch, evenly spaced: all of them but a long video's.
EPOCH_SCORED_FRAMES = 300
# The settings that shape the networks and the held-out split: a resumed run cannot change them.
SHAPING = ("size", "ngf", "ndf", "val_fraction")


def add_training_arguments(parser, kind):
    """The options every trainer takes, their defaults those of `kind` in Checkpoints.DEFAULTS; GenGAN adds --ndf."""
    default = DEFAULTS[kind]
    parser.add_argument("--target", type=Path, required=True, help="video of the person to learn")
    parser.add_argument("--recipe", type=Path, metavar="FILE",
                        help="a recipe file (config/*.py) whose settings replace the defaults")
    parser.add_argument("--size", type=int, choices=(64, 128, 256),
                        help=f"image side in pixels (default {default['size']})")
    parser.add_argument("--epochs", type=int,
                        help=f"the most epochs in all (default: as many as --time-budget allows, or "
                        f"{EPOCHS_WITHOUT_BUDGET} without one)")
    parser.add_argument("--time-budget", type=float, metavar="MINUTES",
                        help="stop after the epoch in which this many minutes of training run out")
    parser.add_argument("--batch-size", type=int, help=f"images per step (default {default['batch_size']})")
    parser.add_argument("--seed", type=int, help=f"random seed (default {default['seed']})")
    parser.add_argument("--ngf", type=int, help=f"width of the generator's first layer (default {default['ngf']})")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction,
                        help="random zoom, shift and turn of pose, picture and memory together (default off; for "
                        "clips of about 80 frames)")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint of this kind and size")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    parser.add_argument("--data-dir", type=Path, help="where the target's cache and models live (default data/)")


def given_settings(args):
    """The settings given on the command line (options left out are None)."""
    names = ("size", "epochs", "time_budget", "batch_size", "seed", "ngf", "ndf", "augment")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def read_recipe(path, kind):
    """The settings a recipe file sets: `name = value` lines, each value a plain literal (a number, a string, True,
    False or None), and comments. Nothing in the file runs: it is parsed, not executed."""
    try:
        tree = ast.parse(Path(path).read_text(), filename=str(path))
    except OSError as error:
        raise UserError(f"cannot read recipe {path}: {error.strerror}") from None
    except SyntaxError as error:
        raise UserError(f"recipe {path}, line {error.lineno}: not a `name = value` line") from None
    settings = {}
    for node in tree.body:
        line = f"recipe {path}, line {node.lineno}"
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise UserError(f"{line}: only `name = value` lines are allowed")
        name = node.targets[0].id
        if name not in DEFAULTS[kind]:
            raise UserError(f"{line}: '{name}' is not a setting of the {kind} trainer; its settings are "
                            + ", ".join(DEFAULTS[kind]))
        try:
            settings[name] = ast.literal_eval(node.value)
        except ValueError:
            raise UserError(f"{line}: the value of {name} must be a number, a string, True, False or None") from None
    return settings


def epochs_to_train(epochs, time_budget):
    """--epochs as given; without it, as many as the time budget allows (None) or EPOCHS_WITHOUT_BUDGET."""
    return EPOCHS_WITHOUT_BUDGET if epochs is None and time_budget is None else epochs


def make_config(kind, settings, resumed=None):
    """A run's configuration: the defaults of `kind` (or with `resumed`, a checkpoint's configuration, less how
    long it trained), then `settings`. Checked, so a bad value is one line before any work."""
    start = {**resumed, "epochs": None, "time_budget": None} if resumed else {"kind": kind, **DEFAULTS[kind]}
    config = {**start, **settings}
    config["epochs"] = epochs_to_train(config["epochs"], config["time_budget"])
    check_config(config)
    return config


def check_config(config):
    """A UserError naming the first setting out of range (as the command line or a recipe spells it)."""
    def refuse(key, what):
        option = f"--{key.replace('_', '-')}" if key in ("size", "epochs", "time_budget", "batch_size", "seed",
                                                          "ngf", "ndf") else key
        raise UserError(f"{option} must be {what}, got {config[key]!r}")

    def number(key):
        return isinstance(config[key], (int, float)) and not isinstance(config[key], bool)

    def whole(key):
        return isinstance(config[key], int) and not isinstance(config[key], bool)

    for key in ("epochs", "batch_size", "ngf", "ndf"):
        if key in config and config[key] is not None and not (whole(key) and config[key] >= 1):
            refuse(key, "a whole number of 1 or more")
    if not whole("seed"):
        refuse("seed", "a whole number")
    if config["size"] not in (64, 128, 256):
        refuse("size", "64, 128 or 256")
    if config["kind"] == "baseline" and config["size"] != 64:
        refuse("size", "64 for the course baseline, the only size it makes")
    if config["time_budget"] is not None and not (number("time_budget") and config["time_budget"] > 0):
        refuse("time_budget", "a positive number of minutes")
    if not (number("val_fraction") and 0 < config["val_fraction"] < 1):
        refuse("val_fraction", "a fraction between 0 and 1")
    if not (number("lr") and config["lr"] > 0):
        refuse("lr", "a positive number")
    for key in ("ssim_weight", "trust_weight", "lambda_l1"):
        if key in config and not (number(key) and config[key] >= 0):
            refuse(key, "a number of 0 or more")
    if config["trust_region"] not in ("frame", "person"):
        refuse("trust_region", "'frame' or 'person'")
    if "gan_mode" in config and config["gan_mode"] not in GANLoss.MODES:
        refuse("gan_mode", " or ".join(repr(m) for m in GANLoss.MODES))
    if not isinstance(config["augment"], bool):
        refuse("augment", "True or False")
    if config["augment"] and config["kind"] in VECTOR_KINDS:
        refuse("augment", "off for a network that reads the joint vector, which cannot zoom with its picture")


def prepare(args, kind):
    """Set up a training run from the parsed arguments: devices, processes, the target data, and the checkpoint
    to resume. Returns (run dict without step/generate_batch/checkpoint, checkpoint to resume or None)."""
    settings = {**(read_recipe(args.recipe, kind) if args.recipe else {}), **given_settings(args)}
    config = make_config(kind, settings)  # checked before any long work
    device, rank, world = setup_distributed(args.device)
    if rank == 0:  # one process builds the cache if needed; the others wait, then read it
        video = VideoSkeleton(args.target, mod_frame=1, data_dir=args.data_dir)
    if world > 1:
        torch.distributed.barrier()
    if rank != 0:
        video = VideoSkeleton(args.target, mod_frame=1, data_dir=args.data_dir)
    path = checkpoint_path(video, kind, config["size"])
    resumed = None
    if args.resume:
        resumed = load_checkpoint(path, kind, video, train_command(TRAINERS[kind], video))
        config = make_config(kind, settings, resumed["config"])
        changed = [key for key in SHAPING if key in config and config[key] != resumed["config"][key]]
        if changed:
            raise UserError(f"cannot resume {path}: it was trained with "
                            + ", ".join(f"{key}={resumed['config'][key]}" for key in changed))
        if config["epochs"] is not None and resumed["epoch"] >= config["epochs"]:
            raise UserError(f"{path} has already trained {resumed['epoch']} epochs: ask for more with --epochs")
    elif path.exists() and rank == 0:
        raise UserError(f"{path} exists: add --resume to continue it, or delete it to start over")
    torch.manual_seed(config["seed"] + rank)
    train_indices, held_out_indices = split_indices(video.skeCount(), config["val_fraction"])
    scored = held_out_indices[np.unique(np.linspace(0, len(held_out_indices) - 1, EPOCH_SCORED_FRAMES).round()
                                        .astype(int))]  # all of them, up to a long video's
    crops = CropCache(video, config["size"])
    memory = build_memory(video, train_indices, config, crops)
    run = {"config": config, "device": device, "rank": rank, "world": world, "video": video,
           "train_indices": train_indices,
           "data": Samples(video, train_indices, config, memory, crops, training=True).prepare("training frames"),
           "held_out": Samples(video, scored, config, memory, crops).prepare("held-out frames"), "path": path,
           "out_dir": path.parent, "name": path.stem, "start_epoch": resumed["epoch"] if resumed else 0,
           "history": resumed["history"] if resumed else [], "best": best_epoch(resumed)}
    if rank == 0:
        print(f"{kind}: {len(train_indices)} training frames, {len(held_out_indices)} held out, {config['size']} px, "
              f"on {device}" + (f" x {world} processes" if world > 1 else "") +
              (f", recipe {args.recipe}" if args.recipe else "") +
              (f", resuming after epoch {run['start_epoch']}" if resumed else ""))
    return run, resumed


def best_epoch(resumed):
    """What a resumed run's best epoch was: {"epoch", "val_ssim", "generator": its weights}; None for a new run.
    A checkpoint without best_epoch (written before it was kept) holds its last epoch's."""
    if resumed is None or not resumed["history"]:
        return None
    epoch = resumed.get("best_epoch", resumed["epoch"])
    score = next(h["val_ssim"] for h in resumed["history"] if h["epoch"] == epoch)
    return {"epoch": epoch, "val_ssim": score, "generator": resumed["generator"]}


def finish(run):
    if run["world"] > 1:
        torch.distributed.destroy_process_group()
    if run["rank"] == 0:
        print(f"checkpoint, samples and loss plot in {run['out_dir']}/{run['name']}*")
