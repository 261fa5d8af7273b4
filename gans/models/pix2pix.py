"""Pix2pix: Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional
Adversarial Networks".

A U-Net G translates the input a to G(a); a conditional PatchGAN D scores (a, b) pairs, the
input concatenated to the real target or to the translation. The objective (eq. 4)

    G* = arg min_G max_D L_cGAN(G, D) + lambda * L_L1(G),   L_L1 = E[|b - G(a)|_1],  lambda = 100

with the non-saturating G loss ("rather than training G to minimize log(1 - D(x, G(x, z))),
we instead train to maximize log D(x, G(x, z))", sec. 3.3), D's objective divided by 2 "to slow
down the rate at which D learns relative to G" (sec. 3.3), one D step then one G step, Adam with
lr 2e-4 and betas (0.5, 0.999). The noise z is the U-Net's dropout, on at test time too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanMetric
from torchmetrics.functional.image import peak_signal_noise_ratio
from torchmetrics.image import StructuralSimilarityIndexMeasure

from gans import losses
from gans.models.translation import ImageToImageModule

PREFIXES = ("val", "test")


class Pix2Pix(ImageToImageModule):
    """Args (besides `AdversarialModule`'s):
    generator: a U-Net (`gans.nets.unet.UnetGenerator`) from the input's to the target's channels.
    discriminator: a PatchGAN with the input's channels as `condition_channels`.
    lambda_l1: weight of the L1 loss (100).
    """

    def __init__(self, *args, lambda_l1: float = 100.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lambda_l1 = lambda_l1
        # Against the ground truth, per evaluation stage: L1 on [-1, 1] (the training loss's
        # scale); PSNR (mean over images) and SSIM on [0, 1] with data range 1.
        self.eval_metrics = nn.ModuleDict(
            {
                prefix: nn.ModuleDict(
                    {
                        "l1": MeanAbsoluteError(),
                        "psnr": MeanMetric(),
                        "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
                    }
                )
                for prefix in PREFIXES
            }
        )

    def judge(self, inputs: Tensor, outputs: Tensor) -> Tensor:
        """D's patch logits for outputs conditioned on their inputs: D(concat(a, b))."""
        return self.discriminator(torch.cat([inputs, outputs], dim=1))

    # -- training ---------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """G(a) once per step, as the authors' code: D learns on it detached, then G through it."""
        batch = self.prepare_batch(batch)
        opt_g, opt_d = self.optimizers()
        batch["fake_B"] = self.generator(batch["A"])
        self.adversarial_update(opt_d, self.discriminator, self.discriminator_loss, batch, "d")
        if (batch_idx + 1) % self.hparams.n_critic == 0:
            self.adversarial_update(opt_g, self.generator, self.generator_loss, batch, "g")
            if self.ema is not None:
                self.ema.update_parameters(self.generator)

    def _fake(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["fake_B"] if "fake_B" in batch else self.generator(batch["A"])

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """(-log D(a, b) - log(1 - D(a, G(a)))) / 2, averaged over patches."""
        inputs = batch["A"]
        real_logits = self.judge(inputs, batch["B"])
        fake_logits = self.judge(inputs, self._fake(batch).detach())
        loss = 0.5 * losses.bce_discriminator_loss(real_logits, fake_logits)
        return loss, {
            "D(A,B)": real_logits.detach().sigmoid().mean(),
            "D(A,G(A))": fake_logits.detach().sigmoid().mean(),
        }

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """-log D(a, G(a)) + lambda * |b - G(a)|_1. Logged `l1_loss` is before the weight."""
        fake = self._fake(batch)
        adversarial = losses.nonsaturating_generator_loss(self.judge(batch["A"], fake))
        l1 = losses.l1_loss(fake, batch["B"])
        return adversarial + self.lambda_l1 * l1, {"gan_loss": adversarial, "l1_loss": l1}

    # -- evaluation -------------------------------------------------------------------------------
    def _translation(self, batch: dict[str, Tensor]) -> Tensor:
        """G(a) of an evaluation batch, computed once (one dropout sample for FID and metrics)."""
        if "eval_fake_B" not in batch:
            batch["eval_fake_B"] = self.translate(self.sampler, batch["A"])
        return batch["eval_fake_B"]

    def evaluation_pairs(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        return {"": (batch["B"], self._translation(batch))}

    def evaluate_batch_extra(self, batch: dict[str, Tensor], prefix: str) -> None:
        """L1, PSNR and SSIM of the translations against the targets, logged as {prefix}/l1 etc."""
        fake, target = self._translation(batch), batch["B"].float()
        metrics = self.eval_metrics[prefix]
        metrics["l1"].update(fake, target)
        fake01, target01 = (fake + 1) / 2, (target + 1) / 2
        per_image = peak_signal_noise_ratio(fake01, target01, data_range=1.0, reduction="none", dim=(1, 2, 3))
        metrics["psnr"].update(per_image)
        metrics["ssim"].update(fake01, target01)
        for name, metric in metrics.items():
            self.log(f"{prefix}/{name}", metric, on_step=False, on_epoch=True)

    def translation_visuals(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, int]]:
        """Rows of input | translation | target."""
        return {"A2B": self.rows(batch["A"], self.translate(self.sampler, batch["A"]), batch["B"])}
