"""Training: what GenVanillaNN.py and GenGAN.py share to train a generator on one target video.

- the data: every (pose, memory, crop, mask) of the target decoded once into memory as uint8 tensors, so a training
  step never decodes an image; the last val_fraction of the frames (in time) held out and never trained on;
- the loss: L1, optionally with an SSIM term and a price on redrawing the appearance memory (reconstruction_loss);
- the loop: epochs over shuffled batches, a `step(batch)` function from the caller that updates the networks and
  returns its losses, tqdm showing them; after each epoch the held-out L1, PSNR, SSIM and missed re-detections, a
  sample grid (pose | memory | real | generated on held-out frames), the loss curves, and a checkpoint written
  atomically (Checkpoints.py) whose generator is that of the epoch with the best held-out SSIM;
- devices: CUDA (mixed precision, channels_last), MPS or CPU; several processes under torchrun with
  DistributedDataParallel (nccl on CUDA, gloo on CPU), where only rank 0 writes files.
The command line that turns into such a run, and finds the checkpoint to resume, is TrainingSetup.py's.
"""
import contextlib
import itertools
import json
import os
import time
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

import Metrics
import PoseEncoding
from Checkpoints import save_checkpoint
from Generators import model_inputs
from Networks import ComposeWithMemory, generator_input, to_uint8_bgr, to_unit
from Runtime import atomic_write, native_stderr_silenced, pick_device
from Detection import Redetector

# ---- data and loss ----------------------------------------------------------------------------------------------

SAMPLE_CACHE_BYTES = 2 << 30  # prepared samples kept at most: a short video's all, a long one's in bounded memory


class Samples:
    """What training reads for frames `indices` of a VideoSkeleton: the model inputs (Generators.model_inputs), the
    real crop ("image", 3 x size x size, uint8 BGR) and the person's mask ("mask", 1 x size x size, uint8), each
    frame's prepared when a batch first asks for it and kept while they fit in SAMPLE_CACHE_BYTES. So a long video
    trains in bounded memory, and a short one is all in memory after the first epoch, when a step no longer decodes
    an image. training=True keeps each frame's memory away from its own second of video."""

    def __init__(self, video, indices, config, memory, crops, training=False):
        self.video, self.indices, self.config = video, np.asarray(indices), config
        self.memory, self.crops, self.training = memory, crops, training
        self.kept, self.bytes = OrderedDict(), 0

    def __len__(self):
        return len(self.indices)

    def prepare(self, what):
        """Prepare every sample now, if they all fit in the budget (as they do but for a long video), so that no
        training minute is spent on it; else they are prepared as batches ask for them."""
        size = self.config["size"]
        if len(self) * (PoseEncoding.CHANNELS + 7) * size * size <= SAMPLE_CACHE_BYTES:
            for position in tqdm(range(len(self)), desc=f"preparing {len(self)} {what}", unit="frame", leave=False):
                self.sample(position)
        return self

    def batch(self, positions):
        """A dict of CPU tensors, one row per position (into `indices`)."""
        samples = [self.sample(int(p)) for p in positions]
        return {key: torch.stack([sample[key] for sample in samples]) for key in samples[0]}

    def sample(self, position):
        if position in self.kept:
            self.kept.move_to_end(position)
            return self.kept[position]
        i = int(self.indices[position])
        frames = [self.video.frame_index[i]] if self.training else None
        sample = {k: v[0] for k, v in model_inputs([self.video.ske[i]], self.config, self.memory, frames).items()}
        sample["image"] = torch.from_numpy(self.crops.image(i)).permute(2, 0, 1).contiguous()
        sample["mask"] = torch.from_numpy(self.crops.mask(i))[None]
        self.kept[position] = sample
        self.bytes += sum(v.nbytes for v in sample.values())
        while self.bytes > SAMPLE_CACHE_BYTES and len(self.kept) > 1:
            self.bytes -= sum(v.nbytes for v in self.kept.popitem(last=False)[1].values())
        return sample


def on_device(batch, device):
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def training_output(net, kind, batch):
    """A generator's output on a training batch and, for one composed with the appearance memory, its trust in the
    memory (ComposeWithMemory's mask; else None): what reconstruction_loss scores."""
    x = generator_input(kind, batch)
    if isinstance(unwrap(net), ComposeWithMemory):
        return net(x, with_trust=True)
    return net(x), None


