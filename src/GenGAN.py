"""GenGAN: pix2pix-style conditional GAN. The U-Net of GenVanillaNN against a PatchGAN that sees the pose.

    python src/GenGAN.py --target VIDEO --epochs N --size S [--gan-mode bce|lsgan|wgangp] [--resume] [--device D]
    torchrun --standalone --nproc_per_node=N src/GenGAN.py ...     (DistributedDataParallel, N processes)

L1 alone makes the average of every image the network finds plausible for a pose: blurry. The discriminator judges
70 x 70-pixel-style patches of the (skeleton image, person image) pair, real or generated, so it punishes blur and,
because it sees the skeleton too, a person in the wrong pose: a discriminator shown only the image (as the course's
is) would accept a sharp person in any pose. The generator's loss is the adversarial term + lambda_l1 * L1 (100, as
in pix2pix; Training.reconstruction_loss, with a price on redrawing the appearance memory and an optional SSIM
term) + optionally lambda_fm * feature matching (L1 between the discriminator's inner features of the real and the
generated pair, which steadies training). With --scales 2 or 3 the discriminator is pix2pixHD's: as many
PatchGANs, on the pair at full, half and quarter size.
"""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

import Checkpoints
import PoseEncoding
import Training
import TrainingSetup
from GenVanillaNN import TrainedGenerator, build_generator, evaluation_generator, training_output
from Runtime import UserError, run_main

KIND = "gan"
# A generator twice as wide as the vanilla U-Net's: in the same minutes (so half the epochs) it scored better on
# three footages of four and level on the fourth (RESULTS.md, "30 minutes of training").
GAN_NGF = 64
# L1 plus 1 - SSIM (Training.reconstruction_loss): on taichi2 SSIM 0.797 against 0.786 and person SSIM 0.642 against
# 0.623, on karate1 0.852 against 0.813 and 0.669 against 0.604 (RESULTS.md, "30 minutes of training").
GAN_SSIM_WEIGHT = 1.0
# A price on redrawing the appearance memory: with the SSIM term alone the network redraws the remembered person as
# a blur and loses him in a stranger's poses (karate1's transfer missed 52.8%); with 0.1, 2.3% (0.05 before the SSIM
# term: on four footages a better pose and a crisper person found more often).
GAN_TRUST_WEIGHT = 0.1
# That price on the person's pixels alone: the network's gain over the memory is in the background, and what it does
# to the remembered person is mostly a blur. On taichi2 SSIM 0.767 against 0.753 and pose distance 2.43% against
# 3.68%, tOF 0.120 against 0.113; on karate1 better on every measure but tOF (level); level or better on the
# sample's two cameras (RESULTS.md, "30 minutes of training").
GAN_TRUST_REGION = "person"


class NLayerDiscriminator(nn.Module):
    """PatchGAN: strided 4x4 convolutions down to a map of scores, one per overlapping image patch.

    Input: the condition and the image, concatenated on the channel axis. InstanceNorm rather than BatchNorm, so
    that a sample's score never depends on the rest of its batch (WGAN-GP's gradient penalty requires it).
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
        self.layers = nn.ModuleList(layers)

    def forward(self, condition, image, features=False):
        """Patch scores (logits); with features=True also every inner layer's output, for feature matching."""
        x = torch.cat([condition, image], 1)
        inner = []
        for layer in self.layers:
            x = layer(x)
            inner.append(x)
        return (x, inner[:-1]) if features else x


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD's discriminator (Wang et al., CVPR 2018): `scales` PatchGANs, each shown the pair at half the size
    of the last, so that the first judges texture and the coarser ones the whole body's shape. Returns a list of
    score maps, one per scale; with features=True also every scale's inner features, in one list."""

    def __init__(self, scales, **patch_gan):
        super().__init__()
        self.discriminators = nn.ModuleList(NLayerDiscriminator(**patch_gan) for _ in range(scales))

    def forward(self, condition, image, features=False):
        scores, inner = [], []
        for scale, discriminator in enumerate(self.discriminators):
            if scale:
                condition, image = (F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
                                    for x in (condition, image))
            out = discriminator(condition, image, features=True)
            scores.append(out[0])
            inner += out[1]
        return (scores, inner) if features else scores


