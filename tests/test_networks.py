"""The networks on synthetic tensors, and real training steps on real sample crops."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import Metrics
import PoseEncoding
import Training
from Generators import build_memory
from Networks import (ComposeWithMemory, GANLoss, UnetGenerator, VectorToImage, build_discriminator,
                      build_generator, generator_input, to_unit)
from VideoSkeleton import split_indices

IMAGE_CHANNELS = PoseEncoding.CHANNELS + 3  # what the image networks read: the encoded pose and the memory


@pytest.mark.parametrize("size", [64, 128, 256])
def test_generators_make_images_of_their_size_in_tanh_range(size):
    torch.manual_seed(0)
    unet = build_generator({"kind": "gan", "size": size, "ngf": 8}).eval()
    vector_net = build_generator({"kind": "vanilla1", "size": size, "ngf": 8}).eval()
    assert isinstance(unet, ComposeWithMemory) and isinstance(unet.net, UnetGenerator)
    assert isinstance(vector_net, VectorToImage)
    with torch.no_grad():
        from_image = unet(torch.rand(2, IMAGE_CHANNELS, size, size) * 2 - 1)
        from_vector = vector_net(torch.rand(2, 26) * 2 - 1)
    for out in (from_image, from_vector):
        assert out.shape == (2, 3, size, size)
        assert out.min() >= -1 and out.max() <= 1


class FixedOutput(torch.nn.Module):
    """A stand-in for the U-Net: always the same image (grey -0.5) and the same mask over the memory."""

    def __init__(self, trust):
        super().__init__()
        self.trust = trust

    def forward(self, x):
        out = torch.full((x.size(0), 4, x.size(2), x.size(3)), -0.5)
        out[:, 3] = 2 * self.trust - 1
        return out


def test_composing_at_a_larger_size_copies_the_large_memory_where_the_network_trusts_it():
    """ComposeWithMemory(memory=...) composes at the large memory's size: where the mask trusts the memory the
    output is the large memory itself, pixel for pixel (its sharpness kept); elsewhere the network's image enlarged
    with the large memory's detail that the network's size cannot hold, and in between the mix the mask says. A
    network that draws the memory as it saw it gives back the large memory, whatever its mask."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = torch.rand(2, IMAGE_CHANNELS, 32, 32) * 2 - 1
    large = torch.rand(2, 3, 128, 128) * 2 - 1
    detail = large - F.interpolate(x[:, -3:], size=(128, 128), mode="bilinear", align_corners=False)
    for trust in (1.0, 0.0, 0.25):
        out = ComposeWithMemory(FixedOutput(trust))(x, memory=large)
        assert out.shape == (2, 3, 128, 128)
        assert torch.allclose(out, trust * large + (1 - trust) * (-0.5 + detail), atol=1e-6)

    class Echo(torch.nn.Module):  # draws the memory it was given, and distrusts it everywhere
        def forward(self, x):
            return torch.cat([x[:, -3:], -torch.ones_like(x[:, :1])], 1)

    assert torch.allclose(ComposeWithMemory(Echo())(x, memory=large), large, atol=1e-6)
    # Without it, the memory in the input is the one composed, at the network's size.
    out = ComposeWithMemory(FixedOutput(1.0))(x)
    assert out.shape == (2, 3, 32, 32) and torch.equal(out, x[:, -3:])


def test_unet_skips_carry_the_input_to_the_output():
    """Through the skip connections the outermost layer sees the input: changing one corner of the input changes
    the output there more than far away."""
    torch.manual_seed(0)
    unet = UnetGenerator(num_downs=5, ngf=8).eval()
    x = torch.zeros(1, 3, 64, 64)
    y = x.clone()
    y[:, :, :8, :8] = 1
    with torch.no_grad():
        change = (unet(y) - unet(x)).abs().mean(1)[0]
    assert change[:8, :8].mean() > 3 * change[40:, 40:].mean()


def test_patch_discriminator_scores_patches_of_the_pose_and_image_pair():
    discriminator = build_discriminator({"size": 128, "ndf": 8})
    scores = discriminator(torch.rand(2, PoseEncoding.CHANNELS, 128, 128), torch.rand(2, 3, 128, 128))
    assert scores.shape == (2, 1, 14, 14)  # one score per overlapping patch
    with pytest.raises(RuntimeError):  # it needs the pose: an image alone has the wrong number of channels
        discriminator(torch.rand(2, 0, 128, 128), torch.rand(2, 3, 128, 128))
    assert build_discriminator({"size": 64, "ndf": 8})(torch.rand(1, PoseEncoding.CHANNELS, 64, 64),
                                                        torch.rand(1, 3, 64, 64)).shape == (1, 1, 14, 14)


@pytest.mark.parametrize("mode", GANLoss.MODES)
def test_gan_loss_prefers_the_right_answer(mode):
    loss = GANLoss(mode)
    high, low = torch.full((2, 1, 4, 4), 1.0), torch.full((2, 1, 4, 4), 0.0)
    assert loss(high, True) < loss(low, True)
    assert loss(low, False) < loss(high, False)


