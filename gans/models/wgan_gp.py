"""WGAN-GP: Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of
Wasserstein GANs", Algorithm 1.

The WGAN critic loss (Arjovsky et al. 2017) with the Lipschitz constraint as a soft penalty
instead of weight clipping: L = E[D(G(z))] - E[D(x)] + lambda E[(||grad D(x_hat)||_2 - 1)^2]
(eq. 3) on random interpolates x_hat = eps x + (1 - eps) G(z), one eps ~ U[0, 1] per sample,
the norm over the whole flattened sample (`gans.losses.gradient_penalty`). lambda = 10, Adam
(1e-4, betas (0, 0.9)), n_critic = 5, and no batch norm in the critic (the penalty is per sample;
the paper recommends layer normalisation, sec. 4): conf/model/wgan_gp.yaml.

The penalty's inner gradient is taken with `torch.autograd.grad`, outside Lightning's loss
scaler: under fp16 the scores are scaled by the scaler's current scale before differentiating
and divided back (so small gradients survive half precision); under bf16 and float32 nothing is
scaled. The base's gradient toggling leaves the critic's parameters trainable in its own step,
so `create_graph=True` carries the penalty's gradient to them; under DDP the critic's gradients
(penalty included) are all-reduced like any other.
"""

from __future__ import annotations

from torch import Tensor

from gans import losses
from gans.errors import GansError
from gans.models.wgan import WGAN, check_positive


class WGANGP(WGAN):
    """Args (besides `AdversarialModule`'s):
    gp_weight: lambda, the weight of the gradient penalty (10 in the paper, used for every experiment).
    """

    def __init__(self, *args, gp_weight: float = 10.0, clip_value: float | None = None, **kwargs) -> None:
        self.gp_weight = check_positive("gp_weight", gp_weight)
        if clip_value is not None:
            raise GansError(
                f"model.clip_value={clip_value}: WGAN-GP keeps the critic Lipschitz by the gradient penalty, not "
                "by clipping; leave model.clip_value=null (or use model=wgan)"
            )
        super().__init__(*args, clip_value=None, **kwargs)

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Descend E[D(G(z))] - E[D(x)] + lambda * penalty (Algorithm 1, lines 4-9)."""
        real, fake, real_scores, fake_scores = self.critic_scores(batch)
        critic_loss = losses.wasserstein_discriminator_loss(real_scores, fake_scores)
        penalty = losses.gradient_penalty(self.discriminator, real, fake, loss_scale=self.loss_scale())
        stats = {"wasserstein": -critic_loss.detach(), "gradient_penalty": penalty.detach()}
        return critic_loss + self.gp_weight * penalty, stats

    def loss_scale(self) -> float | None:
        """The fp16 GradScaler's current scale, or None (float32, bf16: no loss scaling)."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None) if self._trainer is not None else None
        return float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() else None
