"""Networks: every network of the project, each defined once, in the spirit of pix2pix's models/networks.py
(junyanz/pytorch-CycleGAN-and-pix2pix).

- UnetGenerator, built from one recursive UnetSkipConnectionBlock: the image networks (GEN_TYPE 3 and 4), whose
  skip connections carry the limbs' positions straight to the output layers;
- ComposeWithMemory around it: the output is the appearance memory where the network trusts it, its own drawing
  elsewhere, at the memory's size (which may be larger than the network's: what is copied stays sharp);
- VectorToImage (GEN_TYPE 2) and CourseDecoder (the course's baseline), which read the 26 joint values;
- NLayerDiscriminator, the PatchGAN that judges (pose, image) pairs, and GANLoss;
- build_generator() and build_discriminator(), the networks a checkpoint's configuration describes.
The decoders upsample then convolve (UpConv2d), rather than use transposed convolutions, which leave checkerboard
artefacts (Odena et al., Distill 2016); only the course's baseline keeps them, as the course wrote it.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import PoseEncoding
from Runtime import UserError

VECTOR_KINDS = ("vanilla1", "baseline")  # the networks that read the joint vector; the others read images


class UpConv2d(nn.Conv2d):
    """Nearest-neighbour upsampling by 2, then a 3 x 3 convolution (padding 1): the decoders' step up.

    Computed without the enlarged image: each of the four output pixels that one input pixel becomes sees only a
    2 x 2 neighbourhood of the input, through the sums of the 3 x 3 weights that fall on the same input pixel. So four
    2 x 2 convolutions on the small image give the same numbers (to float rounding) with 16 multiplications per pair
    of channels instead of 36, and no four-times-larger copy to write and read (4 to 5 times faster for the U-Net's
    widest layers on a CPU). The weights stay those of the 3 x 3 convolution.
    """

    def __init__(self, in_channels, out_channels, bias=True):
        super().__init__(in_channels, out_channels, kernel_size=3, padding=1, bias=bias)
        self.folded = (None, None)  # (the weights' version, their 2 x 2 kernels): made again when they change

    def kernels(self):
        """The four 2 x 2 kernels, one per output phase, as one (4 out, in, 2, 2) tensor."""
        w = self.weight
        version = (w.data_ptr(), w._version, torch.is_grad_enabled())
        if self.folded[0] == version:
            return self.folded[1]
        # (out, in, 3, 3): rows 0..2, then columns, folded onto the 2 input pixels that each phase sees
        rows = torch.stack([torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2),    # even output rows
                            torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2)])   # odd output rows
        kernels = torch.stack([torch.stack([rows[..., 0], rows[..., 1] + rows[..., 2]], -1),  # even columns
                               torch.stack([rows[..., 0] + rows[..., 1], rows[..., 2]], -1)], 1)  # odd
        kernels = kernels.reshape(4 * w.size(0), w.size(1), 2, 2)
        self.folded = (version, kernels)
        return kernels

    def forward(self, x):
        out_channels, height, width = self.weight.size(0), x.size(2), x.size(3)
        phases = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.kernels())  # (N, 4 out, H + 1, W + 1)
        phases = phases.view(x.size(0), 2, 2, out_channels, height + 1, width + 1)
        out = phases.new_empty(x.size(0), out_channels, height, 2, width, 2)  # each pixel's 2 x 2, interleaved
        for a in (0, 1):
            for b in (0, 1):
                out[:, :, :, a, :, b] = phases[:, a, b, :, a:a + height, b:b + width]
        out = out.view(x.size(0), out_channels, 2 * height, 2 * width)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: down (conv stride 2), the inner levels, up (upsample, conv), and the skip.

    |-- down -- submodule -- up --|   the output is the block's input concatenated with the up path's output,
    |------------ skip -----------|   except at the outermost level, which returns the up path's output.
    Up is nearest upsampling then a 3 x 3 convolution (UpConv2d), rather than a transposed convolution, which
    leaves checkerboard artefacts (Odena et al., Distill 2016).
    """

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False):
        super().__init__()
        self.outermost = outermost
        input_nc = input_nc or outer_nc
        down = [nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)]
        if not outermost:
            down = [nn.LeakyReLU(0.2, True)] + down + ([] if innermost else [nn.BatchNorm2d(inner_nc)])
        up_in = inner_nc if innermost else inner_nc * 2  # the inner block returns its input and its output
        up = [nn.ReLU(True), UpConv2d(up_in, outer_nc, bias=outermost)]
        up += [nn.Tanh()] if outermost else [nn.BatchNorm2d(outer_nc)]
        self.model = nn.Sequential(*down, *([submodule] if submodule is not None else []), *up)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """Input image (input_nc x S x S, in [-1, 1]) -> output image (output_nc x S x S, in [-1, 1]).

    num_downs halvings take S down to S / 2**num_downs at the bottleneck; channels double from ngf to 8 * ngf.
    """

    def __init__(self, input_nc=3, output_nc=3, num_downs=6, ngf=32):
        super().__init__()
        if num_downs < 5:
            raise ValueError("the U-Net needs at least 5 levels")
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block)
        for multiple in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * multiple, ngf * multiple * 2, submodule=block)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)

    def forward(self, x):
        return self.model(x)


