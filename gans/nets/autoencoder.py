"""The autoencoders' networks: the DCGAN convolutions (`gans.nets.dcgan`) run as an encoder to a
code and a decoder from it, so the AE, the VAE and DCGAN compare at the same capacity.

At 28x28 with `width=64`: images -> stride-2 convolutions 64/128 -> dense code (`Encoder`, the
DCGAN discriminator with a code where its logit was), and code -> dense 7x7x128 -> transposed
convolution 64 -> 1 map of logits (the DCGAN `Generator` with `output: linear`: each model's
likelihood reads the logits, `gans.models.ae`, `gans.models.vae`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gans.errors import GansError
from gans.nets.dcgan import Discriminator


class Encoder(Discriminator):
    """images (N, channels, image_size, image_size) -> a code (N, code_dim), or with `gaussian` the
    mean and log-variance of a diagonal Gaussian posterior q(z | x) (Kingma & Welling 2014,
    sec. 3), each (N, code_dim). The other arguments are `Discriminator`'s."""

    def __init__(self, code_dim: int, gaussian: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.code_dim, self.gaussian = code_dim, gaussian
        self.classify = nn.Sequential(nn.Flatten(), nn.Linear(self.num_features, code_dim * (2 if gaussian else 1)))
        nn.init.normal_(self.classify[1].weight, 0.0, 0.02)
        nn.init.zeros_(self.classify[1].bias)

    def forward(self, images: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        out = self.classify(self.features(images))
        return out.chunk(2, dim=1) if self.gaussian else out


class LearnedScale(nn.Module):
    """One learned standard deviation sigma of a Gaussian decoder p(x | z) = N(mean(z), sigma^2 I),
    the gamma of Dai & Wipf 2019 ("Diagnosing and Enhancing VAE Models", sec. 4), kept as log sigma."""

    def __init__(self, initial: float = 1.0) -> None:
        super().__init__()
        if not initial > 0:
            raise GansError(f"model.initial_scale={initial} must be a positive standard deviation")
        self.log_scale = nn.Parameter(torch.tensor(math.log(initial)))

    def forward(self) -> Tensor:
        return self.log_scale
