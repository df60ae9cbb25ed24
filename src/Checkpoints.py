"""Checkpoints: what a trained model carries, and how it is written and read back.

A checkpoint is a plain dict of tensors and numbers, written atomically and loaded with weights_only=True (no code
can run from one). It carries its whole configuration: a value for every setting of DEFAULTS, the one table of the
settled recipe, so it explains itself and is loaded without guessing. It also carries the identity of the target it
was trained on, so a foreign, damaged, older or stale one is refused with one clear line. Checkpoints live with the
target's data, so DanceDemo finds them from the target video alone.
"""
from pathlib import Path

import torch

from Runtime import DEFAULT_DATA_DIR, UserError, atomic_write

CHECKPOINT_FORMAT = "everybody-dance-checkpoint-2"  # 2: the settled recipe, every setting recorded

# The settled recipe: every setting of a training run, with its default for each kind of network. The trainers take
# some from the command line and any from a recipe file (config/*.py); RESULTS.md has the measurements behind them.
VANILLA = {
    "size": 128,              # image side in pixels: 64, 128 or 256
    "ngf": 32,                # width of the generator's first layer
    "batch_size": 16,
    "lr": 2e-4,               # Adam's learning rate, betas (0.5, 0.999) as in pix2pix
    "val_fraction": 0.2,      # the last fifth of the frames, in time, held out: never trained on
    "seed": 0,
    "epochs": None,           # the most epochs in all; None: as many as the time budget allows (10 without one)
    "time_budget": None,      # minutes: stop after the epoch in which they run out
    "augment": False,         # random zoom, shift and turn of pose, picture and memory together; pays on short clips
    "ssim_weight": 0.0,       # weight of 1 - SSIM beside L1: L1 alone is met by a blur of the right mean
    "trust_weight": 0.0,      # price on redrawing what the appearance memory shows: keeps its sharp texture
    "trust_region": "frame",  # where that price is paid: "frame" (all pixels) or "person" (the person's alone)
}
DEFAULTS = {
    "vanilla1": VANILLA,                  # GEN_TYPE 2: the joint vector decoded to an image, L1
    "vanilla2": VANILLA,                  # GEN_TYPE 3: the U-Net with the appearance memory, L1
    "baseline": {**VANILLA, "size": 64},  # the course's DCGAN decoder, at the only size it makes
    "gan": {                              # GEN_TYPE 4: the U-Net with the memory against a PatchGAN
        **VANILLA,
        "ngf": 64,                # twice the vanilla width: better in the same minutes
        "ndf": 32,                # half pix2pix's width: as good in the same minutes, with a faster step
        "gan_mode": "lsgan",      # least squares; "bce" is the course's
        "lambda_l1": 100.0,       # weight of the reconstruction loss against the adversarial one, as in pix2pix
        "ssim_weight": 1.0,       # higher SSIM and person SSIM on every footage tried
        "trust_weight": 0.1,      # without it the network redraws the remembered person as a blur and loses him
        "trust_region": "person",  # the background may be redrawn freely: that is where its gain lies
    },
}


def target_identity(video):
    """What a checkpoint must match to be used with a target dataset: the video and the crop layout."""
    return {"name": video.name, "fingerprint": video.fingerprint, "crop_box": list(video.crop_box),
            "crop_size": video.crop_size}


def checkpoint_header(config, video):
    """What every checkpoint starts with: what it is, how it was made, and for which target. Plain values only,
    so that torch.load(weights_only=True) reads it back."""
    return {"format": CHECKPOINT_FORMAT, "kind": config["kind"], "config": dict(config),
            "target": target_identity(video), "versions": {"torch": str(torch.__version__)}}


def save_checkpoint(path, checkpoint):
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def load_checkpoint(path, kind, video=None, train_command=None):
    """Load and check a checkpoint: UserError with one clear line if it is missing, damaged, foreign, of another
    kind or written by another version. weights_only=True: a checkpoint holds tensors and plain values, never
    code."""
    path = Path(path)
    again = f": train one with {train_command}" if train_command else ": train one again"
    if not path.exists():
        raise UserError(f"no checkpoint at {path}{again}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged or unsafe file
        raise UserError(f"{path} is not a readable checkpoint ({type(error).__name__}): delete it and train again")
    if not isinstance(checkpoint, dict) or not str(checkpoint.get("format", "")).startswith("everybody-dance"):
        raise UserError(f"{path} is not a checkpoint of this project")
    if checkpoint["format"] != CHECKPOINT_FORMAT:
        raise UserError(f"{path} was written by another version of this project ({checkpoint['format']}), whose "
                        f"settings this one no longer has{again}")
    if checkpoint.get("kind") != kind:
        raise UserError(f"{path} holds a '{checkpoint.get('kind')}' model, not the '{kind}' asked for")
    if set(checkpoint.get("config", {})) != {"kind", *DEFAULTS[kind]}:
        raise UserError(f"{path} does not record the settings this version trains with{again}")
    if video is not None and checkpoint.get("target") != target_identity(video):
        trained_on = checkpoint.get("target", {}).get("name", "?")
        raise UserError(f"{path} was trained on target '{trained_on}' with another video or crop, not on "
                        f"{video.video_path.name} as cached now{again}")
    return checkpoint


def load_weights(module, weights, path, train_command=None):
    """module.load_state_dict(weights), or one line saying that the checkpoint at `path` holds a network of
    another shape than this version builds (an earlier version's)."""
    try:
        module.load_state_dict(weights)
    except RuntimeError:
        raise UserError(f"{path} holds a network of another shape than this version builds: train one again"
                        + (f" with {train_command}" if train_command else "")) from None


def train_command(trainer, video):
    """The command that trains a model for `video` with `trainer` ("GenGAN.py" and its options), to print where
    one is missing."""
    data_dir = "" if video.dir.parent == DEFAULT_DATA_DIR else f" --data-dir {video.dir.parent}"
    script, *options = trainer.split()
    return " ".join([f"python src/{script} --target {video.video_path}{data_dir}", *options])


def checkpoint_path(video, kind, size):
    """Checkpoints live with the target's data, so DanceDemo finds them from the target video alone."""
    return video.dir / "models" / f"{kind}_{size}.pt"


def find_checkpoint(video, kind):
    """The most recently written checkpoint of this kind for this target, or None."""
    found = sorted((video.dir / "models").glob(f"{kind}_*.pt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None
