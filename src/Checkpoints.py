"""Checkpoints: plain dicts of tensors and numbers, written atomically and loaded with weights_only=True (no
code can run from one), that carry their configuration and the identity of the target they were trained on, so a
foreign, damaged or stale one is refused with one clear line. They live with the target's data, so DanceDemo
finds them from the target video alone.
"""
from pathlib import Path

import torch

from Runtime import DEFAULT_DATA_DIR, UserError, atomic_write

CHECKPOINT_FORMAT = "everybody-dance-checkpoint-1"


def target_identity(video):
    """What a checkpoint must match to be used with a target dataset: the video and the crop layout."""
    return {"name": video.name, "fingerprint": video.fingerprint, "crop_box": list(video.crop_box),
            "crop_size": video.crop_size}


def checkpoint_header(kind, config, video):
    """What every checkpoint starts with: what it is, how it was made, and for which target. Plain values only,
    so that torch.load(weights_only=True) reads it back."""
    return {"format": CHECKPOINT_FORMAT, "kind": kind, "config": dict(config), "target": target_identity(video),
            "versions": {"torch": str(torch.__version__)}}


def save_checkpoint(path, checkpoint):
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def load_checkpoint(path, kind, video=None, train_command=None):
    """Load and check a checkpoint: UserError with one clear line if it is missing, damaged, foreign or of another
    kind. weights_only=True: a checkpoint can hold tensors and plain values, never code."""
    path = Path(path)
    if not path.exists():
        hint = f": train one with {train_command}" if train_command else ""
        raise UserError(f"no checkpoint at {path}{hint}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged or unsafe file
        raise UserError(f"{path} is not a readable checkpoint ({type(error).__name__}): delete it and train again")
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a checkpoint of this project")
    if checkpoint.get("kind") != kind:
        raise UserError(f"{path} holds a '{checkpoint.get('kind')}' model, not the '{kind}' asked for")
    if video is not None and checkpoint.get("target") != target_identity(video):
        trained_on = checkpoint.get("target", {}).get("name", "?")
        raise UserError(f"{path} was trained on target '{trained_on}' with another video or crop, not on "
                        f"{video.video_path.name} as cached now: train one for it"
                        + (f" with {train_command}" if train_command else ""))
    return checkpoint


def train_command(script, video, *options):
    """The command that trains a model for `video`, to print where one is missing."""
    data_dir = "" if video.dir.parent == DEFAULT_DATA_DIR else f" --data-dir {video.dir.parent}"
    return f"python src/{script} --target {video.video_path}{data_dir}" + "".join(f" {o}" for o in options)


def checkpoint_path(video, kind, size):
    """Checkpoints live with the target's data, so DanceDemo finds them from the target video alone."""
    return video.dir / "models" / f"{kind}_{size}.pt"


def find_checkpoint(video, kind):
    """The most recently written checkpoint of this kind for this target, or None."""
    found = sorted((video.dir / "models").glob(f"{kind}_*.pt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None
