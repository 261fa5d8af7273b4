"""The networks of Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", fig. 4.

Generator (SRResNet): a 9x9 conv with PReLU; B = 16 residual blocks, each conv3x3-BN-PReLU-
conv3x3-BN plus its input (He et al. 2016); a conv3x3-BN whose output is added to the features
before the blocks (the global skip); log2(scale) upsampling blocks, each conv3x3 to 4x the
channels, a pixel shuffle x2 (Shi et al. 2016: sub-pixel convolution) and PReLU; a 9x9 conv to
RGB. Input and output are images in [-1, 1] (the paper feeds LR in [0, 1]; the first conv absorbs
the affine difference).

Output: linear by default. The paper's fig. 4 ends with the last conv, no activation; a linear
output regresses the MSE target without tanh's vanishing gradient near black and white (an
HR pixel of 255 is tanh's asymptote, so the loss could only approach it); outputs are clamped to
[-1, 1] for images and metrics. `output="tanh"` is the option (some re-implementations use it).

Discriminator: eight 3x3 convs, 64 -> 512 channels doubling every two layers, strides alternating
1, 2 (each stride-2 layer halves the side), LeakyReLU 0.2, batch norm on all but the first; then
dense 1024, LeakyReLU 0.2, dense 1: one logit (the sigmoid is in the loss).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gans.errors import GansError, check_choice

OUTPUTS = ("linear", "tanh")
RESIDUALS = ("none", "bicubic")
NORMS = ("batch", "none")


def upsampling_steps(scale: int) -> int:
    """log2(scale): the x2 pixel-shuffle blocks that make `scale`; one clear error otherwise."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2 or scale & (scale - 1):
        raise GansError(f"data.scale={scale} cannot be done by the SRResNet generator: it upsamples in x2 "
                        "pixel-shuffle steps, so the scale must be a power of two (2, 4 or 8)")  # fmt: skip
    return int(math.log2(scale))


def normalization(norm: str, width: int) -> nn.Module:
    return nn.BatchNorm2d(width) if norm == "batch" else nn.Identity()


class ResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN, plus the input (without the BNs for norm="none")."""

    def __init__(self, width: int, norm: str = "batch") -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), normalization(norm, width), nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1), normalization(norm, width),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def icnr_(conv: nn.Conv2d, factor: int = 2) -> None:
    """ICNR init of a conv feeding PixelShuffle(factor): output channel c * factor^2 + k (sub-pixel
    k of channel c) gets channel c's kernel, drawn once by the conv's own default init."""
    sub = factor**2
    seed = nn.Conv2d(conv.in_channels, conv.out_channels // sub, conv.kernel_size, padding=conv.padding)
    with torch.no_grad():
        conv.weight.copy_(seed.weight.repeat_interleave(sub, dim=0))
        conv.bias.copy_(seed.bias.repeat_interleave(sub))


class Upsample(nn.Module):
    """conv3x3 to 4x the channels, pixel shuffle x2 (C*4, H, W -> C, 2H, 2W), PReLU."""

    def __init__(self, width: int, icnr: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(width))
        if icnr:
            icnr_(self.body[0])

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class SRResNet(nn.Module):
    """The generator: LR (N, 3, h, w) in [-1, 1] -> SR (N, 3, scale h, scale w).

    Args:
        scale: 4 (the paper) or 2, 8: a power of two.
        blocks: residual blocks (16).
        width: feature channels (64).
        channels: image channels (3).
        output: "linear" (the paper's fig. 4) or "tanh".
        icnr: ICNR init of the sub-pixel convs (True) or the default init.
        residual: "none" (the paper) or "bicubic": the output is bicubic upsampling plus the network's.
        norm: "batch" (the paper) or "none": no batch norm in the residual blocks and the global
            skip, as EDSR (Lim et al. 2017, "Enhanced Deep Residual Networks for Single Image
            Super-Resolution", sec. 3.1) found better for PSNR: BN normalises away the range of
            the features, and its statistics of training crops differ from those of whole images.
    """

    def __init__(
        self,
        scale: int = 4,
        blocks: int = 16,
        width: int = 64,
        channels: int = 3,
        output: str = "linear",
        icnr: bool = True,
        residual: str = "none",
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_choice("model.generator.output", output, OUTPUTS)
        check_choice("model.generator.residual", residual, RESIDUALS)
        check_choice("model.generator.norm", norm, NORMS)
        if residual == "bicubic" and output == "tanh":
            raise GansError("model.generator.residual=bicubic needs model.generator.output=linear: the network "
                            "adds a signed difference to bicubic upsampling, which tanh would bound to [-1, 1]")  # fmt: skip
        self.scale, self.residual = scale, residual
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.blocks = nn.Sequential(*(ResidualBlock(width, norm) for _ in range(blocks)))
        self.fuse = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), normalization(norm, width))
        self.upsample = nn.Sequential(*(Upsample(width, icnr) for _ in range(upsampling_steps(scale))))
        self.tail = nn.Conv2d(width, channels, 9, padding=4)
        if residual == "bicubic":
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)
            # a marker in the state dict: weights trained as a residual do not load into a plain
            # generator (or back) without an error naming the mismatch
            self.register_buffer("bicubic_residual", torch.ones(()))
        self.output = nn.Tanh() if output == "tanh" else nn.Identity()

    def forward(self, lr: Tensor) -> Tensor:
        features = self.head(lr)
        features = features + self.fuse(self.blocks(features))  # the global skip
        sr = self.output(self.tail(self.upsample(features)))
        if self.residual == "bicubic":
            # unclamped: clamping here would zero the gradient where bicubic overshoots
            sr = sr + F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return sr


class SRDiscriminator(nn.Module):
    """HR or SR crops (N, 3, S, S) -> one logit each (N,). S = the training crop (96): the dense
    layer sees 512 x S/16 x S/16 features.

    Args:
        image_size: side of the crops (a multiple of 16).
        channels: image channels (3).
        width: channels of the first conv (64), doubled every two layers to 8x.
    """

    def __init__(self, image_size: int = 96, channels: int = 3, width: int = 64) -> None:
        super().__init__()
        if image_size % 16:
            raise GansError(f"data.crop_size={image_size} must be a multiple of 16 for the SRGAN discriminator "
                            "(four stride-2 convs before its dense layer), e.g. 96")  # fmt: skip
        layers, in_channels = [], channels
        for i in range(8):
            out_channels, stride = width * 2 ** (i // 2), 1 + i % 2
            layers.append(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1))
            if i > 0:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.LeakyReLU(0.2))
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        side = image_size // 16
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(in_channels * side * side, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 1)
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images)).squeeze(1)
