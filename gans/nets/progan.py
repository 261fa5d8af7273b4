"""ProGAN networks: Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for Improved
Quality, Stability, and Variation".

Both networks are built for the final resolution and run at any stage of the growth: `level` 0
is 4x4, level k is 4 * 2^k, and `alpha` in [0, 1] blends the newest block in (sec. 2, Figure 2):
the generator's output at level k is

    alpha * to_rgb_k(block_k(h)) + (1 - alpha) * upsample(to_rgb_{k-1}(h)),

and the discriminator's input path mirrors it with average pooling. Blocks above `level` hold
parameters that receive no gradient yet (DDP is told: `find_unused_parameters`).

With `num_classes` > 0 both networks take class labels as the authors' code does (Karras et al.'s
`networks.py`/`loss.py`; Odena, Olah & Shlens 2017's auxiliary classifier): G reads the one-hot
label concatenated to z (normalised together), D outputs one logit per class beside its score.

The paper's three ingredients are layers here (sec. 4): the equalized learning rate
(`EqualizedConv2d`, `EqualizedLinear`: weights drawn from N(0, 1) and scaled at run time by He's
constant sqrt(2 / fan_in), so Adam's step is the same relative size for every layer),
pixelwise feature normalisation in G (`PixelNorm`) and the minibatch standard deviation in D
(`MinibatchStdDev`, sec. 3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gans.errors import GansError


class EqualizedConv2d(nn.Module):
    """A convolution whose weight is w * sqrt(gain / fan_in) with w ~ N(0, 1) (Karras et al. 2018,
    sec. 4.1); bias initialised to zero. `padding` is "same" for odd kernels by default."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int | None = None,
                 gain: float = 2.0) -> None:  # fmt: skip
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = math.sqrt(gain / (in_channels * kernel_size * kernel_size))
        self.padding = kernel_size // 2 if padding is None else padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """A dense layer with the equalized learning rate (see `EqualizedConv2d`)."""

    def __init__(self, in_features: int, out_features: int, gain: float = 2.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = math.sqrt(gain / in_features)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class PixelNorm(nn.Module):
    """Each pixel's feature vector divided by its root mean square over channels (sec. 4.2):
    b = a / sqrt(mean_c(a^2) + eps), eps = 1e-8."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


class MinibatchStdDev(nn.Module):
    """One more feature map: the standard deviation of each feature over a group of `group_size`
    images, averaged over features and pixels, replicated over the group's images and pixels
    (sec. 3; groups of 4 in the authors' code). The batch must divide into groups (a smaller
    batch forms one group)."""

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size, self.eps = group_size, eps

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        group = min(self.group_size, n)
        if n % group:
            raise ValueError(f"a batch of {n} does not divide into minibatch-stddev groups of {group}")
        grouped = x.float().view(group, n // group, c, h, w)  # image i belongs to group i % (n // group)
        std = (grouped.var(dim=0, unbiased=False) + self.eps).sqrt()  # n // group, c, h, w
        statistic = std.mean(dim=(1, 2, 3)).to(x.dtype)  # one number per group
        feature = statistic.repeat(group).view(n, 1, 1, 1).expand(n, 1, h, w)
        return torch.cat([x, feature], dim=1)


def fade(alpha: float | Tensor, new: Tensor, old: Tensor) -> Tensor:
    """The fade-in blend of Karras et al. 2018, Figure 2: alpha * new + (1 - alpha) * old."""
    return torch.lerp(old, new, alpha) if isinstance(alpha, Tensor) else alpha * new + (1.0 - alpha) * old


def next_power_of_two(side: int) -> int:
    """The smallest power of two >= side (28 -> 32, 32 -> 32, 1 -> 2)."""
    return 1 << max(side - 1, 1).bit_length()


def levels_of(image_size: int) -> int:
    """The growth stages above 4x4 for a power-of-two image side (4 -> 0, 32 -> 3)."""
    if image_size < 4 or image_size & (image_size - 1):
        fix = max(4, next_power_of_two(image_size))
        raise GansError(f"data.image_size={image_size} is not a power of two of at least 4: ProGAN grows by doubling "
                        f"from 4x4; use e.g. data.image_size={fix}")  # fmt: skip
    return int(math.log2(image_size)) - 2


def channels_at(level: int, base: int, maximum: int) -> int:
    """Feature maps at a level: `maximum` at the low resolutions, halved per level above
    log2(base / maximum) (the paper: 512 up to 32x32, then 256, 128, 64, 32, 16)."""
    return min(maximum, base // 2**level)


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, channels, 4 * 2^level, same) at `level` and `alpha`.

    Args:
        latent_dim, image_size, channels: z's size; the final side (a power of two) and channels.
        base_channels, max_channels: feature maps per level, `channels_at` (paper: 8192, 512).
        num_classes: labels the generator is conditioned on (0: unconditional).
    """

    def __init__(self, latent_dim: int = 512, image_size: int = 32, channels: int = 3,
                 base_channels: int = 8192, max_channels: int = 512, num_classes: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        self.num_classes = num_classes
        self.max_level = levels_of(image_size)
        widths = [channels_at(k, base_channels, max_channels) for k in range(self.max_level + 1)]
        self.norm = PixelNorm()
        act = nn.LeakyReLU(0.2)
        # 4x4: the latent, normalised, to a 4x4 map by a dense layer (the paper's 4x4 "conv" from 1x1),
        # then a 3x3 convolution.
        self.project = EqualizedLinear(latent_dim + num_classes, widths[0] * 16, gain=2.0 / 16)
        self.first = nn.Sequential(act, PixelNorm(), EqualizedConv2d(widths[0], widths[0], 3), act, PixelNorm())
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                EqualizedConv2d(w_in, w_out, 3), act, PixelNorm(),
                EqualizedConv2d(w_out, w_out, 3), act, PixelNorm(),
            )
            for w_in, w_out in zip(widths[:-1], widths[1:])
        )  # fmt: skip
        self.to_rgb = nn.ModuleList(EqualizedConv2d(w, channels, 1, gain=1.0) for w in widths)
        self.widths = widths

    def forward(self, z: Tensor, level: int | None = None, alpha: float | Tensor = 1.0,
                labels: Tensor | None = None) -> Tensor:  # fmt: skip
        level = self.max_level if level is None else level
        if (labels is None) != (self.num_classes == 0):
            raise ValueError(f"a generator of {self.num_classes} classes got labels={labels is not None}")
        if labels is not None:
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)
        h = self.project(self.norm(z)).view(len(z), self.widths[0], 4, 4)
        h = self.first(h)
        for k in range(1, level):
            h = self.blocks[k - 1](h)
        if level == 0:
            return self.to_rgb[0](h)
        new = self.to_rgb[level](self.blocks[level - 1](h))
        if isinstance(alpha, (int, float)) and alpha >= 1.0:
            return new
        old = F.interpolate(self.to_rgb[level - 1](h), scale_factor=2, mode="nearest")
        return fade(alpha, new, old)


