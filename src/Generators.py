"""Generators: what each GEN_TYPE is, and a trained network loaded from its checkpoint to make images.

Making a video stands apart from training: DanceDemo, Evaluate and the App come here, and this module reaches the
networks, the checkpoints and the appearance memory, never a trainer. GEN_TYPE 1 is GenNearest; 2 to 4 are a
TrainedGenerator around the network their trainer wrote (GenVanillaNN.py, GenGAN.py).
"""
from collections import namedtuple

import numpy as np
import torch
import torch.nn.functional as F

import Checkpoints
import Networks
import PoseEncoding
from AppearanceMemory import AppearanceMemory
from GenNearest import GenNearest
from Runtime import UserError, pick_device
from Sequence import crossfades
from VideoSkeleton import CropCache, split_indices

GenType = namedtuple("GenType", "name short kind")  # kind: the network's, in its checkpoint (None: no network)
GEN_TYPES = {1: GenType("nearest neighbour", "NN", None),
             2: GenType("vanilla net from the joint vector", "vector", "vanilla1"),
             3: GenType("vanilla U-Net from the pose and memory", "U-Net", "vanilla2"),
             4: GenType("conditional GAN", "GAN", "gan")}
# The command that trains each kind of network, after `python src/`.
TRAINERS = {"vanilla1": "GenVanillaNN.py --variant 1", "vanilla2": "GenVanillaNN.py --variant 2",
            "gan": "GenGAN.py", "baseline": "GenVanillaNN.py --baseline"}


def check_gen_type(gen_type):
    if gen_type not in GEN_TYPES:
        raise UserError(f"unknown GEN_TYPE {gen_type}: choose one of "
                        + ", ".join(f"{k} ({v.name})" for k, v in GEN_TYPES.items()))


def make_generator(gen_type, target, checkpoint=None, device=None, remember_all=False):
    """The generator GEN_TYPE stands for, ready to generate() for `target` (a VideoSkeleton). Nearest neighbour
    searches every frame of the target; a network's appearance memory holds its training frames only, or with
    remember_all every frame (the demo has no held-out frames to keep unseen)."""
    check_gen_type(gen_type)
    if gen_type == 1:
        return GenNearest(target)
    return TrainedGenerator(target, GEN_TYPES[gen_type].kind, checkpoint, device, remember_all)


def build_memory(video, indices, config, crops=None):
    """The appearance memory of frames `indices` of a VideoSkeleton at the configuration's size, reading its
    pictures through `crops` (a CropCache of that size; a new one if None); None for the networks that read the
    joint vector."""
    if config["kind"] in Networks.VECTOR_KINDS:
        return None
    return AppearanceMemory.from_video(video, indices, crops or CropCache(video, config["size"]))


def model_inputs(skeletons, config, memory=None, frames=None, chosen=None, plates=None, heads=None):
    """What the networks read for a list of Skeletons, as a dict of CPU tensors: "vector", the joint vectors (N, 26)
    in [-1, 1]; "skeleton", the encoded pose (PoseEncoding; N x C x size x size, uint8); and with an appearance
    memory, "memory", the remembered person warped to each pose (N x 3 x S x S, uint8, at the memory's size S),
    never taken from within a second of `frames` (the poses' own frame numbers, when they are training frames), or
    from the remembered frames `chosen` (AppearanceMemory.coherent_choice), with the heads of `heads`, on the plates
    of `plates`."""
    inputs = {"vector": torch.from_numpy(np.stack([s.as_vector(reduced=True) for s in skeletons]) * 2 - 1).float(),
              "skeleton": PoseEncoding.render_many(skeletons, config["size"])}
    if memory is not None:
        inputs["memory"] = memory.recall_many([s.landmarks for s in skeletons], frames, chosen, plates, heads)
    return inputs


