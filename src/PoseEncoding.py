"""PoseEncoding: how a pose becomes the image networks' input, and the augmentation that moves pose and picture
together.

Each limb (Skeleton.LIMBS: head, torso, arms, hands, legs, feet) gets a channel of its own, so the network never has
to tell left from right or untangle crossing limbs by colour, and one more channel holds depth: every limb drawn
from the farthest to the nearest (MediaPipe's z), brighter as it comes nearer, so that where two limbs cross the one
in front is on top. 25 channels in all.
"""
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from Skeleton import LIMB_COLOURS, LIMBS

CHANNELS = len(LIMBS) + 1


def line_thickness(size):
    return max(1, round(size / 64))


def render(skeleton, size):
    """The pose as a (CHANNELS, size, size) uint8 array."""
    landmarks = skeleton.landmarks
    points = np.round(landmarks[:, :2] * size * 16).astype(np.int32)  # 4 fractional bits: smooth antialiased lines
    thickness = line_thickness(size)
    maps = np.zeros((CHANNELS, size, size), np.uint8)
    for channel, (a, b) in enumerate(LIMBS):
        cv2.line(maps[channel], tuple(points[a]), tuple(points[b]), 255, thickness, cv2.LINE_AA, shift=4)
    # Depth: nearer limbs (smaller z) drawn later and brighter, from 64 (farthest) to 255 (nearest).
    depth = np.array([landmarks[a, 2] + landmarks[b, 2] for a, b in LIMBS])
    span = max(float(depth.max() - depth.min()), 1e-6)
    for channel in np.argsort(-depth):
        a, b = LIMBS[channel]
        brightness = int(64 + 191 * (depth.max() - depth[channel]) / span)
        cv2.line(maps[-1], tuple(points[a]), tuple(points[b]), brightness, thickness, cv2.LINE_AA, shift=4)
    return maps


def render_many(skeletons, size):
    """(N, CHANNELS, size, size) uint8 tensor for a list of Skeletons."""
    return torch.from_numpy(np.stack([render(s, size) for s in skeletons]))


def picture(maps):
    """A BGR uint8 picture of one encoded pose (CHANNELS, S, S), for sample grids: each limb in its colour."""
    maps = maps.cpu().float().numpy() if torch.is_tensor(maps) else np.asarray(maps, np.float32)
    colours = np.array(LIMB_COLOURS, np.float32)  # (limbs, 3)
    return np.einsum("lhw,lc->hwc", maps[:len(LIMBS)] / 255, colours).clip(0, 255).astype(np.uint8)


# ---- augmentation -----------------------------------------------------------------------------------------------

# Per sample: zoom by 0.85 to 1.25 (a camera that reframes, a person nearer or farther), shift by up to 8% of the
# side, turn by up to 5 degrees. Off by default: it pays on short clips only (RESULTS.md, "Augmentation on the short
# clip").
SCALE_RANGE = (0.85, 1.25)
MAX_SHIFT = 0.08
MAX_ROTATION_DEGREES = 5.0


def random_affines(count, generator):
    """(count, 2, 3) affine_grid matrices: for each output pixel (normalised -1..1), where to sample the input."""
    uniform = lambda low, high: low + (high - low) * torch.rand(count, generator=generator)  # noqa: E731
    scale = torch.exp(uniform(*np.log(SCALE_RANGE)))  # zoom in and out equally likely
    angle = uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES) * np.pi / 180
    shift = uniform(-MAX_SHIFT, MAX_SHIFT), uniform(-MAX_SHIFT, MAX_SHIFT)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack([torch.stack([cos, -sin, shift[0] * 2], 1), torch.stack([sin, cos, shift[1] * 2], 1)], 1)


def augment(batch, generator):
    """The same random zoom, shift and turn per sample for every picture of a batch (uint8 tensors): the pose maps,
    the real image and the appearance memory move together, so the pairing stays true. Returns float tensors on
    the 0..255 scale. Poses are padded with black, pictures with their edge colours."""
    first = batch["image"]
    theta = random_affines(first.size(0), generator).to(first.device)
    grid = F.affine_grid(theta, list(first.shape), align_corners=False)
    out = dict(batch)
    for key in ("skeleton", "image", "memory", "mask"):
        if key in batch:
            padding = "zeros" if key in ("skeleton", "mask") else "border"
            out[key] = F.grid_sample(batch[key].float(), grid, mode="bilinear", padding_mode=padding,
                                     align_corners=False)
    return out
