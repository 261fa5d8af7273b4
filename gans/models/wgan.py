"""Wasserstein GAN: Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN", Algorithm 1.

The critic f (the DCGAN discriminator without a sigmoid: it outputs a score, not a probability)
maximises E[f(x)] - E[f(G(z))], an estimate of the Earth-Mover distance W(P_r, P_g) up to a
constant when f is K-Lipschitz; the generator minimises -E[f(G(z))]. Lipschitzness is enforced
crudely by clipping every critic weight to [-c, c] after each critic step (c = 0.01), with
RMSProp (lr 5e-5; momentum-based optimisers were unstable, sec. 3) and n_critic = 5 critic steps
per generator step. The critic's objective is logged as `train/wasserstein`: the paper's point is
that it tracks sample quality (sec. 4.2, Figure 3).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gans import losses
from gans.errors import GansError
from gans.models.base import AdversarialModule


def check_positive(key: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise GansError(f"model.{key}={value!r} must be a positive number")
    return float(value)


class WGAN(AdversarialModule):
    """Args (besides `AdversarialModule`'s; `n_critic` 5 and RMSProp come from conf/model/wgan.yaml):
    clip_value: c, the bound of the critic's weights after each critic step (0.01 in the paper);
        None only for subclasses that constrain the critic otherwise (WGAN-GP).
    """

    def __init__(self, *args, clip_value: float | None = 0.01, **kwargs) -> None:
        self.clip_value = None if clip_value is None else check_positive("clip_value", clip_value)
        super().__init__(*args, **kwargs)

    def critic_scores(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(x, G(z), f(x), f(G(z))) on a real minibatch and a fresh generated one of its size."""
        real = batch["image"]
        fake = self.generator(self.sample_latent(len(real)))  # no graph into G: G is toggled off here
        return real, fake, self.discriminator(real), self.discriminator(fake)

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Ascend E[f(x)] - E[f(G(z))] (Algorithm 1, line 6), i.e. descend its negative."""
        *_, real_scores, fake_scores = self.critic_scores(batch)
        loss = losses.wasserstein_discriminator_loss(real_scores, fake_scores)
        return loss, {"wasserstein": -loss.detach()}

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Descend -E[f(G(z))] (Algorithm 1, line 11)."""
        fake = self.generator(self.sample_latent(len(batch["image"])))
        return losses.wasserstein_generator_loss(self.discriminator(fake)), {}

    def after_step(self, network: str) -> None:
        """w <- clip(w, -c, c) for every critic parameter, after its RMSProp step (line 8)."""
        if network == "discriminator" and self.clip_value is not None:
            with torch.no_grad():
                for parameter in self.discriminator.parameters():
                    parameter.clamp_(-self.clip_value, self.clip_value)