class TrainedGenerator:
    """A generator network trained on a target video, loaded from its checkpoint; generate(ske) draws the person.

    The checkpoint is `checkpoint` if given, else the newest of this kind among the target's models. The appearance
    memory holds the training frames (Evaluate: the held-out frames must stay unseen), or with remember_all every
    frame of the target (DanceDemo: a pose the training frames lack may be in the others).
    """

    def __init__(self, video, kind, checkpoint=None, device=None, remember_all=False):
        command = Checkpoints.train_command(TRAINERS[kind], video)
        path = checkpoint or Checkpoints.find_checkpoint(video, kind)
        if path is None:
            raise UserError(f"no trained {kind} model for {video.name}: train one with {command}")
        saved = Checkpoints.load_checkpoint(path, kind, video, command)
        self.kind, self.checkpoint_path, self.config, self.epochs = kind, path, saved["config"], saved["epoch"]
        self.best_epoch = saved.get("best_epoch", self.epochs)  # whose weights draw: the best held-out SSIM's
        self.minutes = saved["history"][-1]["minutes"] if saved["history"] else None  # training time
        self.size = self.config["size"]  # the network's
        # A network composed with the appearance memory makes its output at the cached crops' size: the memory is
        # warped there from the full-size crops and only the network's drawing is enlarged (Networks.ComposeWithMemory).
        self.output_size = self.size if kind in Networks.VECTOR_KINDS else max(self.size, video.crop_size)
        self.device = pick_device(device)
        self.net = Networks.build_generator(self.config)
        Checkpoints.load_weights(self.net, saved["generator"], path, command)
        self.net.to(self.device).eval()
        train_indices, _ = split_indices(video.skeCount(), self.config["val_fraction"])
        remembered = np.arange(video.skeCount()) if remember_all else train_indices
        self.memory = build_memory(video, remembered, self.config, CropCache(video, self.output_size))

    def generate(self, ske):
        """The target person in pose `ske` (crop coordinates): BGR uint8, output_size square."""
        return self.generate_many([ske])[0]

    @torch.no_grad()
    def generate_many(self, skeletons, steps=None):
        """One image per pose, computed as one batch: a list of BGR uint8 images, output_size square. `steps`: for each
        pose, what sequence_steps() gave: ((remembered frame shown, frame faded from, weight of the shown), the
        frame whose plate it lies on, the frame whose head it takes). Where a step fades, the image made with the
        frame faded from is blended into the one made with the frame shown, both in the pose asked for, so that the
        person's texture dissolves instead of jumping. Without steps, the most alike remembered frame for each pose
        alone."""
        if steps is None:
            return Networks.to_uint8_bgr(self._draw(skeletons, None, None))
        fades, plates, heads = zip(*steps)
        shown = self._draw(skeletons, [step[0] for step in fades], plates, heads)
        fading = [i for i, (_, _, weight) in enumerate(fades) if weight < 1]
        if fading:
            faded = self._draw([skeletons[i] for i in fading], [fades[i][1] for i in fading],
                               [plates[i] for i in fading], [heads[i] for i in fading])
            weight = torch.tensor([fades[i][2] for i in fading], device=shown.device).view(-1, 1, 1, 1)
            shown[fading] = weight * shown[fading] + (1 - weight) * faded
        return Networks.to_uint8_bgr(shown)

    def _draw(self, skeletons, chosen, plates, heads=None):
        """The output (N, 3, output_size, output_size) in [-1, 1] for these poses, remembered frames, plates and
        heads."""
        inputs = model_inputs(skeletons, self.config, self.memory, chosen=chosen, plates=plates, heads=heads)
        if self.memory is None:
            return self.net(Networks.generator_input(self.kind, inputs).to(self.device))
        memory = inputs["memory"]  # at the output's size; the network reads it at its own, as it was trained
        if self.output_size != self.size:
            inputs["memory"] = F.interpolate(memory.float(), size=(self.size, self.size), mode="area").round().byte()
        return self.net(Networks.generator_input(self.kind, inputs).to(self.device),
                        memory=Networks.to_unit(memory.to(self.device)))

    def sequence_steps(self, skeletons):
        """For each pose of a sequence, ((remembered frame shown, frame faded from, weight of the shown), the frame
        whose plate it lies on, the frame whose head it takes): the remembered frames chosen together so that they
        change seldom, each change dissolved over a few frames (Sequence.py), and the plates and heads chosen
        together too. Without an appearance memory (the joint-vector networks), nothing to choose."""
        if self.memory is None:
            return [((None, None, 1.0), None, None)] * len(skeletons)
        landmarks = [s.landmarks for s in skeletons]
        fades = crossfades(self.memory.coherent_choice(landmarks), self.memory.frame_index)
        return list(zip(fades, self.memory.coherent_plates(landmarks), self.memory.coherent_heads(landmarks)))

    def generate_sequence(self, skeletons, batch_size=32):
        """One image per pose of a sequence, with its sequence_steps(), in batches."""
        steps = self.sequence_steps(skeletons)
        images = []
        for start in range(0, len(skeletons), batch_size):
            part = slice(start, start + batch_size)
            images += self.generate_many(skeletons[part], steps[part])
        return images