class ComposeWithMemory(nn.Module):
    """A generator that copies from the appearance memory where it can. The wrapped network (any image-to-image
    network with 4 output channels in [-1, 1]) draws an image and a mask m; the output is m x memory + (1 - m) x
    image, the memory being the last 3 channels of the input. This is how vid2vid composes a warped frame with a
    drawn one (Wang et al., NeurIPS 2018): from the first step the output already shows the remembered person, and
    training only has to learn where to trust it and what to draw instead."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, with_trust=False, memory=None):
        """The composed image; with_trust=True: (the image, the mask m), for Training.reconstruction_loss.

        memory: the same appearance memory at a larger size (in [-1, 1]): the output is composed at that size, the
        network's image and mask enlarged to it (bilinear), so that what is copied keeps the sharpness it has there.
        What is drawn gets the memory's detail finer than the network's size, which the network cannot draw: the
        output is the large memory plus (1 - m) x (the network's image - the memory as the network saw it), the
        network's correction at its own size laid on the memory's texture."""
        out = self.net(x)
        detail = 0.0
        if memory is None:
            memory = x[:, -3:]
        elif memory.shape[-1] != out.shape[-1]:
            out = F.interpolate(out, size=memory.shape[-2:], mode="bilinear", align_corners=False)
            detail = memory - F.interpolate(x[:, -3:], size=memory.shape[-2:], mode="bilinear", align_corners=False)
        mask = (out[:, 3:4] + 1) / 2
        image = mask * memory + (1 - mask) * (out[:, :3] + detail)
        return (image, mask) if with_trust else image


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
        for _ in range(log2_int(size) - 2):
            out = max(ngf, channels // 2)
            blocks += [UpConv2d(channels, out, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
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


class NLayerDiscriminator(nn.Module):
    """PatchGAN: strided 4x4 convolutions down to a map of scores, one per overlapping image patch.

    Input: the condition (the encoded pose) and the image, concatenated on the channel axis, so it punishes a person
    in the wrong pose as well as a blur: a discriminator shown only the image (as the course's is) would accept a
    sharp person in any pose. InstanceNorm rather than BatchNorm, so that a sample's score never depends on the rest
    of its batch.
    """

    def __init__(self, input_nc=6, ndf=64, n_layers=3):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True))]
        channels = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2 ** n, 8)
            layers.append(nn.Sequential(nn.Conv2d(channels, out, 4, stride=1 if n == n_layers else 2, padding=1),
                                        nn.InstanceNorm2d(out, affine=True), nn.LeakyReLU(0.2, True)))
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, condition, image):
        """Patch scores (logits)."""
        return self.model(torch.cat([condition, image], 1))


class GANLoss(nn.Module):
    """The adversarial loss in one call, whatever the mode: loss(scores, target_is_real).

    lsgan: least squares (Mao et al. 2017), steadier; bce: the original GAN loss (binary cross-entropy on logits),
    the course's.
    """

    MODES = ("lsgan", "bce")

    def __init__(self, mode):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"unknown GAN mode {mode}")
        self.mode = mode

    def forward(self, scores, target_is_real):
        scores = scores.float()
        target = torch.full_like(scores, 1.0 if target_is_real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(scores, target)
        return F.binary_cross_entropy_with_logits(scores, target)


def build_generator(config):
    """The generator a configuration describes: vanilla1 -> VectorToImage, baseline -> CourseDecoder, vanilla2 and
    gan -> a UnetGenerator that reads the encoded pose and the appearance memory, composed with that memory."""
    if config["kind"] == "baseline":
        return CourseDecoder(ngf=config["ngf"])
    if config["kind"] == "vanilla1":
        return VectorToImage(config["size"], ngf=config["ngf"])
    unet = UnetGenerator(input_nc=PoseEncoding.CHANNELS + 3, output_nc=4, num_downs=log2_int(config["size"]) - 1,
                         ngf=config["ngf"])
    return ComposeWithMemory(unet)  # the image and a mask over the memory


def build_discriminator(config):
    """The PatchGAN for a configuration: 3 strided layers (70 px patches) from 128 px up, 2 (34 px) at 64 px."""
    return NLayerDiscriminator(input_nc=PoseEncoding.CHANNELS + 3, ndf=config["ndf"],
                               n_layers=3 if config["size"] > 64 else 2)


def generator_input(kind, batch):
    """What a generator reads from a batch of model inputs (Generators.model_inputs): the joint vector, or the
    encoded pose and the appearance memory stacked on the channel axis, in [-1, 1]."""
    if kind in VECTOR_KINDS:
        return batch["vector"]
    return to_unit(torch.cat([batch["skeleton"], batch["memory"]], 1))


def to_unit(batch_uint8):
    """uint8 images (0..255) -> float in [-1, 1], the range of the generators' tanh output."""
    return batch_uint8.float().div_(127.5).sub_(1)


def to_uint8_bgr(images):
    """Generator output (N, 3, H, W) in [-1, 1] -> list of H x W x 3 BGR uint8 numpy images."""
    images = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return list(images)


def log2_int(size):
    n = int(round(math.log2(size)))
    if 2 ** n != size:
        raise UserError(f"image size must be a power of two, got {size}")
    return n


def param_count(module):
    return sum(p.numel() for p in module.parameters())
