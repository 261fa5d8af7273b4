"""Two small models that show the base hosts the whole family, driven through `run.py` in the tests
(`hydra.searchpath=[file://tests/conf] model=toy_mmd|toy_cgan`):

- `MomentMatchingModel`: one network, one optimizer, no discriminator: a generative moment-matching
  network (Li, Swersky & Zemel 2015, "Generative Moment Matching Networks"; Dziugaite, Roy &
  Ghahramani 2015), trained by minimising the squared MMD between a real and a generated batch
  under a sum of Gaussian kernels. The shape of a VAE, an AE or SRResNet pre-training on the base.
- `ConditionalToyGAN`: G(z, y) and a projection discriminator D(x, y) (Miyato & Koyama 2018)
  with the non-saturating GAN loss (Goodfellow et al. 2014): the conditional sampling API.

Both can poison their loss with NaN on one process from an iteration on, to test that every
process stops together.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from gans import losses
from gans.models.base import AdversarialModule, GenerativeModule, Update


class TinyGenerator(nn.Module):
    """z (and optionally a class label, embedded and concatenated) -> images in [-1, 1] by one hidden layer."""

    def __init__(self, latent_dim: int = 16, image_size: int = 28, channels: int = 1, num_classes: int = 0) -> None:
        super().__init__()
        self.latent_dim, self.shape = latent_dim, (channels, image_size, image_size)
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        inputs = latent_dim * (2 if num_classes else 1)
        self.net = nn.Sequential(
            nn.Linear(inputs, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, channels * image_size**2), nn.Tanh()
        )

    def forward(self, z: Tensor, label: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(label)], dim=1)
        return self.net(z).view(-1, *self.shape)


class TinyProjectionDiscriminator(nn.Module):
    """D(x, y) = w . phi(x) + embed(y) . phi(x) (Miyato & Koyama 2018, eq. 3), logits (N,)."""

    def __init__(self, image_size: int = 28, channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(channels * image_size**2, 64), nn.LeakyReLU(0.2))
        self.linear = nn.Linear(64, 1)
        self.embed = nn.Embedding(num_classes, 64)

    def forward(self, images: Tensor, label: Tensor) -> Tensor:
        phi = self.features(images)
        return self.linear(phi).squeeze(1) + (self.embed(label) * phi).sum(1)


def squared_mmd(x: Tensor, y: Tensor, bandwidths: tuple[float, ...] = (1.0, 4.0, 16.0)) -> Tensor:
    """Biased estimate of MMD^2 between samples x and y (rows), Gaussian kernels summed over bandwidths."""
    xy = torch.cat([x.flatten(1), y.flatten(1)])
    d2 = torch.cdist(xy, xy).pow(2) / xy.shape[1]
    k = sum(torch.exp(-d2 / (2 * s**2)) for s in bandwidths)
    n = len(x)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


class Poison:
    """Multiplies a loss by NaN on process `rank` from iteration `at` on (None: never)."""

    def __init__(self, at: int | None, rank: int) -> None:
        self.at, self.rank = at, rank

    def __call__(self, module: GenerativeModule, loss: Tensor) -> Tensor:
        if self.at is not None and module.global_rank == self.rank and module.iteration >= self.at:
            return loss * float("nan")
        return loss


class MomentMatchingModel(GenerativeModule):
    """A generator alone, trained to match the real batch's distribution by MMD (one optimizer)."""

    def __init__(
        self,
        generator: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        poison_at: int | None = None,
        poison_rank: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(optimizers={"generator": optimizer}, **kwargs)
        self.save_hyperparameters(ignore=["generator", "optimizer"])
        self.generator = generator
        self.poison = Poison(poison_at, poison_rank)
        self.setup_sampling()

    def updates(self) -> list[Update]:
        return [Update("g", "generator", self.mmd_loss)]

    def mmd_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """MMD^2 between the real batch and as many generated images."""
        real = batch["image"]
        loss = squared_mmd(real, self.generator(self.sample_latent(len(real))))
        return self.poison(self, loss), {}


class ConditionalToyGAN(AdversarialModule):
    """A class-conditional GAN: images generated for the labels of the real batch they are judged with."""

    class_conditional = True  # the condition is the class label: class-aware evaluation scores class_acc

    def __init__(self, *args, num_classes: int = 10, poison_at: int | None = None, poison_rank: int = 0, **kwargs):
        self.num_classes = num_classes
        super().__init__(*args, **kwargs)
        self.poison = Poison(poison_at, poison_rank)

    def condition_of(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["label"]

    def sample_condition(self, n: int) -> Tensor:
        return torch.randint(0, self.num_classes, (n,), device=self.device)

    def grid_conditions(self, n: int) -> Tensor:
        return torch.arange(n) % self.num_classes  # with nrow = num_classes, one class per column

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        real, label = batch["image"], batch["label"]
        fake = self.generator(self.sample_latent(len(real)), label)
        loss = losses.bce_discriminator_loss(self.discriminator(real, label), self.discriminator(fake, label))
        return self.poison(self, loss), {}

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        label = batch["label"]
        fake = self.generator(self.sample_latent(len(label)), label)
        return losses.nonsaturating_generator_loss(self.discriminator(fake, label)), {}
