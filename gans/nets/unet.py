"""Pix2pix's U-Net generator (Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with
Conditional Adversarial Networks", sec. 3.2.1 and appendix 6.1.1; Ronneberger et al. 2015).

Ck: 4x4 convolution with k filters, stride 2, batch norm, ReLU; CDk: the same with dropout 0.5.
At 256x256:

    encoder:   C64-C128-C256-C512-C512-C512-C512-C512
    decoder:   CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128

(decoder widths count the skip connection: layer i of the encoder is concatenated to layer
n - i of the decoder), then a 4x4 transposed convolution to the output channels and tanh.
Encoder ReLUs are leaky (slope 0.2), decoder ReLUs are not; no batch norm on the first encoder
layer (C64). Each stride-2 layer halves the side, so a 2^n image gets n of them down to 1x1
(8 at 256x256, 5 at 32x32); the 1x1 bottleneck has no batch norm either, as in the authors'
code (one value per channel and image is no statistic to normalise with).

Noise: pix2pix has no z; "we provide noise only in the form of dropout, applied on several
layers of our generator at both training and test time" (sec. 3.1), and "at inference time, we
run the generator net in exactly the same manner as during the training phase: we apply dropout
at test time, and we apply batch normalization using the statistics of the test batch" (sec.
3.3). Both are kept here by default (`dropout_at_test`, `batch_stats_at_test`), so `eval()`
changes nothing and a translation is a sample; turn them off for deterministic outputs. With
batch statistics, an image's translation depends on the images that share its batch: `Pix2Pix`
therefore evaluates one image at a time, as the authors' test scripts do (batch size 1), each with
its own seeded dropout noise (`Pix2Pix.translate_each`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gans.nets.init import dcgan_init
from gans.nets.layers import conv_bias, norm_layer


class NoiseDropout(nn.Dropout):
    """Dropout that stays on in eval mode when `at_test` (pix2pix's noise, Isola et al. 2017 sec. 3.3)."""

    def __init__(self, p: float = 0.5, at_test: bool = True) -> None:
        super().__init__(p)
        self.at_test = at_test

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training or self.at_test, self.inplace)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, at_test={self.at_test}"


BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def depends_on_batch_at_test(network: nn.Module) -> bool:
    """Whether `network` in eval mode gives an image an output that depends on the other images
    of its batch or on the random stream: batch norm with the test batch's statistics
    (`batch_stats_at_test`), or dropout kept at test time (`dropout_at_test`)."""
    for module in network.modules():
        if isinstance(module, BATCH_NORMS) and not module.track_running_stats:
            return True
        if isinstance(module, NoiseDropout) and module.at_test and module.p > 0:
            return True
    return False


def downsamplings(image_size: int) -> int:
    """log2(image_size): the stride-2 layers that take a square power-of-two image to 1x1."""
    n = round(math.log2(image_size)) if image_size > 0 else 0
    if image_size < 4 or 2**n != image_size:
        raise ValueError(f"the U-Net needs a power-of-two image side (32, 64, 256, ...), got {image_size}")
    return n


class UnetGenerator(nn.Module):
    """images (N, channels, S, S) -> images (N, out_channels, S, S) in [-1, 1].

    Args:
        image_size: S, a power of two unless `n_downs` is given (then divisible by 2^n_downs).
        channels, out_channels: input and output channels (out_channels defaults to channels).
        width: filters of the first encoder layer (64); doubled per layer up to 8 * width.
        n_downs: encoder layers; None = log2(image_size), down to a 1x1 bottleneck.
        norm: "batch" (the paper), "instance" or "none".
        dropout: dropout rate of the noise layers (0.5).
        dropout_layers: how many decoder layers, from the bottleneck, have dropout (3: CD512 x 3).
        dropout_at_test, batch_stats_at_test: run at test time as in training (the paper).
    """

    def __init__(
        self,
        image_size: int = 256,
        channels: int = 3,
        out_channels: int | None = None,
        width: int = 64,
        n_downs: int | None = None,
        norm: str = "batch",
        dropout: float = 0.5,
        dropout_layers: int = 3,
        dropout_at_test: bool = True,
        batch_stats_at_test: bool = True,
        slope: float = 0.2,
    ) -> None:
        super().__init__()
        out_channels = out_channels or channels
        self.n_downs = downsamplings(image_size) if n_downs is None else n_downs
        if self.n_downs < 2 or image_size % 2**self.n_downs:
            raise ValueError(f"image_size {image_size} cannot be halved {self.n_downs} times by the U-Net")
        n, bias = self.n_downs, conv_bias(norm)
        widths = [width * min(2**i, 8) for i in range(n)]  # C64-C128-C256-C512-C512-...

        def norm_(channels: int) -> nn.Module:
            return norm_layer(norm, channels, batch_stats_at_test)

        self.encoder = nn.ModuleList()
        for i in range(n):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(slope, inplace=True)]
            layers.append(nn.Conv2d(channels if i == 0 else widths[i - 1], widths[i], 4, 2, 1, bias=bias))
            if 0 < i < n - 1:  # not on C64 (the paper), not on the 1x1 bottleneck (the authors' code)
                layers.append(norm_(widths[i]))
            self.encoder.append(nn.Sequential(*layers))

        self.decoder = nn.ModuleList()
        for j in range(n - 1):  # decoder layer j meets encoder layer n - 2 - j through a skip
            w_in = widths[-1] if j == 0 else 2 * widths[n - 1 - j]
            w_out = widths[n - 2 - j]
            layers = [nn.ReLU(inplace=True), nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=bias), norm_(w_out)]
            if j < dropout_layers and dropout > 0:
                layers.append(NoiseDropout(dropout, dropout_at_test))
            self.decoder.append(nn.Sequential(*layers))
        self.output = nn.Sequential(
            nn.ReLU(inplace=True), nn.ConvTranspose2d(2 * widths[0], out_channels, 4, 2, 1), nn.Tanh()
        )
        self.apply(dcgan_init)  # N(0, 0.02) weights, batch-norm scales N(1, 0.02), as the authors' code

    def forward(self, images: Tensor) -> Tensor:
        skips = []
        x = images
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the decoder directly
        for layer in self.decoder:
            x = torch.cat([skips.pop(), layer(x)], dim=1)
        return self.output(x)
