"""CycleGAN's ResNet generator (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks", appendix 7.2), the architecture of
Johnson, Alahi & Fei-Fei 2016 ("Perceptual Losses for Real-Time Style Transfer and
Super-Resolution") with instance normalisation (Ulyanov et al. 2016):

    c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3

c7s1-k: 7x7 convolution, stride 1, k filters, norm, ReLU; dk: 3x3 convolution, stride 2, norm,
ReLU; Rk: residual block of two 3x3 convolutions with k filters; uk: 3x3 fractional-strided
(transposed) convolution, stride 1/2, norm, ReLU; the last c7s1 ends with tanh instead.
Reflection padding throughout, as in the paper, to reduce border artifacts. 6 residual blocks
for 128x128 training images, 9 for 256x256 and higher (sec. 7.2). Defaults follow the authors'
PyTorch implementation: instance norm without affine parameters, no dropout, N(0, 0.02) weights.
"""

from __future__ import annotations

from torch import Tensor, nn

from gans.nets.init import dcgan_init
from gans.nets.layers import conv_bias, norm_layer


def default_n_blocks(image_size: int) -> int:
    """Zhu et al. 2017, sec. 7.2: 9 residual blocks at 256x256 and above, 6 at 128x128 (and below)."""
    return 9 if image_size >= 256 else 6


class ResidualBlock(nn.Module):
    """Rk: x + [reflect pad, 3x3 conv, norm, ReLU, (dropout), reflect pad, 3x3 conv, norm](x)."""

    def __init__(self, channels: int, norm: str = "instance", dropout: float = 0.0) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(inplace=True),
        ]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """images (N, channels, H, W) -> images (N, out_channels, H, W) in [-1, 1]; H, W divisible by 4.

    Args:
        image_size: training image side; only used to pick `n_blocks` when it is None.
        channels: input channels; out_channels: output channels (default: the same).
        width: filters of the first layer (64 in the paper); doubled at each downsampling.
        n_blocks: residual blocks; None = 9 at 256x256 and above, 6 below (the paper's choice).
        n_downsampling: stride-2 stages (2 in the paper: d128, d256).
        norm: "instance" (the paper), "batch" or "none".
        dropout: dropout inside the residual blocks (0 in CycleGAN).
    """

    def __init__(
        self,
        image_size: int = 256,
        channels: int = 3,
        out_channels: int | None = None,
        width: int = 64,
        n_blocks: int | None = None,
        n_downsampling: int = 2,
        norm: str = "instance",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        out_channels = out_channels or channels
        self.n_blocks = default_n_blocks(image_size) if n_blocks is None else n_blocks
        bias = conv_bias(norm)
        layers: list[nn.Module] = [  # c7s1-64
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, width, 7, bias=bias),
            norm_layer(norm, width),
            nn.ReLU(inplace=True),
        ]
        w = width
        for _ in range(n_downsampling):  # d128, d256
            layers += [nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=bias), norm_layer(norm, 2 * w), nn.ReLU(True)]
            w *= 2
        layers += [ResidualBlock(w, norm, dropout) for _ in range(self.n_blocks)]  # R256 x n_blocks
        for _ in range(n_downsampling):  # u128, u64
            layers += [
                nn.ConvTranspose2d(w, w // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                norm_layer(norm, w // 2),
                nn.ReLU(inplace=True),
            ]
            w //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, out_channels, 7), nn.Tanh()]  # c7s1-3
        self.model = nn.Sequential(*layers)
        self.apply(dcgan_init)  # the reference's "normal" init: N(0, 0.02), batch-norm scales N(1, 0.02)

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)
