"""GenGAN: train the pix2pix-style conditional GAN: the U-Net of GenVanillaNN against a PatchGAN that sees the pose.

    python src/GenGAN.py --target VIDEO [--time-budget MINUTES] [--size S] [--recipe FILE] [--resume] [--device D]
    torchrun --standalone --nproc_per_node=N src/GenGAN.py ...     (DistributedDataParallel, N processes)

L1 alone makes the average of every image the network finds plausible for a pose: blurry. The discriminator
(Networks.NLayerDiscriminator) judges overlapping patches of the (pose, person image) pair, real or generated, so it
punishes blur and, because it sees the pose too, a person in the wrong pose. The generator's loss is the adversarial
term + lambda_l1 x the reconstruction loss (Training.reconstruction_loss: L1, the SSIM term and the price on
redrawing the appearance memory), as pix2pix weighs them.
"""
import argparse

import torch

import Networks
import Training
import TrainingSetup
from Checkpoints import DEFAULTS, checkpoint_header, load_weights
from Generators import TrainedGenerator
from Runtime import UserError, run_main

KIND = "gan"


class GenGAN(TrainedGenerator):
    """Generate the target person with the trained GAN's generator: GenGAN(videoSkeTgt), then generate(ske)."""

    def __init__(self, videoSkeTgt, loadFromFile=True, checkpoint=None, device=None):
        if not loadFromFile:
            raise UserError("an untrained GenGAN draws noise: train one with python src/GenGAN.py")
        super().__init__(videoSkeTgt, KIND, checkpoint, device)


def gan_step(generator, discriminator, optimizer_g, optimizer_d, config, device):
    """The training step: one batch (uint8 tensors on the device) -> one update of D, then one of G."""
    gan_loss = Networks.GANLoss(config["gan_mode"])
    scaler = Training.grad_scaler(device)

    def step(batch):
        condition = Networks.to_unit(batch["skeleton"])
        real = Networks.to_unit(batch["image"])
        with Training.autocast(device):
            fake, trust = Training.training_output(generator, KIND, batch)

        # Discriminator: real pairs towards real, generated pairs towards fake.
        with Training.autocast(device):
            loss_d = (gan_loss(discriminator(condition, real), True) +
                      gan_loss(discriminator(condition, fake.detach()), False)) * 0.5
        optimizer_d.zero_grad(set_to_none=True)
        scaler.scale(loss_d).backward()
        scaler.step(optimizer_d)

        # Generator: fool the discriminator, and stay near the real image.
        with Training.autocast(device):
            loss_gan = gan_loss(discriminator(condition, fake), True)
        loss_rec, terms = Training.reconstruction_loss(fake, real, batch["mask"], config, trust)
        loss_g = loss_gan + config["lambda_l1"] * loss_rec
        optimizer_g.zero_grad(set_to_none=True)
        scaler.scale(loss_g).backward()
        scaler.step(optimizer_g)
        scaler.update()
        return {"d": loss_d.item(), "g_gan": loss_gan.item(), **terms}

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the conditional GAN (pix2pix-style U-Net + PatchGAN that "
                                     "sees the pose) on a target video; DanceDemo GEN_TYPE 4 uses it.")
    TrainingSetup.add_training_arguments(parser, KIND)
    parser.add_argument("--ndf", type=int, help=f"width of the discriminator's first layer (default "
                        f"{DEFAULTS[KIND]['ndf']})")
    args = parser.parse_args(argv)
    run, resumed = TrainingSetup.prepare(args, KIND)
    device, config = run["device"], run["config"]

    generator = Training.prepare_module(Networks.build_generator(config), device, run["world"])
    discriminator = Training.prepare_module(Networks.build_discriminator(config), device, run["world"])
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=config["lr"], betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=config["lr"], betas=(0.5, 0.999))
    if resumed:
        load_weights(Training.unwrap(generator), resumed.get("last_generator", resumed["generator"]), run["path"])
        load_weights(Training.unwrap(discriminator), resumed["discriminator"], run["path"])
        optimizer_g.load_state_dict(resumed["optimizer_g"])
        optimizer_d.load_state_dict(resumed["optimizer_d"])
    if run["rank"] == 0:
        print(f"generator {Networks.param_count(generator) / 1e6:.2f} M parameters, "
              f"discriminator {Networks.param_count(discriminator) / 1e6:.2f} M, {config['gan_mode']} loss")

    def checkpoint():
        return {**checkpoint_header(config, run["video"]),
                "generator": Training.unwrap(generator).state_dict(),
                "discriminator": Training.unwrap(discriminator).state_dict(),
                "optimizer_g": optimizer_g.state_dict(), "optimizer_d": optimizer_d.state_dict()}

    run.update(step=gan_step(generator, discriminator, optimizer_g, optimizer_d, config, device),
               generate_batch=Training.evaluation_generator(generator, config, device), checkpoint=checkpoint)
    Training.train_loop(run)
    TrainingSetup.finish(run)


if __name__ == "__main__":
    run_main(main)