def test_psnr_and_ssim_on_known_cases():
    torch.manual_seed(0)
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    assert Metrics.ssim(a, a).tolist() == pytest.approx([1, 1], abs=1e-5)
    assert Metrics.psnr(a, a + 0.02).tolist() == pytest.approx([20 * torch.log10(torch.tensor(2 / 0.02)).item()] * 2,
                                                                 rel=1e-4)
    assert (Metrics.ssim(a, torch.rand(2, 3, 32, 32) * 2 - 1) < 0.1).all()


def test_psnr_and_ssim_agree_with_scikit_image_on_real_frames(sample_target):
    """The standard definitions, so our numbers compare with papers': scikit-image on the grey image, Gaussian
    window (sigma 1.5), population covariance, data range 255; PSNR on all channels with a peak of 255."""
    import cv2
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    frames = [sample_target.readImage(i) for i in (0, 30, 60, 90)]
    pairs = [(frames[0], frames[1]), (frames[2], frames[3]),  # two different real frames
             (frames[0], cv2.GaussianBlur(frames[0], (0, 0), 2)),  # a blurred copy
             (frames[1], np.clip(frames[1] + rng.normal(0, 20, frames[1].shape), 0, 255).astype(np.uint8))]
    for a, b in pairs:
        grey_a, grey_b = (cv2.cvtColor(x, cv2.COLOR_BGR2GRAY) for x in (a, b))
        expected, expected_map = structural_similarity(grey_a, grey_b, gaussian_weights=True, sigma=1.5,
                                                       use_sample_covariance=False, data_range=255, full=True)
        tensors = [to_unit(torch.from_numpy(x).permute(2, 0, 1)[None]) for x in (a, b)]
        assert Metrics.ssim(*tensors).item() == pytest.approx(expected, abs=0.002)
        # Window by window too, on the same 8-bit grey images (scikit-image's mean leaves out the 5 pixels at each
        # edge that our map never has; float32 against its float64).
        greys = [to_unit(torch.from_numpy(x)[None, None].expand(1, 3, -1, -1)) for x in (grey_a, grey_b)]
        assert np.abs(Metrics.ssim_map(*greys)[0, 0].numpy() - expected_map[5:-5, 5:-5]).max() < 1e-3
        assert Metrics.psnr(*tensors).item() == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255),
                                                               abs=1e-3)


# The reconstruction loss with no extra term: L1 alone.
L1_ALONE = {"ssim_weight": 0.0, "trust_weight": 0.0, "trust_region": "frame"}
TRUST_CONFIG = {"kind": "gan", "size": 64, "ngf": 8, **L1_ALONE}


def sample_pairs(sample_target):
    """Eight training pairs of the sample at 64 px, with their appearance memory and person masks."""
    train, _ = split_indices(sample_target.skeCount(), 0.2)
    memory = build_memory(sample_target, train, TRUST_CONFIG)
    return Training.Samples(sample_target, train[:8], TRUST_CONFIG, memory, memory.crops, training=True).batch(range(8))


@pytest.fixture(scope="module")
def real_batch(sample_target):
    """Eight frames of the sample ten frames apart at 64 px, with their memory."""
    train, _ = split_indices(sample_target.skeCount(), 0.2)
    memory = build_memory(sample_target, train, TRUST_CONFIG)
    samples = Training.Samples(sample_target, np.arange(0, 80, 10), TRUST_CONFIG, memory, memory.crops, training=True)
    return samples.batch(range(8))


