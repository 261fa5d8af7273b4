"""Class-conditional DCGAN networks: G(z, y) and D(x, y) for labels y in 0..num_classes-1.

The generator is Mirza & Osindero 2014's ("Conditional Generative Adversarial Nets", sec. 3.2):
the condition joins the noise at the input, here as a learned embedding of the label
concatenated with z, and the DCGAN generator (`gans.nets.dcgan.Generator`) maps the pair to an
image. The discriminator takes the condition in one of two ways (`conditioning`):

- "concat" (Mirza & Osindero 2014): the label's learned embedding, one image-sized plane, is
  concatenated with the image as an extra input channel of the DCGAN discriminator.
- "projection" (Miyato & Koyama 2018, "cGANs with Projection Discriminator", eq. 3): the logit
  is psi(phi(x)) + embed(y) . phi(x), the inner product of a learned class embedding with the
  discriminator's features; their tables show it ahead of input concatenation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gans.errors import GansError
from gans.nets.dcgan import Discriminator, Generator

CONDITIONINGS = ("concat", "projection")


def check_classes(num_classes: int) -> int:
    if not isinstance(num_classes, int) or num_classes < 2:
        raise GansError(
            f"a class-conditional model needs labelled data with at least 2 classes, got num_classes={num_classes}: "
            "use data=fashion_mnist or data=mnist, or an image_folder with one subfolder per class"
        )
    return num_classes


class ConditionalGenerator(nn.Module):
    """(z (N, latent_dim), labels (N,)) -> images, through a DCGAN generator of z ++ embed(y).

    Args:
        num_classes: label count.
        latent_dim: z's size (what the model samples).
        embed_dim: size of the label embedding joined to z (default: 50, half of z's 100).
        **dcgan: the DCGAN generator's arguments (image_size, channels, width, kernel_size, ...).
    """

    def __init__(self, num_classes: int, latent_dim: int = 100, embed_dim: int = 50, **dcgan) -> None:
        super().__init__()
        self.num_classes, self.latent_dim = check_classes(num_classes), latent_dim
        self.embed = nn.Embedding(num_classes, embed_dim)
        nn.init.normal_(self.embed.weight, 0.0, 1.0)  # on the scale of z ~ N(0, I)
        self.net = Generator(latent_dim=latent_dim + embed_dim, **dcgan)
        self.output, self.image_size, self.channels = self.net.output, self.net.image_size, self.net.channels

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return self.net(torch.cat([z, self.embed(labels)], dim=1))


class ConditionalDiscriminator(nn.Module):
    """(images, labels (N,)) -> logits (N,), a DCGAN discriminator conditioned by `conditioning`.

    Args:
        num_classes: label count.
        conditioning: "projection" (Miyato & Koyama 2018) or "concat" (Mirza & Osindero 2014).
        image_size, channels: the images'.
        **dcgan: the DCGAN discriminator's other arguments (width, kernel_size, norm, ...).
    """

    def __init__(
        self, num_classes: int, conditioning: str = "projection", image_size: int = 64, channels: int = 3, **dcgan
    ) -> None:
        super().__init__()
        self.num_classes = check_classes(num_classes)
        if conditioning not in CONDITIONINGS:
            raise GansError(
                f"model.discriminator.conditioning must be one of {', '.join(CONDITIONINGS)}, got {conditioning!r}"
            )
        self.conditioning, self.image_size = conditioning, image_size
        extra = 1 if conditioning == "concat" else 0
        self.net = Discriminator(image_size=image_size, channels=channels + extra, **dcgan)
        if conditioning == "concat":
            self.embed = nn.Embedding(num_classes, image_size * image_size)
            nn.init.normal_(self.embed.weight, 0.0, 1.0)
        else:
            # Zero at the start: the projection term grows from an unconditional discriminator.
            self.embed = nn.Embedding(num_classes, self.net.num_features)
            nn.init.zeros_(self.embed.weight)

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        if self.conditioning == "concat":
            plane = self.embed(labels).view(-1, 1, self.image_size, self.image_size).to(images.dtype)
            return self.net(torch.cat([images, plane], dim=1))
        phi = self.net.features(images).flatten(1)
        return self.net.classify(phi).squeeze(1) + (self.embed(labels) * phi).sum(1)