def reconstruction_loss(fake, real, mask, config, trust=None):
    """What the generator is trained to make small, against the real image (both in [-1, 1]):
    - L1;
    - plus config["ssim_weight"] x (1 - SSIM) (Metrics.ssim_map, the measured one): L1 is met by a blur of the
      right mean, SSIM asks for the local contrast and structure as well (Zhao et al., "Loss Functions for Image
      Restoration with Neural Networks", 2017);
    - plus config["trust_weight"] x the mean of (1 - `trust`), the generator's mask over the appearance memory
      (ComposeWithMemory): a price on redrawing what the memory shows, as GANimation prices its attention mask
      (Pumarola et al., ECCV 2018), so the network keeps the remembered person's sharp texture and redraws only
      where that pays; without it, it redraws most of the person as a blur. With config["trust_region"] "person"
      the mean is over the person's pixels (`mask`, uint8 0..255) alone: the network may redraw the background
      freely, which is where its gain over the memory lies (the plate's seams and the camera's moves).
    Returns (the loss, its terms as floats for the loss plot: "l1", and "ssim", "distrust" if weighted)."""
    l1 = (fake.float() - real).abs().mean()
    loss, terms = l1, {"l1": l1.item()}
    if config["ssim_weight"]:
        ssim = Metrics.ssim_map(fake, real).mean()
        loss, terms["ssim"] = loss + config["ssim_weight"] * (1 - ssim), ssim.item()
    if config["trust_weight"] and trust is not None:
        if config["trust_region"] == "person":
            person = mask.float() / 255
            distrust = ((1 - trust.float()) * person).sum() / person.sum().clamp_min(1.0)
        else:
            distrust = 1 - trust.float().mean()
        loss, terms["distrust"] = loss + config["trust_weight"] * distrust, distrust.item()
    return loss, terms


# ---- devices and processes --------------------------------------------------------------------------------------

def setup_distributed(device_name):
    """(device, rank, world_size). Under torchrun (RANK set) join the process group, nanoGPT style."""
    if int(os.environ.get("RANK", -1)) == -1:
        return pick_device(device_name), 0, 1
    rank, local_rank, world = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    device = pick_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, rank, world


def autocast(device):
    """Mixed precision on CUDA (bfloat16 where the card has it, else float16); full precision elsewhere, since
    bfloat16 on the CPU was slower for these networks (RESULTS.md, "Speed")."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return contextlib.nullcontext()


def grad_scaler(device):
    """float16 gradients need scaling to not underflow; bfloat16 and float32 do not."""
    return torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and not torch.cuda.is_bf16_supported())


def prepare_module(module, device, world):
    """Move to the device and wrap for DDP when distributed. channels_last (NHWC) on CUDA and on the CPU, where
    oneDNN's convolutions prefer it (RESULTS.md, "Speed")."""
    layout = torch.channels_last if device.type in ("cuda", "cpu") else torch.preserve_format
    module = module.to(device, memory_format=layout)
    if world > 1:
        module = torch.nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda"
                                                           else None)
    return module


def unwrap(module):
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


def evaluation_generator(net, config, device):
    """train_loop's generate_batch: the network in eval mode (BatchNorm's running statistics) on a batch."""
    kind = config["kind"]

    def generate_batch(batch):
        model = unwrap(net)
        model.eval()
        with autocast(device):
            out = model(generator_input(kind, batch))
        model.train()
        return out

    return generate_batch


# ---- pictures ---------------------------------------------------------------------------------------------------

def save_sample_grid(path, columns, rows):
    """One row per held-out frame, one column per kind of picture (pose | memory, if any | real | generated), from
    lists of BGR uint8 images of one size."""
    grid = np.vstack([np.hstack([column[r] for column in columns]) for r in range(rows)])
    atomic_write(path, lambda tmp: cv2.imwrite(tmp, grid) or (_ for _ in ()).throw(OSError(f"cannot write {tmp}")))


def save_loss_plot(path, history):
    """Every loss per epoch, training and held-out, on one log-scale plot."""
    import matplotlib
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for key in history[-1]:
        if key not in ("epoch", "minutes"):  # a resumed run may have added a loss: plot it from where it starts
            epochs, values = zip(*[(h["epoch"], h[key]) for h in history if key in h])
            axis.plot(epochs, values, marker="o" if len(history) < 30 else None, label=key)
    axis.set_xlabel("epoch")
    axis.set_yscale("symlog", linthresh=1e-2)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)


# ---- the loop ---------------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(generate_batch, data, indices, device, batch_size=32):
    """Held-out L1, PSNR (dB) and SSIM of the generator, and its outputs for the first frames (for the grid)."""
    l1, psnr_sum, ssim_sum, first = 0.0, 0.0, 0.0, None
    for start in range(0, len(indices), batch_size):
        chosen = indices[start:start + batch_size]
        batch = on_device(data.batch(chosen), device)
        real = to_unit(batch["image"])
        fake = generate_batch(batch).float()
        l1 += (fake - real).abs().flatten(1).mean(1).sum().item()
        psnr_sum += Metrics.psnr(fake, real).sum().item()
        ssim_sum += Metrics.ssim(fake, real).sum().item()
        first = fake if first is None else first
    n = len(indices)
    return {"val_l1": l1 / n, "val_psnr": psnr_sum / n, "val_ssim": ssim_sum / n}, first


MISSED_FRAMES = 60  # held-out frames re-detected after each epoch: about 2 s, to 1.7% resolution