class Discriminator(nn.Module):
    """images (N, channels, 4 * 2^level, same) -> scores (N,) at `level` and `alpha`.

    Args: as `Generator`'s; `group_size` of the minibatch standard deviation (4); `num_classes`:
        class logits beside the score (0: none).
    """

    def __init__(self, image_size: int = 32, channels: int = 3, base_channels: int = 8192,
                 max_channels: int = 512, group_size: int = 4, num_classes: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.image_size, self.max_level, self.num_classes = image_size, levels_of(image_size), num_classes
        widths = [channels_at(k, base_channels, max_channels) for k in range(self.max_level + 1)]
        act = nn.LeakyReLU(0.2)
        self.from_rgb = nn.ModuleList(nn.Sequential(EqualizedConv2d(channels, w, 1), act) for w in widths)
        # blocks[k - 1] takes level k's maps down to level k - 1's.
        self.blocks = nn.ModuleList(
            nn.Sequential(EqualizedConv2d(w_hi, w_hi, 3), act, EqualizedConv2d(w_hi, w_lo, 3), act, nn.AvgPool2d(2))
            for w_lo, w_hi in zip(widths[:-1], widths[1:])
        )  # fmt: skip
        self.last = nn.Sequential(
            MinibatchStdDev(group_size),
            EqualizedConv2d(widths[0] + 1, widths[0], 3), act,
            EqualizedConv2d(widths[0], widths[0], 4, padding=0), act,  # 4x4 -> 1x1
            nn.Flatten(),
            EqualizedLinear(widths[0], 1 + num_classes, gain=1.0),
        )  # fmt: skip

    def forward(self, images: Tensor, level: int | None = None, alpha: float | Tensor = 1.0,
                with_classes: bool = False) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
        """The scores (N,), or (scores, class logits (N, num_classes)) `with_classes`."""
        level = self.max_level if level is None else level
        h = self.from_rgb[level](images)
        if level > 0:
            h = self.blocks[level - 1](h)
            if not (isinstance(alpha, (int, float)) and alpha >= 1.0):
                h = fade(alpha, h, self.from_rgb[level - 1](F.avg_pool2d(images, 2)))
            for k in range(level - 1, 0, -1):
                h = self.blocks[k - 1](h)
        out = self.last(h)
        return (out[:, 0], out[:, 1:]) if with_classes else out[:, 0]
