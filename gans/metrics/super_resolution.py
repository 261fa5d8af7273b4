"""PSNR and SSIM as super-resolution papers report them (Ledig et al. 2017, sec. 4.1: "calculated on
the y-channel of center-cropped, removal of a 4-pixel wide strip from each border images").

The protocol, each step a choice the numbers depend on:
  - outputs rounded to 8 bits first (the images a reader would save and look at);
  - the Y channel of YCbCr per ITU-R BT.601 in MATLAB's `rgb2ycbcr` scaling,
    Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 on 0..255 RGB (Y in [16, 235], kept as float),
    or all three RGB channels (`channel="rgb"`, the convention of some later tables);
  - `border` pixels cropped from each side (the scale, 4, by convention);
  - PSNR with a peak of 255 per image, then the mean over images;
  - SSIM (Wang et al. 2004) with an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03,
    population statistics, over the window positions that fit inside the image, per image, then
    the mean over images (scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255)`, the setting of Wang et al.'s MATLAB code).
Computed in float64: the numbers match scikit-image's to 1e-6 dB.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

CHANNELS = ("y", "rgb")
# MATLAB rgb2ycbcr: Y = 16 + [65.481, 128.553, 24.966] . [R, G, B] with RGB in [0, 1].
BT601_Y = (65.481, 128.553, 24.966)


def rgb_to_y(images: Tensor) -> Tensor:
    """uint8 or float 0..255 RGB (N, 3, H, W) -> float64 Y (N, 1, H, W) in [16, 235]."""
    weights = torch.tensor(BT601_Y, dtype=torch.float64, device=images.device).view(1, 3, 1, 1) / 255.0
    return 16.0 + (images.to(torch.float64) * weights).sum(1, keepdim=True)


def prepare(images: Tensor, channel: str, border: int) -> Tensor:
    """uint8 RGB (N, 3, H, W) -> float64 (N, C, H - 2 border, W - 2 border) on the 0..255 scale."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    if images.dtype != torch.uint8:
        raise TypeError(f"PSNR/SSIM take uint8 images (outputs rounded to 8 bits first), got {images.dtype}")
    x = rgb_to_y(images) if channel == "y" else images.to(torch.float64)
    if border:
        x = x[..., border:-border, border:-border]
    return x


def psnr(output: Tensor, target: Tensor, channel: str = "y", border: int = 4) -> Tensor:
    """Per-image PSNR in dB (N,) of uint8 RGB outputs against uint8 RGB targets, peak 255."""
    x, y = prepare(output, channel, border), prepare(target, channel, border)
    mse = (x - y).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> Tensor:
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


def ssim(output: Tensor, target: Tensor, channel: str = "y", border: int = 4) -> Tensor:
    """Per-image SSIM (N,) of uint8 RGB outputs against targets (Wang et al. 2004; see the module)."""
    x, y = prepare(output, channel, border), prepare(target, channel, border)
    c = x.shape[1]
    window = gaussian_window(device=x.device).expand(c, 1, -1, -1)

    def blur(t: Tensor) -> Tensor:  # 'valid' positions only: the window fits inside the image
        return F.conv2d(t, window, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3))


class ImageQuality(Metric):
    """Mean PSNR and SSIM over images, summed across processes: `update(outputs, targets)` with
    uint8 RGB batches; `compute()` -> {"psnr": dB, "ssim": ...}."""

    full_state_update = False

    def __init__(self, channel: str = "y", border: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
        self.channel, self.border = channel, border
        for name in ("psnr_sum", "ssim_sum", "count"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, output: Tensor, target: Tensor) -> None:
        self.psnr_sum += psnr(output, target, self.channel, self.border).sum()
        self.ssim_sum += ssim(output, target, self.channel, self.border).sum()
        self.count += len(output)

    def compute(self) -> dict[str, Tensor]:
        return {"psnr": (self.psnr_sum / self.count).float(), "ssim": (self.ssim_sum / self.count).float()}