@torch.no_grad()
def missed_rate(generate_batch, data, device, redetect):
    """The share of (up to MISSED_FRAMES, evenly spaced) held-out frames in whose generated image MediaPipe finds
    no person: a blur scores well in L1 but is not a person, so the trainers watch this too."""
    count = len(data)
    chosen = np.unique(np.linspace(0, count - 1, min(MISSED_FRAMES, count)).round().astype(int))
    generated = to_uint8_bgr(generate_batch(on_device(data.batch(chosen), device)))
    with native_stderr_silenced():
        return sum(redetect(image) is None for image in generated) / len(chosen)


def train_loop(run):
    """Train from run["start_epoch"] until config["epochs"] epochs in all (None: no limit) or until the epoch that
    spends config["time_budget"] minutes; see the module docstring. `run` is a dict:

    config, data (Samples of the training frames, CPU), held_out (of held-out frames), train_indices,
    step(batch) -> {loss name: float}, generate_batch(batch) -> images in [-1, 1], checkpoint() -> dict,
    out_dir, name, device, rank, world, history (list of per-epoch dicts, continued on resume), best (None, or
    on resume the best epoch so far: {"epoch", "val_ssim", "generator": its weights}).
    """
    config, device, rank, world = run["config"], run["device"], run["rank"], run["world"]
    master = rank == 0
    data, held_out = run["data"], run["held_out"]
    count = len(data)
    batch_size = config["batch_size"]
    steps_per_epoch = max(1, count // (batch_size * world))
    shuffle = torch.Generator().manual_seed(config["seed"])
    out_dir, name = Path(run["out_dir"]), run["name"]
    grid_count = min(6, len(held_out))
    budget = config["time_budget"]
    loop_started = time.perf_counter()
    minutes_before = run["history"][-1]["minutes"] if run["history"] else 0.0  # resumed runs go on counting
    if master:
        with native_stderr_silenced():
            redetect = Redetector()

    last = config["epochs"]  # None: until the time budget is spent
    for epoch in itertools.count(run["start_epoch"]) if last is None else range(run["start_epoch"], last):
        spent = torch.tensor([budget is not None and time.perf_counter() - loop_started > budget * 60], device=device,
                             dtype=torch.float32)
        if world > 1:  # rank 0's clock decides for all, or a rank that stops alone would hang the others
            torch.distributed.broadcast(spent, 0)
        if spent.item():
            if master:
                print(f"time budget of {budget:g} minutes spent: stopping after epoch {epoch}")
            break
        shuffle.manual_seed(config["seed"] + epoch)  # the same order on every rank; each takes its own share
        order = torch.randperm(count, generator=shuffle)[rank::world]
        totals, started = {}, time.perf_counter()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}" + (f"/{last}" if last else ""), unit="step",
                   disable=not master)
        for step_index in bar:
            chosen = order[step_index * batch_size:(step_index + 1) * batch_size]
            batch = on_device(data.batch(chosen), device)
            if config["augment"]:
                batch = PoseEncoding.augment(batch, shuffle)
            losses = run["step"](batch)
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + value
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
        seconds = time.perf_counter() - started
        if not master:
            continue
        record = {"epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in totals.items()}}
        scores, generated = evaluate(run["generate_batch"], held_out, np.arange(len(held_out)), device)
        record.update(scores)
        record["val_missed"] = missed_rate(run["generate_batch"], held_out, device, redetect)
        record["images_per_s"] = steps_per_epoch * batch_size * world / seconds
        record["minutes"] = minutes_before + (time.perf_counter() - loop_started) / 60  # wall clock, scoring included
        run["history"].append(record)
        print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch"))
        shown = held_out.batch(range(grid_count))
        columns = [[PoseEncoding.picture(d) for d in shown["skeleton"]]]
        if "memory" in shown:
            columns.append([m.permute(1, 2, 0).numpy() for m in shown["memory"]])
        columns += [[r.permute(1, 2, 0).numpy() for r in shown["image"]],
                    to_uint8_bgr(generated[:grid_count])]
        save_sample_grid(out_dir / f"{name}_samples" / f"epoch_{epoch + 1:03d}.png", columns, grid_count)
        save_loss_plot(out_dir / f"{name}_loss.png", run["history"])
        checkpoint = run["checkpoint"]()
        if run["best"] is None or record["val_ssim"] > run["best"]["val_ssim"]:
            run["best"] = {"epoch": epoch + 1, "val_ssim": record["val_ssim"],
                           "generator": {k: v.detach().clone() for k, v in checkpoint["generator"].items()}}
        # Images are made with the epoch of the best held-out SSIM (the network memorises its frames as it goes
        # on); training goes on from the last epoch's weights.
        checkpoint.update(epoch=epoch + 1, history=run["history"], last_generator=checkpoint["generator"],
                          generator=run["best"]["generator"], best_epoch=run["best"]["epoch"])
        save_checkpoint(out_dir / f"{name}.pt", checkpoint)
        atomic_write(out_dir / f"{name}_history.json", lambda tmp: Path(tmp).write_text(json.dumps(run["history"])))
    if master:
        redetect.close()
    if world > 1:
        torch.distributed.barrier()
