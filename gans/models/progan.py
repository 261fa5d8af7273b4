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

With `num_classes` > 0 the model is class-conditional as the authors' code (`loss.py`:
G_wgan_acgan, D_wgangp_acgan): G draws from (z, label), D names the class beside its score, and
both losses add `class_weight` (their cond_weight, 1) times the cross-entropy of D's class
logits, the auxiliary-classifier terms of Odena, Olah & Shlens 2017 ("Conditional Image
Synthesis with Auxiliary Classifier GANs"): on real and generated images for D (generated with
the real batch's labels), on generated images for G (with labels drawn uniformly).

The stage is a function of the images shown, which the base checkpoints; the phase whose
optimizer state is current is checkpointed too, so a run resumed inside a fade-in continues as
the uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gans import losses
from gans.errors import GansError
from gans.models.base import AdversarialModule, eval_mode
from gans.models.progan_schedule import Stage, describe, growth_schedule, stage_at
from gans.models.wgan import check_positive
from gans.nets.cgan import check_classes
from gans.nets.progan import fade

log = logging.getLogger(__name__)


class ProGAN(AdversarialModule):
    """Args (besides `AdversarialModule`'s):
    fade_images, stable_images: the lengths of each fade-in and stabilisation, in real images.
    batch_sizes: one batch size, or one per resolution (4x4 first); each at most the data's batch
        size (a phase trains on the first that many images of each batch).
    gp_weight: lambda of the gradient penalty (10). drift_weight: of E[D(x)^2] (0.001).
    reset_optimizers: clear both optimizers' state when a phase begins (the paper's code does).
    image_size: the side both networks grow to (the data's, or padded to a power of two).
    num_classes: 0 (unconditional) or the data's classes (`data.num_classes`), for both networks.
    class_weight: the weight of the auxiliary-classifier terms (the authors' cond_weight, 1).
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
        image_size: int | None = None,
        num_classes: int = 0,
        class_weight: float = 1.0,
        **kwargs,
    ) -> None:
        # A plain list (not Hydra's ListConfig), so the saved hyperparameters load with weights_only=True.
        batch_sizes = batch_sizes if isinstance(batch_sizes, int) else [int(b) for b in batch_sizes]
        # Before the base draws the grid's conditions.
        self.num_classes = check_classes(num_classes) if num_classes else 0
        self.class_conditional = self.num_classes > 0
        super().__init__(*args, **kwargs)
        for name in ("generator", "discriminator"):
            if getattr(self, name).num_classes != self.num_classes:
                raise GansError(f"model.{name}.num_classes={getattr(self, name).num_classes} but model.num_classes="
                                f"{self.num_classes}: set them alike (the config interpolates ${{model.num_classes}})")  # fmt: skip
        if image_size is not None and image_size != self.generator.image_size:
            raise GansError(f"model.image_size={image_size} but model.generator.image_size={self.generator.image_size}: "
                            "set them alike (the config interpolates ${model.image_size})")  # fmt: skip
        self.gp_weight = check_positive("gp_weight", gp_weight)
        self.drift_weight, self.reset_optimizers = float(drift_weight), reset_optimizers
        self.class_weight = float(class_weight)
        self.schedule = growth_schedule(self.generator.max_level, fade_images, stable_images, batch_sizes)
        self.optimizer_phase = -1  # the phase the optimizers' state belongs to (checkpointed)

    # -- the stage of the growth ------------------------------------------------------------------
    @property
    def stage(self) -> Stage:
        return stage_at(self.schedule, self.images_seen)

    def batch_size_of(self, batch: dict[str, Tensor]) -> int:
        return min(self.schedule[self.stage.phase].batch_size, super().batch_size_of(batch))

    def padded(self, images: Tensor) -> Tensor:
        """Images at the networks' side: a side up to 4 pixels short of it is padded with black, as
        LeNet-5 padded 28x28 MNIST to 32x32 (`padded_power_of_two` in gans/config.py chose it)."""
        missing = self.generator.image_size - images.shape[-1]
        if missing == 0:
            return images
        before = missing // 2
        return F.pad(images, (before, missing - before, before, missing - before), value=-1.0)

    def real_at(self, images: Tensor, stage: Stage) -> Tensor:
        """Real images at the stage's side, blended during a fade-in as the generator's output is:
        alpha * x_side + (1 - alpha) * upsample(x_side / 2)."""
        side, images = 4 * 2**stage.level, self.padded(images)
        x = F.avg_pool2d(images, images.shape[-1] // side) if images.shape[-1] != side else images
        if stage.alpha < 1.0 and stage.level > 0:
            x = fade(stage.alpha, x, F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"))
        return x

    # -- conditions: the class label, when conditional --------------------------------------------
    def condition_of(self, batch: dict[str, Tensor]) -> Tensor | None:
        return batch["label"] if self.class_conditional else None

    def sample_condition(self, n: int) -> Tensor | None:
        return torch.randint(0, self.num_classes, (n,), device=self.device) if self.class_conditional else None

    def grid_conditions(self, n: int) -> Tensor | None:
        return torch.arange(n) % self.num_classes if self.class_conditional else None

    # -- training ---------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.global_rank == 0:
            log.info(describe(self.schedule))

    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The phase's share of the batch at its side; a new phase first clears the optimizers."""
        stage = self.stage
        if self.reset_optimizers and stage.phase != self.optimizer_phase:
            for network in self.optimizer_factories:
                self.optimizer_of(network).optimizer.state.clear()
        self.optimizer_phase = stage.phase
        batch = super().prepare_batch(batch)
        size = self.batch_size_of(batch)
        if self._trainer is not None and self._log_this_step:  # the stage in the progress bar
            self.log_dict({"level": float(stage.level), "alpha": stage.alpha}, prog_bar=True, logger=False)
        batch = {k: v[:size] if isinstance(v, Tensor) and v.dim() else v for k, v in batch.items()}
        return {**batch, "image": self.real_at(batch["image"], stage), "stage": stage}

    @staticmethod
    def all_parameters_in_graph(loss: Tensor, network) -> Tensor:
        """loss + 0 * (every trainable parameter of `network`): the blocks above the current side
        take part in no forward pass, and DDP waits for a gradient of every parameter. Their
        gradient is zero, so Adam (whose state for them is zero) leaves them unchanged."""
        return loss + 0.0 * sum(p.sum() for p in network.parameters() if p.requires_grad)

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """E[D(G(z))] - E[D(x)] + lambda * gradient penalty + drift * E[D(x)^2] (appendix A.1),
        and, when conditional, the class cross-entropy on real and generated images."""
        real, stage, labels = batch["image"], batch["stage"], self.condition_of(batch)
        fake = self.generator(self.sample_latent(len(real)), stage.level, stage.alpha, labels)
        real_scores, real_classes = self.discriminator(real, stage.level, stage.alpha, with_classes=True)
        fake_scores, fake_classes = self.discriminator(fake, stage.level, stage.alpha, with_classes=True)
        critic_loss = losses.wasserstein_discriminator_loss(real_scores, fake_scores)
        penalty = losses.gradient_penalty(self.discriminator, real, fake, stage.level, stage.alpha)
        drift = losses.drift_penalty(real_scores)
        stats = {"wasserstein": -critic_loss.detach(), "gradient_penalty": penalty.detach(),
                 "level": torch.tensor(float(stage.level)), "alpha": torch.tensor(stage.alpha)}  # fmt: skip
        loss = critic_loss + self.gp_weight * penalty + self.drift_weight * drift
        if labels is not None:
            class_loss = F.cross_entropy(real_classes, labels) + F.cross_entropy(fake_classes, labels)
            loss = loss + self.class_weight * class_loss
            stats["class_loss"] = class_loss.detach()
        return self.all_parameters_in_graph(loss, self.discriminator), stats

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """-E[D(G(z))] at the current stage, and, when conditional, D's class cross-entropy on
        the generated images."""
        stage, n = batch["stage"], len(batch["image"])
        labels = self.sample_condition(n)
        fake = self.generator(self.sample_latent(n), stage.level, stage.alpha, labels)
        scores, classes = self.discriminator(fake, stage.level, stage.alpha, with_classes=True)
        loss, stats = losses.wasserstein_generator_loss(scores), {}
        if labels is not None:
            class_loss = F.cross_entropy(classes, labels)
            loss = loss + self.class_weight * class_loss
            stats["class_loss"] = class_loss.detach()
        return self.all_parameters_in_graph(loss, self.generator), stats

    # -- sampling ---------------------------------------------------------------------------------
    def synthesize(self, network, z: Tensor, condition: Tensor | None) -> Tensor:
        """Images at the current stage's side (`generate` after training: the final side)."""
        stage = self.stage
        return network(z, stage.level, stage.alpha, condition)

    def evaluation_pairs(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Generated images at the current side (during a fade-in, the blend G draws) against the
        real images average-pooled to that side, as the stream of that side (`fid_8`, ..., and `fid` at the final side, fully faded in)."""
        z, stage = self._eval_latents[batch["index"]], self.stage
        stream = "" if self.final_stage() else str(4 * 2**stage.level)
        # The real images at the side, not faded: a reference set per side, cached once.
        reals = self.real_at(batch["image"], Stage(stage.phase, stage.level, 1.0))
        return {stream: (reals, self.generate_from(z, self.condition_of(batch)))}

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self._evaluating() and not self.final_stage():
            # The best checkpoint is chosen on the final side's FID; before it, there is none.
            self.log("val/fid", math.inf)

    def final_stage(self) -> bool:
        stage = self.stage
        return stage.level == self.generator.max_level and stage.alpha >= 1.0

    def _class_evaluation(self) -> bool:
        # The real data's classifier reads images at the data's side: the final stage's.
        return super()._class_evaluation() and self.final_stage()

    def _update_class_statistics(self, stage: str, batch: dict[str, Tensor], fakes: Tensor) -> None:
        # Generated images at the padded side, cropped back to the data's (the classifier's input).
        side, full = batch["image"].shape[-1], fakes.shape[-1]
        start = (full - side) // 2
        super()._update_class_statistics(stage, batch, fakes[..., start : start + side, start : start + side])

    @torch.no_grad()
    def visuals(self, nrow: int, interpolation_rows: int, interpolation_steps: int) -> dict:
        """The base's grids at the current stage, and the growth strip: the same latents at every
        side reached so far, each row upsampled to the current side."""
        grids = super().visuals(nrow, interpolation_rows, interpolation_steps)
        stage, z = self.stage, self.fixed_z[:nrow]
        labels = getattr(self, "fixed_condition", None)
        labels = None if labels is None else labels[:nrow]
        side, rows, names = 4 * 2**stage.level, [], []
        with eval_mode(self.sampler) as sampler:
            for level in range(stage.level + 1):
                alpha = stage.alpha if level == stage.level else 1.0
                images = sampler(z.to(self.device), level, alpha, labels).float()
                rows.append(F.interpolate(images, size=(side, side), mode="nearest"))
                names.append(f"{4 * 2**level}x{4 * 2**level}" + (f" a={alpha:.2f}" if alpha < 1 else ""))
        grids["growth"] = (torch.cat(rows), len(z), names)
        return grids

    # -- checkpoints --------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["progress"]["optimizer_phase"] = self.optimizer_phase

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.optimizer_phase = int(checkpoint.get("progress", {}).get("optimizer_phase", -1))
