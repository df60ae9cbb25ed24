"""Measures: how a generated video is scored, each measure on its own, with the standard definition where one exists.

Evaluate.py runs them over held-out frames and a transfer; the tests check them on known cases and real frames.
- pose_scores: MediaPipe run again on the generated frames against the poses that drove them: pose distance, the
  frames where no person is found, jitter;
- image measures: PSNR and SSIM (Metrics.py) on the whole crop, in the person's box (with where it is lost), in the
  face's box; sharpness, the variance of the Laplacian in the person's box;
- time: tOF (the optical flow of the generated frames against the real ones'), and a transfer's steadiness.
"""
import cv2
import numpy as np
import torch

import Metrics
from Networks import to_unit
from Skeleton import torso_length


# ---- re-detection -----------------------------------------------------------------------------------------------

# The 13 reduced joints with left and right exchanged (nose, then shoulder, elbow, wrist, hip, knee, ankle pairs).
MIRRORED = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11])


def pose_scores(detected, driving, size):
    """Pose distance (pixels at `size` and % of the side), missed rate, and jitter of the re-detected joints.

    `detected` is a list of (13, 2) arrays or None, `driving` the (N, 13, 2) poses that drove the generator, both
    in 0..1 of the image side. In static mode MediaPipe sometimes labels a person seen from the front with left and
    right exchanged; each detection is taken with the labelling closer to its driving pose, for every row alike.
    Jitter is the mean length of the second difference in time of (re-detected - driving) joints, over runs of
    three consecutive frames all detected: the shake beyond the driving pose's own motion.
    """
    detected = [d if d is None or np.linalg.norm(d - p, axis=1).mean() <= np.linalg.norm(d[MIRRORED] - p, axis=1).mean()
                else d[MIRRORED] for d, p in zip(detected, driving)]
    found = [i for i, d in enumerate(detected) if d is not None]
    scores = {"missed_rate": 1 - len(found) / len(detected), "frames": len(detected)}
    if found:
        distances = [np.linalg.norm(detected[i] - driving[i], axis=1).mean() for i in found]
        scores["pose_distance_px"] = float(np.mean(distances) * size)
        scores["pose_distance_pct"] = float(np.mean(distances) * 100)
    error = [None if d is None else d - p for d, p in zip(detected, driving)]  # the pose's own motion taken out
    shakes = [np.linalg.norm(error[i + 1] - 2 * error[i] + error[i - 1], axis=1).mean()
              for i in range(1, len(error) - 1) if all(error[j] is not None for j in (i - 1, i, i + 1))]
    if shakes:
        scores["jitter"] = float(np.mean(shakes) * size)
    return scores


# ---- image measures ---------------------------------------------------------------------------------------------

def to_tensor(images):
    """List of BGR uint8 images -> (N, 3, H, W) float in [-1, 1]."""
    return to_unit(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))


def person_box(joints, size, margin=0.15):
    """Square-ish pixel box (x0, y0, x1, y1) around reduced joints (13, 2) in 0..1, grown by margin, in the image."""
    low, high = joints.min(axis=0), joints.max(axis=0)
    grow = (high - low).max() * margin + 0.05  # the head and feet reach past the joints
    x0, y0 = np.clip((low - grow) * size, 0, size - 11).astype(int)
    x1, y1 = np.clip((high + grow) * size, 0, size).astype(int)
    return x0, y0, max(x1, x0 + 11), max(y1, y0 + 11)  # SSIM's window needs 11 pixels


def boxed_ssims(generated, real, boxes):
    """(N,) SSIM of each generated image with its real one inside its box (x0, y0, x1, y1), a pair at a time."""
    return np.array([Metrics.ssim(*to_tensor([g[y0:y1, x0:x1], r[y0:y1, x0:x1]]).split(1)).item()
                     for g, r, (x0, y0, x1, y1) in zip(generated, real, boxes)])


def person_ssims(generated, real, driving, size):
    """(N,) SSIM of each generated image with its real one inside the box around its driving pose."""
    return boxed_ssims(generated, real, [person_box(d, size) for d in driving])


SCORED_AT_ONCE = 64  # images compared in one batch: the memory stays small at any size and count


def image_scores(generated, real, driving, landmarks, size, masks, larger):
    """PSNR, SSIM, L1, the face's SSIM, and person SSIM with its breakdown, of generated images against real ones."""
    psnr, ssim, l1 = [], [], []
    for start in range(0, len(generated), SCORED_AT_ONCE):
        fake_t, real_t = (to_tensor(images[start:start + SCORED_AT_ONCE]) for images in (generated, real))
        psnr.append(Metrics.psnr(fake_t, real_t))
        ssim.append(Metrics.ssim(fake_t, real_t))
        l1.append((fake_t - real_t).abs().flatten(1).mean(1))
    return {"psnr": torch.cat(psnr).mean().item(), "ssim": torch.cat(ssim).mean().item(),
            "l1": torch.cat(l1).mean().item(),
            "ssim_face": float(face_ssims(generated, real, landmarks, size).mean()),
            **person_ssim_breakdown(generated, real, masks, driving, size, larger)}


