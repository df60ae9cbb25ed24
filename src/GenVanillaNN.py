"""GenVanillaNN: train a network with L1 alone to draw the target person in a given pose.

    python src/GenVanillaNN.py --target VIDEO [--variant {1,2}] [--time-budget MINUTES] [--recipe FILE] [--resume]

Variant 1 (DanceDemo GEN_TYPE 2) reads the 26 values of the reduced skeleton and decodes an image from them
(Networks.VectorToImage). Variant 2 (GEN_TYPE 3) reads the pose drawn as images, one per limb, and the appearance
memory, and translates them with a U-Net (Networks.UnetGenerator). --baseline trains the course's own network
(Networks.CourseDecoder, 64 x 64) for Evaluate.py to compare with. GenGAN.py trains the same U-Net against a
discriminator.
"""
import argparse

import torch

import Networks
import Training
import TrainingSetup
from Checkpoints import checkpoint_header, load_weights
from Generators import TrainedGenerator
from Runtime import UserError, run_main

KINDS = {1: "vanilla1", 2: "vanilla2"}


class GenVanillaNN(TrainedGenerator):
    """The course's names: GenVanillaNN(videoSkeTgt, loadFromFile=True, optSkeOrImage=1 (joint vector) or 2
    (skeleton image)), then generate(ske)."""

    def __init__(self, videoSkeTgt, loadFromFile=True, optSkeOrImage=1, checkpoint=None, device=None):
        if optSkeOrImage not in KINDS:
            raise UserError(f"optSkeOrImage must be 1 (joint vector) or 2 (skeleton image), got {optSkeOrImage}")
        if not loadFromFile:
            raise UserError("an untrained GenVanillaNN draws noise: train one with python src/GenVanillaNN.py")
        super().__init__(videoSkeTgt, KINDS[optSkeOrImage], checkpoint, device)


def l1_step(net, optimizer, config, device):
    """The training step: one batch (tensors on the device) -> one Adam update on the reconstruction loss."""
    kind, scaler = config["kind"], Training.grad_scaler(device)

    def step(batch):
        real = Networks.to_unit(batch["image"])
        with Training.autocast(device):
            fake, trust = Training.training_output(net, kind, batch)
        loss, terms = Training.reconstruction_loss(fake, real, batch["mask"], config, trust)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return terms

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the vanilla generator (L1 loss) on a target video. "
                                     "Variant 1 reads the joint vector (DanceDemo GEN_TYPE 2), variant 2 the "
                                     "pose and the appearance memory with a U-Net (GEN_TYPE 3).")
    parser.add_argument("--variant", type=int, choices=(1, 2), default=2, help="1 or 2 (default 2)")
    parser.add_argument("--baseline", action="store_true",
                        help="train the course's DCGAN decoder (joint vector to 64 x 64) instead, for Evaluate.py")
    TrainingSetup.add_training_arguments(parser, "vanilla2")
    args = parser.parse_args(argv)
    kind = "baseline" if args.baseline else KINDS[args.variant]
    run, resumed = TrainingSetup.prepare(args, kind)
    device, config = run["device"], run["config"]

    net = Training.prepare_module(Networks.build_generator(config), device, run["world"])
    optimizer = torch.optim.Adam(net.parameters(), lr=config["lr"], betas=(0.5, 0.999))
    if resumed:
        load_weights(Training.unwrap(net), resumed.get("last_generator", resumed["generator"]), run["path"])
        optimizer.load_state_dict(resumed["optimizer"])
    if run["rank"] == 0:
        print(f"{type(Training.unwrap(net)).__name__}: {Networks.param_count(net) / 1e6:.2f} M parameters")

    def checkpoint():
        return {**checkpoint_header(config, run["video"]), "generator": Training.unwrap(net).state_dict(),
                "optimizer": optimizer.state_dict()}

    run.update(step=l1_step(net, optimizer, config, device),
               generate_batch=Training.evaluation_generator(net, config, device), checkpoint=checkpoint)
    Training.train_loop(run)
    TrainingSetup.finish(run)


if __name__ == "__main__":
    run_main(main)
