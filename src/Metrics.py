"""Metrics: image similarity with the standard definitions, so that our numbers compare with published ones.

Both take batches of BGR images (N, 3, H, W) in [-1, 1], the generators' output range, and return one value per
image. tests/test_networks.py checks them against scikit-image on real frames.
"""
import torch
import torch.nn.functional as F


def psnr(a, b):
    """Peak signal-to-noise ratio in dB between image batches in [-1, 1] (peak-to-peak 2), per image: the same
    number as on 0..255 images with a peak of 255 (scikit-image's peak_signal_noise_ratio, data_range=255)."""
    mse = ((a.float() - b.float()) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(4 / mse.clamp_min(1e-10))


LUMA = (0.114, 0.587, 0.299)  # ITU-R BT.601 weights of B, G, R: OpenCV's and scikit-image's grey


def ssim(a, b, window=11, sigma=1.5):
    """Structural similarity (Wang et al. 2004) per image, on the grey (luma) of BGR batches in [-1, 1]: the mean
    of ssim_map."""
    return ssim_map(a, b, window, sigma).flatten(1).mean(1)


def ssim_map(a, b, window=11, sigma=1.5):
    """The local structural similarity of BGR batches in [-1, 1]: (N, 1, H - window + 1, W - window + 1), one value
    per window position, on the grey (luma) image.

    The standard definition: intensities on 0..1 (SSIM's luminance term assumes non-negative intensities; on
    [-1, 1] it reads 0.08-0.10 too low), K1 = 0.01, K2 = 0.03 for a dynamic range of 1, an 11-tap Gaussian window
    of sigma 1.5, population (not sample) covariances, on the "valid" region, whose mean is scikit-image's
    structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False) on the grey image.
    """
    luma = torch.tensor(LUMA, device=a.device).view(1, 3, 1, 1)
    a = ((a.float() + 1) / 2 * luma).sum(1, keepdim=True)
    b = ((b.float() + 1) / 2 * luma).sum(1, keepdim=True)
    coords = torch.arange(window, dtype=torch.float32, device=a.device) - window // 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    # The Gaussian window is separable: a column pass then a row pass, all five local means in one grouped
    # convolution each, costs 22 multiplications a pixel instead of 121 (8 times faster forward and backward, about
    # 4% of a training step with the SSIM term). "Valid" region only, as scikit-image does.
    stack = torch.cat([a, b, a * a, b * b, a * b], 1)
    stack = F.conv2d(stack, g.view(1, 1, window, 1).expand(5, 1, window, 1), groups=5)
    mu_a, mu_b, aa, bb, ab = F.conv2d(stack, g.view(1, 1, 1, window).expand(5, 1, 1, window), groups=5).split(1, 1)
    var_a, var_b, cov = aa - mu_a ** 2, bb - mu_b ** 2, ab - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
