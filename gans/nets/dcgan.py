"""DCGAN networks (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks"), parametrised by resolution and width.

The image side is halved until it is odd or 4: that many stride-2 stages. At 64x64 with
`width=64` this is the lecture's architecture: z -> dense 4x4x1024 -> transposed convs
512/256/128/3 (5x5, stride 2, batch norm, LeakyReLU 0.2, tanh out) and a discriminator of 5x5
stride-2 convs 64/128/256/512 -> dense logit. At 28x28 (Fashion-MNIST) the same design gives
dense 7x7x256 -> 128 -> 1 and a 64/128 discriminator.
"""

from __future__ import annotations

from torch import Tensor, nn

from gans.nets.init import dcgan_init


def stride2_stages(image_size: int) -> tuple[int, int]:
    """(number of stride-2 stages, side of the smallest feature map) for an image side."""
    if image_size < 4:
        raise ValueError(f"image_size must be at least 4, got {image_size}")
    stages, side = 0, image_size
    while side % 2 == 0 and side > 4:
        side //= 2
        stages += 1
    if stages == 0:
        raise ValueError(f"image_size {image_size} is odd: DCGAN needs an even side (e.g. 28, 32, 64)")
    return stages, side


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, channels, image_size, image_size) in [-1, 1]."""

    def __init__(
        self, latent_dim: int = 100, image_size: int = 64, channels: int = 3, width: int = 64, slope: float = 0.2
    ) -> None:
        super().__init__()
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        stages, side = stride2_stages(image_size)
        widths = [width * 2 ** (stages - i) for i in range(stages)]  # e.g. 1024, 512, 256, 128
        self.base_shape = (widths[0], side, side)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, widths[0] * side * side, bias=False),
            nn.Unflatten(1, self.base_shape),
            nn.BatchNorm2d(widths[0]),
            nn.LeakyReLU(slope, inplace=True),
        )
        blocks = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            blocks += [_upsample(w_in, w_out, bias=False), nn.BatchNorm2d(w_out), nn.LeakyReLU(slope, inplace=True)]
        # No batch norm on the output layer (Radford et al. 2016, sec. 3).
        blocks += [_upsample(widths[-1], channels, bias=True), nn.Tanh()]
        self.upsample = nn.Sequential(*blocks)
        self.apply(dcgan_init)

    def forward(self, z: Tensor) -> Tensor:
        return self.upsample(self.project(z))


class Discriminator(nn.Module):
    """images (N, channels, image_size, image_size) -> logits (N,)."""

    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64, slope: float = 0.2) -> None:
        super().__init__()
        stages, side = stride2_stages(image_size)
        widths = [width * 2**i for i in range(stages)]  # e.g. 64, 128, 256, 512
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip([channels] + widths[:-1], widths)):
            # No batch norm on the input layer (Radford et al. 2016, sec. 3).
            layers.append(nn.Conv2d(w_in, w_out, 5, stride=2, padding=2, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(w_out))
            layers.append(nn.LeakyReLU(slope, inplace=True))
        self.features = nn.Sequential(*layers)
        self.classify = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * side * side, 1))
        self.apply(dcgan_init)

    def forward(self, images: Tensor) -> Tensor:
        return self.classify(self.features(images)).squeeze(1)


def _upsample(w_in: int, w_out: int, bias: bool) -> nn.ConvTranspose2d:
    # 5x5 kernels as in the paper; padding 2 + output_padding 1 doubles the side exactly.
    return nn.ConvTranspose2d(w_in, w_out, 5, stride=2, padding=2, output_padding=1, bias=bias)
