"""GenVanillaNN: a network trained with L1 to draw the target person in a given pose.

    python src/GenVanillaNN.py --target VIDEO --variant {1,2} --epochs N --size {64,128,256} [--resume] [--device D]

Variant 1 (DanceDemo GEN_TYPE 2) reads the 26 values of the reduced skeleton and decodes an image from them.
Variant 2 (GEN_TYPE 3) reads the skeleton drawn as an image and translates it with a U-Net, whose skip connections
carry the limbs' positions straight to the output layers. Both decoders upsample then convolve, rather than use
transposed convolutions, which leave checkerboard artefacts (Odena et al., Distill 2016).

The U-Net is built like pix2pix's (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py): one recursive
UnetSkipConnectionBlock nested num_downs times. GenGAN.py trains the same U-Net against a discriminator.
"""
import argparse

import numpy as np
import torch
import torch.nn as nn

import Checkpoints
import PoseEncoding
import Training
import TrainingSetup
from AppearanceMemory import ComposeWithMemory
from GenNearest import crossfades
from Runtime import UserError, pick_device, run_main

KINDS = {1: "vanilla1", 2: "vanilla2"}


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: down (conv stride 2), the inner levels, up (upsample, conv), and the skip.

    |-- down -- submodule -- up --|   the output is the block's input concatenated with the up path's output,
    |------------ skip -----------|   except at the outermost level, which returns the up path's output.
    """

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 dropout=0.0):
        super().__init__()
        self.outermost = outermost
        input_nc = input_nc or outer_nc
        down = [nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)]
        if not outermost:
            down = [nn.LeakyReLU(0.2, True)] + down + ([] if innermost else [nn.BatchNorm2d(inner_nc)])
        up_in = inner_nc if innermost else inner_nc * 2  # the inner block returns its input and its output
        up = [nn.ReLU(True), nn.Upsample(scale_factor=2, mode="nearest"),
              nn.Conv2d(up_in, outer_nc, kernel_size=3, padding=1, bias=outermost)]
        up += [nn.Tanh()] if outermost else [nn.BatchNorm2d(outer_nc)]
        up += [nn.Dropout(dropout)] if dropout else []  # last, so that a checkpoint's layer numbers do not change
        self.model = nn.Sequential(*down, *([submodule] if submodule is not None else []), *up)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """Skeleton image (3 x S x S, in [-1, 1]) -> person image (3 x S x S, in [-1, 1]).

    num_downs halvings take S down to S / 2**num_downs at the bottleneck; channels double from ngf to 8 * ngf.
    dropout: the probability with which pix2pix drops the decoder's activations in the 8 * ngf levels but the
    innermost, while training, so that the network cannot lean on a few features that recall a training frame.
    """

    def __init__(self, input_nc=3, output_nc=3, num_downs=6, ngf=32, dropout=0.0):
        super().__init__()
        if num_downs < 5:
            raise ValueError("the U-Net needs at least 5 levels")
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, dropout=dropout)
        for multiple in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * multiple, ngf * multiple * 2, submodule=block)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)

    def forward(self, skeleton_image):
        return self.model(skeleton_image)


class VectorToImage(nn.Module):
    """Reduced skeleton (26 values in [-1, 1]) -> person image (3 x S x S, in [-1, 1]).

    A small MLP makes a 4 x 4 feature map; each upsample-and-convolve block doubles it up to S.
    """

    def __init__(self, size, n_in=26, ngf=32):
        super().__init__()
        channels = ngf * 8
        self.start = channels
        self.fc = nn.Sequential(nn.Linear(n_in, 512), nn.ReLU(True), nn.Linear(512, channels * 16), nn.ReLU(True))
        blocks = []
        for _ in range(Training.log2_int(size) - 2):
            out = max(ngf, channels // 2)
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(channels, out, 3, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(True)]
            channels = out
        self.decoder = nn.Sequential(*blocks, nn.Conv2d(channels, 3, 3, padding=1), nn.Tanh())

    def forward(self, vector):
        return self.decoder(self.fc(vector).view(-1, self.start, 4, 4))


class CourseDecoder(nn.Module):
    """The course's network, kept as the baseline to beat: a DCGAN generator (Radford et al. 2016) whose
    transposed convolutions decode the 26 joint values, as a 26 x 1 x 1 map, to a 64 x 64 image."""

    def __init__(self, n_in=26, ngf=64):
        super().__init__()
        layers, channels = [], n_in
        for i, out in enumerate((ngf * 8, ngf * 4, ngf * 2, ngf)):  # 1 -> 4 -> 8 -> 16 -> 32 pixels
            layers += [nn.ConvTranspose2d(channels, out, 4, 1 if i == 0 else 2, 0 if i == 0 else 1, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(True)]
            channels = out
        self.model = nn.Sequential(*layers, nn.ConvTranspose2d(channels, 3, 4, 2, 1), nn.Tanh())  # 64 pixels

    def forward(self, vector):
        return self.model(vector.view(vector.size(0), -1, 1, 1))


def build_generator(config):
    """The network a configuration describes: variant 1 -> VectorToImage, variant 2 and GAN -> UnetGenerator
    (composed with the appearance memory if there is one), the course baseline -> CourseDecoder."""
    if config["kind"] == "baseline":
        return CourseDecoder(ngf=config["ngf"])
    if config["kind"] == "vanilla1":
        return VectorToImage(config["size"], ngf=config["ngf"])
    with_memory = config.get("memory", "none") != "none"
    unet = UnetGenerator(input_nc=input_channels(config), output_nc=4 if with_memory else 3,
                         num_downs=Training.log2_int(config["size"]) - 1, ngf=config["ngf"],
                         dropout=config.get("dropout", 0.0))
    return ComposeWithMemory(unet) if with_memory else unet  # the image and a mask over the memory


def input_channels(config):
    """The U-Net's input: the encoded pose, and the warped appearance memory's 3 channels if there is one."""
    memory = 3 if config.get("memory", "none") != "none" else 0
    return PoseEncoding.channels(PoseEncoding.encoding_of(config)) + memory


def generator_input(kind, batch):
    """What a generator reads: the joint vector (variant 1, baseline), or the encoded pose with the appearance
    memory (if the batch has one) stacked on the channel axis, in [-1, 1]."""
    if kind in Training.VECTOR_KINDS:
        return batch["vector"]
    pictures = [batch["skeleton"]] + ([batch["memory"]] if "memory" in batch else [])
    return Training.to_unit(torch.cat(pictures, 1))


def training_output(net, kind, batch):
    """A generator's output on a training batch and, for one composed with the appearance memory, its trust in the
    memory (ComposeWithMemory's mask; else None): what Training.reconstruction_loss scores."""
    x = generator_input(kind, batch)
    if isinstance(Training.unwrap(net), ComposeWithMemory):
        return net(x, with_trust=True)
    return net(x), None


def l1_step(net, optimizer, config, device):
    """The training step: one batch (tensors on the device) -> one Adam update on the reconstruction loss."""
    kind, scaler = config["kind"], Training.grad_scaler(device)

    def step(batch):
        real = Training.to_unit(batch["image"])
        with Training.autocast(device, config.get("cpu_bf16")):
            fake, trust = training_output(net, kind, batch)
        loss, terms = Training.reconstruction_loss(fake, real, batch["mask"], config, trust, batch["skeleton"])
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return terms

    return step


def evaluation_generator(net, config, device):
    """train_loop's generate_batch: the network in eval mode (BatchNorm's running statistics) on a batch."""
    kind = config["kind"]

    def generate_batch(batch):
        model = Training.unwrap(net)
        model.eval()
        with Training.autocast(device, config.get("cpu_bf16")):
            out = model(generator_input(kind, batch))
        model.train()
        return out

    return generate_batch


class TrainedGenerator:
    """A generator network trained on a target video, loaded from its checkpoint; generate(ske) draws the person.

    The checkpoint is `checkpoint` if given, else the newest of this kind among the target's models. GenGAN's
    generator is the same network used the same way: only its training differs. The appearance memory holds the
    training frames (Evaluate: the held-out frames must stay unseen), or with remember_all every frame of the target
    (DanceDemo: a pose the training frames lack may be in the others).
    """

    def __init__(self, videoSkeTgt, kind, train_command, checkpoint=None, device=None, remember_all=False):
        path = checkpoint or Checkpoints.find_checkpoint(videoSkeTgt, kind)
        if path is None:
            raise UserError(f"no trained {kind} model for {videoSkeTgt.name}: train one with {train_command}")
        saved = Checkpoints.load_checkpoint(path, kind, videoSkeTgt, train_command)
        self.kind, self.checkpoint_path, self.config, self.epochs = kind, path, saved["config"], saved["epoch"]
        self.minutes = (saved.get("history") or [{}])[-1].get("minutes")  # training time, where it was recorded
        self.size = self.config["size"]
        self.device = pick_device(device)
        self.net = build_generator(self.config)
        self.net.load_state_dict(saved["generator"])
        self.net.to(self.device).eval()
        train_indices, _ = Training.split_indices(videoSkeTgt.skeCount(), self.config["val_fraction"])
        remembered = np.arange(videoSkeTgt.skeCount()) if remember_all else train_indices
        self.memory = Training.build_memory(videoSkeTgt, remembered, self.config)

    def generate(self, ske):
        """The target person in pose `ske` (crop coordinates): BGR uint8, size x size."""
        return self.generate_many([ske])[0]

    @torch.no_grad()
    def generate_many(self, skeletons, steps=None):
        """One image per pose, computed as one batch: a list of BGR uint8 images, size x size. `steps`: for each
        pose, what sequence_steps() gave: ((remembered frame shown, frame faded from, weight of the shown), the
        frame whose plate it lies on). Where a step fades, the image made with the frame faded from is blended into
        the one made with the frame shown, both in the pose asked for, so that the person's texture dissolves
        instead of jumping. Without steps, the most alike remembered frame for each pose alone."""
        if steps is None:
            return Training.to_uint8_bgr(self._draw(skeletons, None, None))
        fades, plates = zip(*steps)
        shown = self._draw(skeletons, [step[0] for step in fades], plates)
        fading = [i for i, (_, _, weight) in enumerate(fades) if weight < 1]
        if fading:
            faded = self._draw([skeletons[i] for i in fading], [fades[i][1] for i in fading],
                               [plates[i] for i in fading])
            weight = torch.tensor([fades[i][2] for i in fading], device=shown.device).view(-1, 1, 1, 1)
            shown[fading] = weight * shown[fading] + (1 - weight) * faded
        return Training.to_uint8_bgr(shown)

    def _draw(self, skeletons, chosen, plates):
        """The network's output (N, 3, size, size) in [-1, 1] for these poses, remembered frames and plates."""
        inputs = Training.model_inputs(skeletons, self.config, self.memory, chosen=chosen, plates=plates)
        return self.net(generator_input(self.kind, inputs).to(self.device))

    def sequence_steps(self, skeletons):
        """For each pose of a sequence, ((remembered frame shown, frame faded from, weight of the shown), the frame
        whose plate it lies on): the remembered frames chosen together so that they change seldom
        (AppearanceMemory.coherent_choice), each change dissolved over a few frames (GenNearest.crossfades), and
        the plates chosen together too (coherent_plates). Without an appearance memory, nothing to choose."""
        if self.memory is None:
            return [((None, None, 1.0), None)] * len(skeletons)
        landmarks = [s.landmarks for s in skeletons]
        fades = crossfades(self.memory.coherent_choice(landmarks), self.memory.frame_index)
        return list(zip(fades, self.memory.coherent_plates(landmarks)))

    def generate_sequence(self, skeletons, batch_size=32):
        """One image per pose of a sequence, with its sequence_steps(), in batches."""
        steps = self.sequence_steps(skeletons)
        images = []
        for start in range(0, len(skeletons), batch_size):
            part = slice(start, start + batch_size)
            images += self.generate_many(skeletons[part], steps[part])
        return images


class GenVanillaNN(TrainedGenerator):
    """The course's names: GenVanillaNN(videoSkeTgt, loadFromFile=True, optSkeOrImage=1 (joint vector) or 2
    (skeleton image)), then generate(ske)."""

    def __init__(self, videoSkeTgt, loadFromFile=True, optSkeOrImage=1, checkpoint=None, device=None,
                 remember_all=False):
        if optSkeOrImage not in KINDS:
            raise UserError(f"optSkeOrImage must be 1 (joint vector) or 2 (skeleton image), got {optSkeOrImage}")
        if not loadFromFile:
            raise UserError("an untrained GenVanillaNN draws noise: train one with python src/GenVanillaNN.py")
        command = Checkpoints.train_command("GenVanillaNN.py", videoSkeTgt, f"--variant {optSkeOrImage}")
        super().__init__(videoSkeTgt, KINDS[optSkeOrImage], command, checkpoint, device, remember_all)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the vanilla generator (L1 loss) on a target video. "
                                     "Variant 1 reads the joint vector (DanceDemo GEN_TYPE 2), variant 2 the "
                                     "skeleton image with a U-Net (GEN_TYPE 3).")
    parser.add_argument("--variant", type=int, choices=(1, 2), default=2)
    parser.add_argument("--baseline", action="store_true",
                        help="train the course's DCGAN decoder (joint vector to 64 x 64) instead, for Evaluate.py")
    TrainingSetup.add_training_arguments(parser, default_size=128)
    args = parser.parse_args(argv)
    if args.baseline and args.size != 64:
        raise UserError("the course baseline makes 64 x 64 images: use --size 64 with --baseline")
    kind = "baseline" if args.baseline else KINDS[args.variant]
    command = f"python src/GenVanillaNN.py --target {args.target} " + ("--baseline" if args.baseline else
                                                                        f"--variant {args.variant}")
    run, resumed = TrainingSetup.prepare(args, kind, command)
    device, config = run["device"], run["config"]

    net = Training.prepare_module(build_generator(config), device, run["world"])
    optimizer = torch.optim.Adam(net.parameters(), lr=config["lr"], betas=(0.5, 0.999))
    if resumed:
        Training.unwrap(net).load_state_dict(resumed["generator"])
        optimizer.load_state_dict(resumed["optimizer"])
    if run["rank"] == 0:
        print(f"{type(Training.unwrap(net)).__name__}: {Training.param_count(net) / 1e6:.2f} M parameters")
    step = l1_step(net, optimizer, config, device)

    def checkpoint():
        return {**Checkpoints.checkpoint_header(kind, config, run["video"]),
                "generator": Training.unwrap(net).state_dict(), "optimizer": optimizer.state_dict()}

    run.update(step=step, generate_batch=evaluation_generator(net, config, device), checkpoint=checkpoint)
    Training.train_loop(run)
    TrainingSetup.finish(run)


if __name__ == "__main__":
    run_main(main)
