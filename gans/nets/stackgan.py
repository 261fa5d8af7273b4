"""StackGAN's networks: Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with
Stacked Generative Adversarial Networks" (sec. 3 and the supplementary architecture, fig. 2).

- `ConditioningAugmentation` (sec. 3.1): a fully connected layer maps the text embedding phi_t
  to a mean mu(phi_t) and a log standard deviation; the condition is c = mu + sigma * eps, eps ~
  N(0, I), so a caption gives a neighbourhood of conditions rather than one point, and the KL
  divergence to N(0, I) (eq. 3, `kl_divergence`) keeps that neighbourhood smooth.
- `Stage1Generator` G0(z, c): c ++ z through a fully connected layer to a 4x4 map, then
  upsampling blocks (nearest-neighbour 2x, 3x3 convolution, batch norm, ReLU) to the low
  resolution, and a 3x3 convolution with tanh (sec. 3.2; the authors' `upBlock`).
- `Stage2Generator` G1(s0, c): the stage-I image encoded down by 4 (3x3 conv, then stride-2 4x4
  convs), concatenated with its own augmented condition replicated spatially, a 3x3 joint
  convolution, residual blocks, and upsampling blocks to `scale` times the stage-I side (sec. 3.3:
  z is not an input, the stage-I image carries the randomness).
- `StackGANDiscriminator` D(x, phi_t), both stages (sec. 3.2/3.3): stride-2 4x4 convolutions with
  batch norm and LeakyReLU down to 4x4; the text embedding is compressed by a fully connected
  layer to `condition_dim` and replicated to 4x4, joined to the image features, a 1x1 convolution
  (batch norm, LeakyReLU) and a 4x4 convolution to one logit. The matching-aware loss that
  uses it is in `gans.models.stackgan`.

Widths: the paper's stage I is 1024 channels at 4x4 (`width` = 128, times 8), D 64 wide; the
CPU default is much narrower (conf/model/stackgan.yaml).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gans.errors import GansError


def _doublings(low: int, high: int, what: str) -> int:
    steps = math.log2(high / low) if high >= low else -1
    if not float(steps).is_integer() or steps < 0:
        raise GansError(f"{what}: {high} is not {low} times a power of two")
    return int(steps)


def kl_divergence(mu: Tensor, log_sigma: Tensor) -> Tensor:
    """KL(N(mu, diag(sigma^2)) || N(0, I)) per dimension, averaged over the batch and the
    dimensions (the authors' code, `KL_loss`, averages likewise; the sum over dimensions would
    scale the weight by the condition size): mean of -log sigma + (sigma^2 + mu^2 - 1) / 2."""
    return (-log_sigma + 0.5 * (torch.exp(2.0 * log_sigma) + mu.pow(2) - 1.0)).mean()


class ConditioningAugmentation(nn.Module):
    """phi_t (N, embedding_dim) -> (c, mu, log_sigma), c = mu + sigma * eps (Zhang et al. 2017, sec. 3.1)."""

    def __init__(self, embedding_dim: int, condition_dim: int = 128) -> None:
        super().__init__()
        self.condition_dim = condition_dim
        self.fc = nn.Linear(embedding_dim, 2 * condition_dim)

    def forward(self, embedding: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, log_sigma = self.fc(embedding).chunk(2, dim=1)
        # eps from the global generator: the base seeds it per iteration (exact resume).
        c = mu + torch.exp(log_sigma) * torch.randn_like(mu)
        return c, mu, log_sigma


def up_block(cin: int, cout: int) -> nn.Sequential:
    """Nearest-neighbour 2x, 3x3 convolution, batch norm, ReLU (the authors' `upBlock`)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    )


class ResidualBlock(nn.Module):
    """x + (conv-BN-ReLU-conv-BN)(x), then ReLU (Stage-II's residual blocks, He et al. 2016)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x + self.body(x))


class Stage1Generator(nn.Module):
    """G0(z, phi_t) -> (images (N, channels, image_size, image_size) in [-1, 1], mu, log_sigma).

    Args:
        embedding_dim: the text embedding's size.
        image_size: stage I's side (64 in the paper), 4 times a power of two.
        channels: image channels.
        latent_dim: z's size (100 in the paper).
        condition_dim: c's size (128 in the paper).
        width: channels at 4x4 are 8 * width, halved by each upsampling block (paper 128).
    """

    def __init__(
        self,
        embedding_dim: int,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 100,
        condition_dim: int = 128,
        width: int = 128,
    ) -> None:
        super().__init__()
        self.latent_dim, self.image_size, self.channels, self.output = latent_dim, image_size, channels, "tanh"
        steps = _doublings(4, image_size, "model.stage1_generator.image_size")
        self.augment = ConditioningAugmentation(embedding_dim, condition_dim)
        top = 8 * width
        self.project = nn.Sequential(
            nn.Linear(latent_dim + condition_dim, top * 16, bias=False), nn.BatchNorm1d(top * 16), nn.ReLU(True)
        )
        blocks, cin = [], top
        for i in range(steps):
            cout = max(top // 2 ** (i + 1), 8)
            blocks.append(up_block(cin, cout))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(cin, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: Tensor, embedding: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c, mu, log_sigma = self.augment(embedding)
        x = self.project(torch.cat([z, c], dim=1)).view(len(z), -1, 4, 4)
        return self.to_image(self.blocks(x)), mu, log_sigma


class Stage2Generator(nn.Module):
    """G1(s0, phi_t) -> (images at `scale` x the stage-I side, mu, log_sigma).

    Args:
        embedding_dim: the text embedding's size.
        image_size: the output side (256 in the paper).
        scale: output side / stage-I side (4 in the paper; 2 or 4).
        channels: image channels.
        condition_dim: c's size (its own conditioning augmentation, as the authors' code).
        width: channels of the encoded 1/4-side map are 4 * width (paper 128, so 512).
        residual_blocks: at the joint map (the authors' code uses 2; the paper's figure shows 4).
    """

    def __init__(
        self,
        embedding_dim: int,
        image_size: int = 256,
        scale: int = 4,
        channels: int = 3,
        condition_dim: int = 128,
        width: int = 128,
        residual_blocks: int = 2,
    ) -> None:
        super().__init__()
        if scale not in (2, 4) or image_size % (4 * scale):
            raise GansError(
                f"model.scale={scale} must be 2 or 4, and data.image_size={image_size} a multiple of {4 * scale}"
            )
        self.image_size, self.channels, self.scale, self.output = image_size, channels, scale, "tanh"
        self.latent_dim = None  # z is not an input (sec. 3.3)
        self.augment = ConditioningAugmentation(embedding_dim, condition_dim)
        self.encode = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1),
            nn.ReLU(True),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(True),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(4 * width),
            nn.ReLU(True),
        )
        self.joint = nn.Sequential(
            nn.Conv2d(4 * width + condition_dim, 4 * width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(4 * width),
            nn.ReLU(True),
        )
        self.residual = nn.Sequential(*(ResidualBlock(4 * width) for _ in range(residual_blocks)))
        blocks, cin = [], 4 * width
        for _ in range(2 + int(math.log2(scale))):  # back up by 4, then by `scale`
            cout = max(cin // 2, 8)
            blocks.append(up_block(cin, cout))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(cin, channels, 3, 1, 1), nn.Tanh())

    def forward(self, low: Tensor, embedding: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c, mu, log_sigma = self.augment(embedding)
        x = self.encode(low)
        x = torch.cat([x, c[:, :, None, None].expand(-1, -1, *x.shape[-2:])], dim=1)
        return self.to_image(self.blocks(self.residual(self.joint(x)))), mu, log_sigma


class StackGANDiscriminator(nn.Module):
    """D(images, phi_t) -> logits (N,): is this a real image that matches this text?

    Args:
        embedding_dim: the text embedding's size.
        image_size: the stage's side (a power of two times 4).
        channels: image channels.
        condition_dim: the compressed embedding's size N_d (paper 128).
        width: channels after the first convolution, doubled by each later one (paper 64).
    """

    def __init__(
        self, embedding_dim: int, image_size: int = 64, channels: int = 3, condition_dim: int = 128, width: int = 64
    ) -> None:
        super().__init__()
        self.image_size = image_size
        steps = _doublings(4, image_size, "the discriminator's image_size")
        if steps < 1:
            raise GansError(f"the discriminator's image_size={image_size} must be at least 8")
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        cin = width
        for _ in range(steps - 1):
            cout = min(cin * 2, 8 * width)
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.compress = nn.Sequential(nn.Linear(embedding_dim, condition_dim), nn.LeakyReLU(0.2, True))
        self.joint = nn.Sequential(
            nn.Conv2d(cin + condition_dim, cin, 1, 1, 0, bias=False), nn.BatchNorm2d(cin), nn.LeakyReLU(0.2, True)
        )
        self.logit = nn.Conv2d(cin, 1, 4, 1, 0)

    def forward(self, images: Tensor, embedding: Tensor) -> Tensor:
        x = self.features(images)
        text = self.compress(embedding)[:, :, None, None].expand(-1, -1, *x.shape[-2:])  # replicated M_d x M_d
        return self.logit(self.joint(torch.cat([x, text], dim=1))).flatten()
