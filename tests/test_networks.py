"""The networks on synthetic tensors, and real training steps on real sample crops."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import Metrics
import PoseEncoding
import Training
from GenGAN import GANLoss, NLayerDiscriminator, build_discriminator, gradient_penalty
from GenVanillaNN import UnetGenerator, VectorToImage, build_generator, training_output


@pytest.mark.parametrize("size", [64, 128, 256])
def test_generators_make_images_of_their_size_in_tanh_range(size):
    torch.manual_seed(0)
    unet = build_generator({"kind": "gan", "size": size, "ngf": 8}).eval()
    vector_net = build_generator({"kind": "vanilla1", "size": size, "ngf": 8}).eval()
    assert isinstance(unet, UnetGenerator) and isinstance(vector_net, VectorToImage)
    with torch.no_grad():
        from_image = unet(torch.rand(2, 3, size, size) * 2 - 1)
        from_vector = vector_net(torch.rand(2, 26) * 2 - 1)
    for out in (from_image, from_vector):
        assert out.shape == (2, 3, size, size)
        assert out.min() >= -1 and out.max() <= 1


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


def test_dropout_acts_while_training_only_and_leaves_the_checkpoint_layout_alone():
    """--dropout (pix2pix's decoder dropout): two training-mode passes over one batch differ, evaluation-mode passes
    do not; without it (an old checkpoint's config has no "dropout") training-mode passes agree; and the weights of
    one network load into the other, so the flag never makes a checkpoint unreadable."""
    torch.manual_seed(0)
    config = {"kind": "gan", "size": 128, "ngf": 4}  # 128 px and up: 64 px has no level where pix2pix drops
    with_dropout, without = build_generator({**config, "dropout": 0.5}), build_generator(config)
    x = torch.rand(4, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        assert not torch.equal(with_dropout.train()(x), with_dropout(x))
        assert torch.equal(without.train()(x), without(x))
        without.load_state_dict(with_dropout.state_dict())  # weights and BatchNorm statistics
        assert torch.equal(with_dropout.eval()(x), without.eval()(x))


def test_patch_discriminator_scores_patches_of_the_pose_and_image_pair():
    discriminator = NLayerDiscriminator(input_nc=6, ndf=8, n_layers=3)
    scores, features = discriminator(torch.rand(2, 3, 128, 128), torch.rand(2, 3, 128, 128), features=True)
    assert scores.shape == (2, 1, 14, 14)  # one score per overlapping patch
    assert len(features) == 4
    with pytest.raises(RuntimeError):  # it needs the pose: an image alone has the wrong number of channels
        discriminator.layers[0](torch.rand(2, 3, 128, 128))


def test_multiscale_discriminator_judges_the_pair_at_each_scale_and_its_loss_sums_them():
    torch.manual_seed(0)
    config = {"kind": "gan", "size": 128, "ndf": 8, "pose_encoding": "drawing"}
    assert isinstance(build_discriminator(config), NLayerDiscriminator)  # an old checkpoint's: no "scales"
    discriminator = build_discriminator({**config, "scales": 2})
    condition, image = torch.rand(2, 3, 128, 128), torch.rand(2, 3, 128, 128)
    scores, features = discriminator(condition, image, features=True)
    assert [s.shape for s in scores] == [(2, 1, 14, 14), (2, 1, 6, 6)]  # the second sees the pair at 64 px
    assert len(features) == 8
    loss = GANLoss("lsgan")
    assert loss(scores, True).item() == pytest.approx(loss(scores[0], True).item() + loss(scores[1], True).item())
    assert gradient_penalty(discriminator, condition, image, torch.rand(2, 3, 128, 128)).item() > 0


@pytest.mark.parametrize("mode", ["bce", "lsgan", "wgangp"])
def test_gan_loss_prefers_the_right_answer(mode):
    loss = GANLoss(mode)
    high, low = torch.full((2, 1, 4, 4), 1.0), torch.full((2, 1, 4, 4), 0.0)
    assert loss(high, True) < loss(low, True)
    assert loss(low, False) < loss(high, False)


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    class Linear(torch.nn.Module):  # score = sum of pixels * w, with |w| = 1: gradient norm exactly 1
        def forward(self, condition, image):
            w = torch.ones_like(image) / image[0].numel() ** 0.5
            return (image * w).flatten(1).sum(1)
    real, fake = torch.rand(3, 3, 8, 8), torch.rand(3, 3, 8, 8)
    assert gradient_penalty(Linear(), None, real, fake).item() == pytest.approx(0, abs=1e-6)


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
        tensors = [Training.to_unit(torch.from_numpy(x).permute(2, 0, 1)[None]) for x in (a, b)]
        assert Metrics.ssim(*tensors).item() == pytest.approx(expected, abs=0.002)
        # Window by window too, on the same 8-bit grey images (scikit-image's mean leaves out the 5 pixels at each
        # edge that our map never has; float32 against its float64).
        greys = [Training.to_unit(torch.from_numpy(x)[None, None].expand(1, 3, -1, -1)) for x in (grey_a, grey_b)]
        assert np.abs(Metrics.ssim_map(*greys)[0, 0].numpy() - expected_map[5:-5, 5:-5]).max() < 1e-3
        assert Metrics.psnr(*tensors).item() == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255),
                                                               abs=1e-3)


@pytest.fixture(scope="module")
def real_batch(sample_target):
    data = Training.load_pairs(sample_target, np.arange(0, 80, 10), {"kind": "gan", "size": 64,
                                                                      "pose_encoding": "drawing"})
    return {"skeleton": Training.to_unit(data["skeleton"]), "vector": data["vector"],
            "image": Training.to_unit(data["image"])}


@pytest.mark.parametrize("kind", ["vanilla1", "vanilla2"])
def test_real_training_steps_lower_the_l1_loss(real_batch, kind):
    torch.manual_seed(0)
    net = build_generator({"kind": kind, "size": 64, "ngf": 8})
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3, betas=(0.5, 0.999))
    x = real_batch["vector"] if kind == "vanilla1" else real_batch["skeleton"]
    losses = []
    for _ in range(12):
        loss = F.l1_loss(net(x), real_batch["image"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_real_gan_steps_train_the_discriminator_to_tell_real_from_generated(real_batch):
    torch.manual_seed(0)
    generator = build_generator({"kind": "gan", "size": 64, "ngf": 8})
    discriminator = NLayerDiscriminator(ndf=8, n_layers=2)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    loss = GANLoss("bce")
    with torch.no_grad():
        fake = generator(real_batch["skeleton"])
    condition, real = real_batch["skeleton"], real_batch["image"]
    losses = []
    for _ in range(10):
        loss_d = loss(discriminator(condition, real), True) + loss(discriminator(condition, fake), False)
        optimizer.zero_grad()
        loss_d.backward()
        optimizer.step()
        losses.append(loss_d.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("term", ["ssim_weight", "gradient_weight"])
def test_the_ssim_and_gradient_terms_penalise_a_blur_that_l1_finds_as_good_as_a_brightness_shift(sample_target,
                                                                                                   term):
    """On real crops: a blurred copy and a uniformly brighter copy chosen to be equally far in L1. L1 alone (what
    an old checkpoint's config, with neither weight, trains) cannot tell them apart; with --ssim-weight or
    --gradient-weight the blur, which loses the structure SSIM measures and flattens the edges, costs more."""
    import cv2

    def crops(blur):
        images = [sample_target.readImage(i) for i in (0, 40)]
        images = [cv2.GaussianBlur(image, (0, 0), 2) if blur else image for image in images]
        return 0.8 * Training.to_unit(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))  # room to brighten

    real, blurred = crops(blur=False), crops(blur=True)
    brighter = real + (blurred - real).abs().mean()  # the same mean absolute error, the structure intact
    assert brighter.max() <= 1  # no clipping, or the two L1 errors would differ
    mask = torch.zeros(2, 1, *real.shape[2:], dtype=torch.uint8)

    def loss(fake, config):
        return Training.reconstruction_loss(fake, real, mask, config)[0].item()

    assert loss(blurred, {}) == pytest.approx(loss(brighter, {}), rel=1e-4)
    assert loss(blurred, {}) == loss(blurred, {term: 0.0})
    assert loss(blurred, {term: 1.0}) > loss(brighter, {term: 1.0}) + 0.02
    assert loss(real, {term: 1.0}) == pytest.approx(0, abs=1e-5)


def test_the_person_weight_prices_the_persons_structure_in_the_ssim_term(sample_target):
    """On real crops and their real person masks: the same blur laid on the person alone, or on the background
    alone. At --person-weight 1 the SSIM term prices each by its area; at 5 a blurred person costs more than that and
    a blurred background less."""
    import cv2

    indices = (0, 40)
    images = np.stack([sample_target.readImage(i) for i in indices])
    mask = torch.from_numpy(np.stack([sample_target.readMask(i) for i in indices]))[:, None]
    real = Training.to_unit(torch.from_numpy(images).permute(0, 3, 1, 2))
    blurred = Training.to_unit(torch.from_numpy(np.stack([cv2.GaussianBlur(image, (0, 0), 2) for image in images]))
                               .permute(0, 3, 1, 2))
    person = mask.float() / 255
    on_person, on_background = real + (blurred - real) * person, real + (blurred - real) * (1 - person)

    def ssim_term(fake, person_weight):
        config = {"ssim_weight": 1.0, "person_weight": person_weight}
        return Training.reconstruction_loss(fake, real, mask, config)[1]["ssim"]

    assert ssim_term(on_person, 5.0) < ssim_term(on_person, 1.0) - 0.01
    assert ssim_term(on_background, 5.0) > ssim_term(on_background, 1.0) + 0.01
    assert ssim_term(real, 5.0) == pytest.approx(1, abs=1e-5)


TRUST_CONFIG = {"kind": "gan", "size": 64, "ngf": 8, "memory": "plate", "pose_encoding": "limbs"}


def sample_pairs(sample_target):
    """Eight training pairs of the sample at 64 px, with their memory and person masks."""
    train, _ = Training.split_indices(sample_target.skeCount(), 0.2)
    memory = Training.build_memory(sample_target, train, TRUST_CONFIG)
    return Training.load_pairs(sample_target, train[:8], TRUST_CONFIG, memory, training=True)


def trust_after_steps(data, loss_config, steps=16):
    """The composition's mask (N, 1, H, W) after a few Adam steps of the reconstruction loss on real pairs."""
    torch.manual_seed(0)
    net = build_generator(TRUST_CONFIG)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4)
    real = Training.to_unit(data["image"])
    for _ in range(steps):
        fake, trust = training_output(net, "gan", data)
        loss, terms = Training.reconstruction_loss(fake, real, data["mask"], loss_config, trust)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert ("distrust" in terms) == (loss_config.get("trust_weight", 0) > 0)
    return training_output(net, "gan", data)[1].detach()


def test_the_trust_term_keeps_more_of_the_memory_after_real_steps(sample_target):
    """--trust-weight prices the generator's distrust of the appearance memory: with it, a few Adam steps on real
    crops of the sample leave the composition's mask trusting the memory more than the same steps without it; an
    old checkpoint's config (no trust_weight) adds nothing to the loss."""
    data = sample_pairs(sample_target)
    with_term = trust_after_steps(data, {"trust_weight": 5.0}).mean().item()
    without = trust_after_steps(data, {"trust_weight": 0.0}).mean().item()
    assert with_term > without + 0.05
    real = Training.to_unit(data["image"])
    fake, trust = training_output(build_generator(TRUST_CONFIG), "gan", data)
    assert (Training.reconstruction_loss(fake, real, data["mask"], {}, trust)[0] ==
            Training.reconstruction_loss(fake, real, data["mask"], {"trust_weight": 0.0}, trust)[0])


def test_the_person_trust_region_prices_the_person_alone(sample_target):
    """--trust-region person: distrust of the background costs nothing, of the person all of it (the sample's real
    segmentation masks); a config without the key prices the whole frame, as before. After real steps, the
    person-only price leaves the background less trusted than the whole-frame price does, the person as trusted."""
    data = sample_pairs(sample_target)
    person = data["mask"].float() / 255
    fake = real = Training.to_unit(data["image"])
    priced = {"trust_weight": 1.0}

    def distrust(trust, config):
        return Training.reconstruction_loss(fake, real, data["mask"], config, trust)[1]["distrust"]

    assert 0.05 < person.mean() < 0.5  # the sample's person: part of the crop, not all of it
    assert distrust(person, {**priced, "trust_region": "person"}) == pytest.approx(
        (((1 - person) * person).sum() / person.sum()).item(), abs=1e-6)  # only the mask's soft rim is left
    assert distrust(1 - person, {**priced, "trust_region": "person"}) > 0.8  # all but the soft rim
    assert distrust(person, priced) == pytest.approx(1 - person.mean().item(), abs=1e-6)  # the old key: the frame

    inside = person > 0.5
    frame = trust_after_steps(data, {"trust_weight": 5.0, "trust_region": "frame"})
    alone = trust_after_steps(data, {"trust_weight": 5.0, "trust_region": "person"})
    assert alone[~inside].mean() < frame[~inside].mean() - 0.05
    assert alone[inside].mean() > frame[inside].mean() - 0.05


def test_the_detail_weight_prices_the_face_and_hands(sample_target):
    """On real crops, with their real poses: the region near the face's and hands' limbs covers the nose and the
    wrists; the same blur laid on that region alone costs more in L1 at --detail-weight 5 than at 1, and laid on
    the rest, less. Without the poses (an old caller) the weight changes nothing."""
    import cv2

    indices = (0, 40)
    skeletons = [sample_target.ske[i] for i in indices]
    images = np.stack([sample_target.readImage(i) for i in indices])
    size = images.shape[1]
    pose = PoseEncoding.render_many(skeletons, size, "limbs")
    region = PoseEncoding.detail_region(pose, "limbs")
    for k, skeleton in enumerate(skeletons):
        for landmark in (0, 15, 16):  # the nose and the wrists
            x, y = skeleton.landmarks[landmark, :2] * size
            if 0 <= x < size and 0 <= y < size:
                assert region[k, 0, int(y), int(x)] == 1, (k, landmark)
    assert 0.005 < region.mean() < 0.2  # a small part of the picture
    real = Training.to_unit(torch.from_numpy(images).permute(0, 3, 1, 2))
    blurred = Training.to_unit(torch.from_numpy(np.stack([cv2.GaussianBlur(image, (0, 0), 2) for image in images]))
                               .permute(0, 3, 1, 2))
    on_detail, elsewhere = real + (blurred - real) * region, real + (blurred - real) * (1 - region)
    mask = torch.zeros(2, 1, size, size, dtype=torch.uint8)

    def l1(fake, detail_weight, with_pose=True):
        config = {"pose_encoding": "limbs", "detail_weight": detail_weight}
        return Training.reconstruction_loss(fake, real, mask, config, pose=pose if with_pose else None)[1]["l1"]

    assert l1(on_detail, 5.0) > 1.5 * l1(on_detail, 1.0)
    assert l1(elsewhere, 5.0) < l1(elsewhere, 1.0)
    assert l1(on_detail, 5.0, with_pose=False) == l1(on_detail, 1.0)