def person_ssim_breakdown(generated, real, masks, driving, size, larger):
    """ssim_person, and where it is lost (a diagnosis of ours, not a standard measure). With each real frame's
    person mask (N, size, size) in 0..1: the generated person laid on the real background (what the person alone
    scores) and the real person laid on the generated background (what the background alone costs). And
    ssim_person over the held-out frames whose person is larger than in any training frame (`larger`, (N,) bool:
    the camera zoomed in or the person came closer, so the generator must extrapolate) and over the others."""
    def laid(person, background):
        return [np.clip(m[..., None] / 255 * p + (1 - m[..., None] / 255) * b, 0, 255).astype(np.uint8)
                for p, b, m in zip(person, background, masks)]

    per_frame = person_ssims(generated, real, driving, size)
    scores = {"ssim_person": float(per_frame.mean()),
              "ssim_person_real_background": float(person_ssims(laid(generated, real), real, driving, size).mean()),
              "ssim_person_real_person": float(person_ssims(laid(real, generated), real, driving, size).mean()),
              "larger_than_trained": int(larger.sum())}
    if larger.any():
        scores["ssim_person_larger"] = float(per_frame[larger].mean())
    if not larger.all():
        scores["ssim_person_trained_sizes"] = float(per_frame[~larger].mean())
    return scores


def sharpnesses(images, driving, size):
    """(N,) the variance of the Laplacian of the grey image inside each person's box (Pech-Pacheco et al. 2000):
    high for crisp edges and texture, low for a blur. Compare it with the real frames', not across videos."""
    values = []
    for image, joints in zip(images, driving):
        x0, y0, x1, y1 = person_box(joints, size)
        grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        values.append(cv2.Laplacian(grey, cv2.CV_64F).var())
    return np.array(values)


FACE_LANDMARKS = list(range(11))  # MediaPipe's nose, eyes, ears and mouth
FACE_SIDE = 0.5                   # the face's box: half a torso length square, about a head


def face_box(landmarks, size):
    """(x0, y0, x1, y1): a square of FACE_SIDE torso lengths around the face's landmarks (33, 4) in 0..1, in pixels
    of a size x size image, at least SSIM's 11-pixel window: the face crop of Everybody Dance Now's face GAN."""
    centre = landmarks[FACE_LANDMARKS, :2].mean(0) * size
    half = max(FACE_SIDE * float(torso_length(landmarks)) * size, 11) / 2
    x0, y0 = np.clip(np.round(centre - half).astype(int), 0, size - 11)
    x1, y1 = np.clip(np.round(centre + half).astype(int), 0, size)
    return x0, y0, max(x1, x0 + 11), max(y1, y0 + 11)


def face_ssims(generated, real, landmarks, size):
    """(N,) SSIM of each generated image with its real one inside the face's box of its driving pose (N, 33, 4)."""
    return boxed_ssims(generated, real, [face_box(l, size) for l in landmarks])


def transfer_stability(detected, generated, frames, driving):
    """How steady the transfer video is, with no true video to compare with:
    - shake: mean length of the second difference in time of the joints re-detected on the generated frames, over
      runs of three consecutive frames all detected, as a fraction of the body's height (the driving poses' median
      extent from head to feet); smooth motion has a small second difference, shaking a large one;
    - warp_error: mean absolute difference (grey levels, 0-255) between each generated frame and the one before it
      warped onto it by the optical flow between the two generated frames (the source is framed differently, so
      its flow does not apply): what motion cannot explain, i.e. flicker."""
    height = float(np.median(driving[:, :, 1].max(1) - driving[:, :, 1].min(1)))
    follows = np.diff(frames) == 1
    shakes = [np.linalg.norm(detected[i + 1] - 2 * detected[i] + detected[i - 1], axis=1).mean()
              for i in range(1, len(detected) - 1)
              if follows[i - 1] and follows[i] and all(detected[j] is not None for j in (i - 1, i, i + 1))]
    errors = []
    for i in np.flatnonzero(follows):
        before, after = (cv2.cvtColor(generated[j], cv2.COLOR_BGR2GRAY) for j in (i, i + 1))
        backward = flow(generated[i + 1], generated[i])  # for each pixel of the later frame, where it was before
        grid = np.indices(after.shape[:2])[::-1].transpose(1, 2, 0).astype(np.float32) + backward
        warped = cv2.remap(before, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        errors.append(np.abs(warped.astype(np.float32) - after).mean())
    return {"shake": float(np.mean(shakes)) / max(height, 1e-6) if shakes else None,
            "warp_error": float(np.mean(errors)) if errors else None}


def flow(a, b):
    """Dense optical flow (DIS, medium preset) from BGR image a to b: (H, W, 2) in pixels."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(cv2.cvtColor(a, cv2.COLOR_BGR2GRAY), cv2.cvtColor(b, cv2.COLOR_BGR2GRAY), None)


def temporal_flow_error(generated, real, consecutive):
    """tOF: mean |flow(generated t -> t+1) - flow(real t -> t+1)| in pixels, over the consecutive pairs."""
    errors = [np.abs(flow(generated[i], generated[i + 1]) - flow(real[i], real[i + 1])).mean() for i in consecutive]
    return float(np.mean(errors)) if errors else None
