"""DCGAN: Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", trained with the GAN objective of Goodfellow et
al. 2014 ("Generative Adversarial Nets"), non-saturating generator loss by default.
"""

from __future__ import annotations

from torch import Tensor

from gans import losses
from gans.models.base import AdversarialModule


class DCGAN(AdversarialModule):
    """Args (besides `AdversarialModule`'s):
    generator_objective: "nonsaturating" (max log D(G(z)), Goodfellow et al. 2014 sec. 3) or
        "minimax" (min log(1 - D(G(z))), the original game, which saturates).
    label_smoothing: one-sided smoothing of the real targets (Salimans et al. 2016), e.g. 0.1.
    label_noise: width of uniform noise on the targets (noisy labels), e.g. 0.05.
    """

    def __init__(
        self,
        *args,
        generator_objective: str = "nonsaturating",
        label_smoothing: float = 0.0,
        label_noise: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        objectives = {"nonsaturating": losses.nonsaturating_generator_loss, "minimax": losses.minimax_generator_loss}
        if generator_objective not in objectives:
            raise ValueError(f"generator_objective must be one of {sorted(objectives)}, got {generator_objective!r}")
        self.generator_objective = objectives[generator_objective]
        self.label_smoothing, self.label_noise = label_smoothing, label_noise

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Ascend log D(x) + log(1 - D(G(z))) on a real minibatch and a fresh generated one."""
        real = batch["image"]
        fake = self.generator(self.sample_latent(len(real)))  # no graph: G is toggled off here
        real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)
        loss = losses.bce_discriminator_loss(real_logits, fake_logits, self.label_smoothing, self.label_noise)
        return loss, {"D(x)": real_logits.detach().sigmoid().mean(), "D(G(z))": fake_logits.detach().sigmoid().mean()}

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Descend the generator objective on a fresh minibatch of noise."""
        fake_logits = self.discriminator(self.generator(self.sample_latent(len(batch["image"]))))
        return self.generator_objective(fake_logits), {}
