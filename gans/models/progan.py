"""ProGAN: Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for Improved Quality,
Stability, and Variation".

Both networks grow from 4x4 to the data's side (`gans.nets.progan`), a phase per resolution: the
new block fades in while alpha rises linearly from 0 to 1, then training stabilises
(`gans.models.progan_schedule`; lengths in real images shown). The real images are downsampled to
the current side on the device and blended the same way during a fade-in (sec. 2: "we also fade
in the real images"). The loss is WGAN-GP's (lambda 10) plus the drift term 0.001 E[D(x)^2]
(appendix A.1), one critic step per generator step, Adam(1e-3, betas (0, 0.99), eps 1e-8), an
EMA of the generator (0.999), and the optimizers' state reset at each phase (`reset_optimizers`,
as the authors' code does).

The stage is a function of the images shown, which the base checkpoints; the phase whose
optimizer state is current is checkpointed too, so a run resumed inside a fade-in continues as
the uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gans import losses
from gans.models.base import AdversarialModule
from gans.models.progan_schedule import Stage, growth_schedule, stage_at
from gans.models.wgan import check_positive
from gans.nets.progan import fade


class ProGAN(AdversarialModule):
    """Args (besides `AdversarialModule`'s):
    fade_images, stable_images: the lengths of each fade-in and stabilisation, in real images.
    batch_sizes: one batch size, or one per resolution (4x4 first); each at most the data's batch
        size (a phase trains on the first that many images of each batch).
    gp_weight: lambda of the gradient penalty (10). drift_weight: of E[D(x)^2] (0.001).
    reset_optimizers: clear both optimizers' state when a phase begins (the paper's code does).
    """

    def __init__(
        self,
        *args,
        fade_images: int = 800_000,
        stable_images: int = 800_000,
        batch_sizes: Sequence[int] | int = 16,
        gp_weight: float = 10.0,
        drift_weight: float = 0.001,
        reset_optimizers: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.gp_weight = check_positive("gp_weight", gp_weight)
        self.drift_weight, self.reset_optimizers = float(drift_weight), reset_optimizers
        sizes = batch_sizes if isinstance(batch_sizes, int) else list(batch_sizes)
        self.schedule = growth_schedule(self.generator.max_level, fade_images, stable_images, sizes)
        self.optimizer_phase = -1  # the phase the optimizers' state belongs to (checkpointed)

    # -- the stage of the growth ------------------------------------------------------------------
    @property
    def stage(self) -> Stage:
        return stage_at(self.schedule, self.images_seen)

    def batch_size_of(self, batch: dict[str, Tensor]) -> int:
        return min(self.schedule[self.stage.phase].batch_size, super().batch_size_of(batch))

    def real_at(self, images: Tensor, stage: Stage) -> Tensor:
        """Real images at the stage's side, blended during a fade-in as the generator's output is:
        alpha * x_side + (1 - alpha) * upsample(x_side / 2)."""
        side = 4 * 2**stage.level
        x = F.adaptive_avg_pool2d(images, side) if images.shape[-1] != side else images
        if stage.alpha < 1.0 and stage.level > 0:
            x = fade(stage.alpha, x, F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"))
        return x

    # -- training ---------------------------------------------------------------------------------
    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The phase's share of the batch at its side; a new phase first clears the optimizers."""
        stage = self.stage
        if self.reset_optimizers and stage.phase != self.optimizer_phase:
            for network in self.optimizer_factories:
                self.optimizer_of(network).optimizer.state.clear()
        self.optimizer_phase = stage.phase
        batch = super().prepare_batch(batch)
        size = self.batch_size_of(batch)
        return {**batch, "image": self.real_at(batch["image"][:size], stage), "stage": stage}

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """E[D(G(z))] - E[D(x)] + lambda * gradient penalty + drift * E[D(x)^2] (appendix A.1)."""
        real, stage = batch["image"], batch["stage"]
        fake = self.generator(self.sample_latent(len(real)), stage.level, stage.alpha)
        real_scores = self.discriminator(real, stage.level, stage.alpha)
        fake_scores = self.discriminator(fake, stage.level, stage.alpha)
        critic_loss = losses.wasserstein_discriminator_loss(real_scores, fake_scores)
        penalty = losses.gradient_penalty(self.discriminator, real, fake, stage.level, stage.alpha)
        drift = losses.drift_penalty(real_scores)
        stats = {"wasserstein": -critic_loss.detach(), "gradient_penalty": penalty.detach(),
                 "level": torch.tensor(float(stage.level)), "alpha": torch.tensor(stage.alpha)}  # fmt: skip
        return critic_loss + self.gp_weight * penalty + self.drift_weight * drift, stats

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """-E[D(G(z))] at the current stage."""
        stage = batch["stage"]
        fake = self.generator(self.sample_latent(len(batch["image"])), stage.level, stage.alpha)
        return losses.wasserstein_generator_loss(self.discriminator(fake, stage.level, stage.alpha)), {}

    # -- sampling ---------------------------------------------------------------------------------
    def synthesize(self, network, z: Tensor, condition: Tensor | None) -> Tensor:
        """Images at the current stage's side (`generate` after training: the final side)."""
        stage = self.stage
        return network(z, stage.level, stage.alpha)

    def evaluation_pairs(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Generated images at the current side against the real ones downsampled the same way.
        (To do: a stream per side, `fid_<side>`, with `fid` the final side's.)"""
        z = self._eval_latents[batch["index"]]
        return {"": (self.real_at(batch["image"], self.stage), self.generate_from(z))}

    # -- checkpoints --------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["progress"]["optimizer_phase"] = self.optimizer_phase

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.optimizer_phase = int(checkpoint.get("progress", {}).get("optimizer_phase", -1))