@pytest.mark.parametrize("kind", ["vanilla1", "vanilla2"])
def test_real_training_steps_lower_the_l1_loss(real_batch, kind):
    torch.manual_seed(0)
    net = build_generator({"kind": kind, "size": 64, "ngf": 8})
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3, betas=(0.5, 0.999))
    x, real = generator_input(kind, real_batch), to_unit(real_batch["image"])
    losses = []
    for _ in range(12):
        loss = F.l1_loss(net(x), real)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_real_gan_steps_train_the_discriminator_to_tell_real_from_generated(real_batch):
    torch.manual_seed(0)
    generator = build_generator({"kind": "gan", "size": 64, "ngf": 8})
    discriminator = build_discriminator({"size": 64, "ndf": 8})
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=5e-4, betas=(0.5, 0.999))
    loss = GANLoss("bce")
    with torch.no_grad():  # half the remembered person (a real picture, warped), half an untrained drawing
        fake = generator(generator_input("gan", real_batch))
    condition, real = to_unit(real_batch["skeleton"]), to_unit(real_batch["image"])
    losses = []
    for _ in range(40):
        loss_d = loss(discriminator(condition, real), True) + loss(discriminator(condition, fake), False)
        optimizer.zero_grad()
        loss_d.backward()
        optimizer.step()
        losses.append(loss_d.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_the_ssim_term_penalises_a_blur_that_l1_finds_as_good_as_a_brightness_shift(sample_target):
    """On real crops: a blurred copy and a uniformly brighter copy chosen to be equally far in L1. L1 alone cannot
    tell them apart; with the SSIM term the blur, which loses the structure SSIM measures, costs more."""
    import cv2

    def crops(blur):
        images = [sample_target.readImage(i) for i in (0, 40)]
        images = [cv2.GaussianBlur(image, (0, 0), 2) if blur else image for image in images]
        return 0.8 * to_unit(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))  # room to brighten

    real, blurred = crops(blur=False), crops(blur=True)
    brighter = real + (blurred - real).abs().mean()  # the same mean absolute error, the structure intact
    assert brighter.max() <= 1  # no clipping, or the two L1 errors would differ
    mask = torch.zeros(2, 1, *real.shape[2:], dtype=torch.uint8)

    def loss(fake, ssim_weight):
        return Training.reconstruction_loss(fake, real, mask, {**L1_ALONE, "ssim_weight": ssim_weight})[0].item()

    assert loss(blurred, 0.0) == pytest.approx(loss(brighter, 0.0), rel=1e-4)
    assert loss(blurred, 1.0) > loss(brighter, 1.0) + 0.02
    assert loss(real, 1.0) == pytest.approx(0, abs=1e-5)


def trust_after_steps(data, loss_config, steps=16):
    """The composition's mask (N, 1, H, W) after a few Adam steps of the reconstruction loss on real pairs."""
    torch.manual_seed(0)
    net = build_generator(TRUST_CONFIG)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4)
    real = to_unit(data["image"])
    for _ in range(steps):
        fake, trust = Training.training_output(net, "gan", data)
        loss, terms = Training.reconstruction_loss(fake, real, data["mask"], loss_config, trust)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert ("distrust" in terms) == (loss_config["trust_weight"] > 0)
    return Training.training_output(net, "gan", data)[1].detach()


def test_the_trust_term_keeps_more_of_the_memory_after_real_steps(sample_target):
    """The trust weight prices the generator's distrust of the appearance memory: with it, a few Adam steps on real
    crops of the sample leave the composition's mask trusting the memory more than the same steps without it."""
    data = sample_pairs(sample_target)
    with_term = trust_after_steps(data, {**L1_ALONE, "trust_weight": 5.0}).mean().item()
    without = trust_after_steps(data, L1_ALONE).mean().item()
    assert with_term > without + 0.05


def test_the_person_trust_region_prices_the_person_alone(sample_target):
    """trust_region "person": distrust of the background costs nothing, of the person all of it (the sample's real
    segmentation masks); "frame" prices the whole frame. After real steps, the person-only price leaves the
    background less trusted than the whole-frame price does, the person as trusted."""
    data = sample_pairs(sample_target)
    person = data["mask"].float() / 255
    fake = real = to_unit(data["image"])

    def distrust(trust, region):
        config = {**L1_ALONE, "trust_weight": 1.0, "trust_region": region}
        return Training.reconstruction_loss(fake, real, data["mask"], config, trust)[1]["distrust"]

    assert 0.05 < person.mean() < 0.5  # the sample's person: part of the crop, not all of it
    assert distrust(person, "person") == pytest.approx(
        (((1 - person) * person).sum() / person.sum()).item(), abs=1e-6)  # only the mask's soft rim is left
    assert distrust(1 - person, "person") > 0.8  # all but the soft rim
    assert distrust(person, "frame") == pytest.approx(1 - person.mean().item(), abs=1e-6)

    inside = person > 0.5
    frame = trust_after_steps(data, {**L1_ALONE, "trust_weight": 5.0, "trust_region": "frame"})
    alone = trust_after_steps(data, {**L1_ALONE, "trust_weight": 5.0, "trust_region": "person"})
    assert alone[~inside].mean() < frame[~inside].mean() - 0.05
    assert alone[inside].mean() > frame[inside].mean() - 0.05


@pytest.mark.parametrize("bias", [True, False])
def test_the_step_up_is_nearest_upsampling_then_a_three_by_three_convolution(bias):
    """UpConv2d computes on the small image what a 3 x 3 convolution computes on the image enlarged by nearest
    upsampling: the same outputs and the same gradients, to float rounding, at the borders too."""
    from Networks import UpConv2d

    torch.manual_seed(0)
    step_up = UpConv2d(6, 4, bias=bias)
    x = torch.randn(2, 6, 5, 7, requires_grad=True)
    expected = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), step_up.weight, step_up.bias, padding=1)
    got = step_up(x)
    assert got.shape == (2, 4, 10, 14) and torch.allclose(got, expected, atol=1e-5)
    for a, b in zip(torch.autograd.grad(got.square().sum(), (x, step_up.weight)),
                    torch.autograd.grad(expected.square().sum(), (x, step_up.weight))):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-4)