class GANLoss(nn.Module):
    """The adversarial loss in one call, whatever the mode: loss(scores, target_is_real).

    bce: the original GAN loss (binary cross-entropy on logits), the course's; lsgan: least squares (Mao et al.
    2017), steadier; wgangp: Wasserstein critic (Gulrajani et al. 2017), with gradient_penalty() added for D.
    """

    def __init__(self, mode):
        super().__init__()
        if mode not in ("bce", "lsgan", "wgangp"):
            raise ValueError(f"unknown GAN mode {mode}")
        self.mode = mode

    def forward(self, scores, target_is_real):
        if isinstance(scores, list):  # a MultiscaleDiscriminator's: the scales' losses summed, as in pix2pixHD
            return sum(self(s, target_is_real) for s in scores)
        scores = scores.float()
        if self.mode == "wgangp":
            return -scores.mean() if target_is_real else scores.mean()
        target = torch.full_like(scores, 1.0 if target_is_real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(scores, target)
        return F.binary_cross_entropy_with_logits(scores, target)


def gradient_penalty(discriminator, condition, real, fake):
    """WGAN-GP: push the critic's gradient norm towards 1 on random mixes of real and generated images."""
    mix = torch.rand(real.size(0), 1, 1, 1, device=real.device)
    mixed = (mix * real + (1 - mix) * fake).requires_grad_(True)
    scores = discriminator(condition, mixed)
    total = sum(s.float().sum() for s in scores) if isinstance(scores, list) else scores.float().sum()
    gradients, = torch.autograd.grad(total, mixed, create_graph=True)
    return ((gradients.flatten(1).norm(dim=1) - 1) ** 2).mean()


def build_discriminator(config):
    """The PatchGAN for a configuration: 3 strided layers (70 px patches) from 128 px up, 2 (34 px) at 64 px; with
    config["scales"] > 1 (older checkpoints: 1) that many, as a MultiscaleDiscriminator."""
    pose_channels = PoseEncoding.channels(PoseEncoding.encoding_of(config))
    patch_gan = dict(input_nc=pose_channels + 3, ndf=config["ndf"], n_layers=3 if config["size"] > 64 else 2)
    scales = config.get("scales", 1)
    return MultiscaleDiscriminator(scales, **patch_gan) if scales > 1 else NLayerDiscriminator(**patch_gan)


def gan_step(generator, discriminator, optimizer_g, optimizer_d, config, device):
    """The training step: one batch (uint8 tensors on the device) -> one update of D, then one of G."""
    gan_loss = GANLoss(config["gan_mode"])
    scaler = Training.grad_scaler(device)

    def step(batch):
        condition = Training.to_unit(batch["skeleton"])
        real = Training.to_unit(batch["image"])
        with Training.autocast(device, config.get("cpu_bf16")):
            fake, trust = training_output(generator, KIND, batch)

        # Discriminator: real pairs towards real, generated pairs towards fake.
        with Training.autocast(device, config.get("cpu_bf16")):
            loss_d = (gan_loss(discriminator(condition, real), True) +
                      gan_loss(discriminator(condition, fake.detach()), False)) * 0.5
        if config["gan_mode"] == "wgangp":
            penalty = gradient_penalty(discriminator, condition, real, fake.detach().float())
            loss_d = loss_d + config["lambda_gp"] * penalty
        optimizer_d.zero_grad(set_to_none=True)
        scaler.scale(loss_d).backward()
        scaler.step(optimizer_d)

        # Generator: fool the discriminator, stay near the real image in L1 (and in D's features if asked).
        with Training.autocast(device, config.get("cpu_bf16")):
            scores_fake, features_fake = discriminator(condition, fake, features=True)
            loss_gan = gan_loss(scores_fake, True)
            loss_fm = torch.zeros((), device=device)
            if config["lambda_fm"] > 0:
                with torch.no_grad():
                    _, features_real = discriminator(condition, real, features=True)
                loss_fm = sum(F.l1_loss(f.float(), r.float()) for f, r in zip(features_fake, features_real))
        loss_rec, terms = Training.reconstruction_loss(fake, real, batch["mask"], config, trust,
                                                         batch["skeleton"])
        loss_g = loss_gan + config["lambda_l1"] * loss_rec + config["lambda_fm"] * loss_fm
        optimizer_g.zero_grad(set_to_none=True)
        scaler.scale(loss_g).backward()
        scaler.step(optimizer_g)
        scaler.update()
        losses = {"d": loss_d.item(), "g_gan": loss_gan.item(), **terms}
        if config["lambda_fm"] > 0:
            losses["fm"] = loss_fm.item()
        return losses

    return step


class GenGAN(TrainedGenerator):
    """Generate the target person with the trained GAN's generator: GenGAN(videoSkeTgt), then generate(ske)."""

    def __init__(self, videoSkeTgt, loadFromFile=True, checkpoint=None, device=None, remember_all=False):
        if not loadFromFile:
            raise UserError("an untrained GenGAN draws noise: train one with python src/GenGAN.py")
        super().__init__(videoSkeTgt, KIND, Checkpoints.train_command("GenGAN.py", videoSkeTgt), checkpoint, device,
                         remember_all)


def add_gan_arguments(parser):
    parser.add_argument("--gan-mode", choices=("bce", "lsgan", "wgangp"), default="lsgan",
                        help="adversarial loss (default lsgan; bce is the course's)")
    parser.add_argument("--lambda-l1", type=float, default=100.0,
                        help="weight of the reconstruction loss: L1, plus the SSIM term if --ssim-weight (default 100)")
    parser.add_argument("--lambda-fm", type=float, default=0.0,
                        help="weight of discriminator feature matching (default 0: off; 10 is a usual value)")
    parser.add_argument("--lambda-gp", type=float, default=10.0, help="gradient penalty weight for wgangp")
    parser.add_argument("--ndf", type=int, default=32,
                        help="channels of the discriminator's first layer (default 32: a training step takes 0.6 of "
                        "the time it takes with pix2pix's 64, with scores as good in the same minutes; RESULTS.md)")
    parser.add_argument("--scales", type=int, default=1, choices=(1, 2, 3),
                        help="discriminators, each on the pair at half the size of the last, as in pix2pixHD "
                        "(default 1: one PatchGAN)")


def gan_config(args):
    """What the GAN adds to TrainingSetup.make_config."""
    return dict(gan_mode=args.gan_mode, lambda_l1=args.lambda_l1, lambda_fm=args.lambda_fm, lambda_gp=args.lambda_gp,
                ndf=args.ndf, scales=args.scales)


def add_arguments(parser, default_size=128):
    """The GAN trainer's whole command line: the shared training flags with the GAN's defaults, and its own."""
    TrainingSetup.add_training_arguments(parser, default_size=default_size, default_ngf=GAN_NGF,
                                         default_ssim_weight=GAN_SSIM_WEIGHT, default_trust_weight=GAN_TRUST_WEIGHT,
                                         default_trust_region=GAN_TRUST_REGION)
    add_gan_arguments(parser)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the conditional GAN (pix2pix-style U-Net + PatchGAN that "
                                     "sees the pose) on a target video; DanceDemo GEN_TYPE 4 uses it.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    command = f"python src/GenGAN.py --target {args.target}"
    run, resumed = TrainingSetup.prepare(args, KIND, command)
    device, config = run["device"], run["config"]
    config.update(gan_config(args))
    if resumed:  # these shape the discriminator; a checkpoint from before --scales had one scale
        TrainingSetup.refuse_changed_shape(resumed, config, {"gan_mode": None, "ndf": None, "scales": 1},
                                           Checkpoints.checkpoint_path(run["video"], KIND, config["size"]))

    generator = Training.prepare_module(build_generator(config), device, run["world"])
    discriminator = Training.prepare_module(build_discriminator(config), device, run["world"])
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=config["lr"], betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=config["lr"], betas=(0.5, 0.999))
    if resumed:
        Training.unwrap(generator).load_state_dict(resumed["generator"])
        Training.unwrap(discriminator).load_state_dict(resumed["discriminator"])
        optimizer_g.load_state_dict(resumed["optimizer_g"])
        optimizer_d.load_state_dict(resumed["optimizer_d"])
    if run["rank"] == 0:
        print(f"generator {Training.param_count(generator) / 1e6:.2f} M parameters, "
              f"discriminator {Training.param_count(discriminator) / 1e6:.2f} M, {args.gan_mode} loss")

    step = gan_step(generator, discriminator, optimizer_g, optimizer_d, config, device)

    def checkpoint():
        return {**Checkpoints.checkpoint_header(KIND, config, run["video"]),
                "generator": Training.unwrap(generator).state_dict(),
                "discriminator": Training.unwrap(discriminator).state_dict(),
                "optimizer_g": optimizer_g.state_dict(), "optimizer_d": optimizer_d.state_dict()}

    run.update(step=step, generate_batch=evaluation_generator(generator, config, device), checkpoint=checkpoint)
    Training.train_loop(run)
    TrainingSetup.finish(run)


if __name__ == "__main__":
    run_main(main)
