"""How sharp images are: the measures behind "VAE images are often blurred".

- `laplacian_variance`: the variance of the image's Laplacian (the 3x3 kernel
  [[0, 1, 0], [1, -4, 1], [0, 1, 0]]), the focus measure of Pech-Pacheco et al. 2000 ("Diatom
  autofocusing in brightfield microscopy: a comparative study", ICPR) and the usual blur test:
  blur removes the edges the Laplacian responds to, so its variance falls.
- `high_frequency_fraction`: the share of the image's spectral power (the 2-D DFT of the image
  less its mean) above a radius of half the Nyquist frequency. Blur is a low-pass filter, so the
  share falls; it is the radial power-spectrum view GAN images are examined in (Durall et al.
  2020, "Watch your up-convolution"), reduced to one number. The DFT treats the image as
  periodic, so an image whose opposite borders differ gains some high frequencies there; the
  black borders of Fashion-MNIST make that moot.

Both on grey [0, 1] images (RGB through the BT.601 luma weights), per image; `sharpness` gives
their means over a set. A constant image scores 0 on both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gans.data.base import to_unit
from gans.errors import GansError

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
LUMA = torch.tensor([0.299, 0.587, 0.114])  # ITU-R BT.601


def grey(images: Tensor) -> Tensor:
    """uint8 or [-1, 1] images (N, 1 or 3, H, W) -> grey float (N, H, W) in [0, 1]."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise GansError(f"sharpness takes images (N, 1 or 3, H, W), got shape {tuple(images.shape)}")
    unit = to_unit(images)
    return unit[:, 0] if unit.shape[1] == 1 else torch.einsum("nchw,c->nhw", unit, LUMA)


def laplacian_variance(images: Tensor) -> Tensor:
    """Per image (N,): the variance (divisor: the count) of the Laplacian over the valid
    (H-2) x (W-2) positions, so no padding invents edges at the border."""
    response = F.conv2d(grey(images).unsqueeze(1), LAPLACIAN.view(1, 1, 3, 3))
    return response.flatten(1).var(dim=1, correction=0)


def high_frequency_fraction(images: Tensor, cutoff: float = 0.5) -> Tensor:
    """Per image (N,): power at spatial frequencies above `cutoff` x Nyquist (radially) over the
    total power, the mean removed; 0 for a constant image (no power at all)."""
    x = grey(images).double()
    x = x - x.mean(dim=(1, 2), keepdim=True)
    power = torch.fft.fft2(x).abs().square()
    fy = torch.fft.fftfreq(x.shape[1], dtype=torch.float64).view(-1, 1)  # cycles per pixel; Nyquist 0.5
    fx = torch.fft.fftfreq(x.shape[2], dtype=torch.float64).view(1, -1)
    high = (fy.square() + fx.square()).sqrt() > cutoff * 0.5
    total = power.sum(dim=(1, 2))
    fraction = (power * high).sum(dim=(1, 2)) / total.clamp(min=torch.finfo(torch.float64).tiny)
    return torch.where(total > 1e-20, fraction, torch.zeros_like(fraction)).float()


def sharpness(images: Tensor, chunk: int = 1000) -> dict[str, float]:
    """Means over a set of images: `laplacian_variance` and `high_frequency` (fraction)."""
    lap, hf = [], []
    for start in range(0, len(images), chunk):
        lap.append(laplacian_variance(images[start : start + chunk]))
        hf.append(high_frequency_fraction(images[start : start + chunk]))
    return {"laplacian_variance": float(torch.cat(lap).mean()), "high_frequency": float(torch.cat(hf).mean())}
