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
from gans.nets.unet import depends_on_batch_at_test

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
    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """G(a) once per iteration, as the authors' code: D learns on it detached, then G through it
        (the base's updates: D, then G every `n_critic` iterations)."""
        batch = super().prepare_batch(batch)
        return {**batch, "fake_B": self.generator(batch["A"])}

    def _fake(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["fake_B"] if "fake_B" in batch else self.generator(batch["A"])

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """(-log D(a, b) - log(1 - D(a, G(a)))) / 2, averaged over patches."""
        inputs = batch["A"]
        real_logits = self.judge(inputs, batch["B"])
        fake_logits = self.judge(inputs, self._fake(batch).detach())
        loss = 0.5 * losses.bce_discriminator_loss(real_logits, fake_logits)
        return loss, self.mean_probabilities({"D(A,B)": real_logits, "D(A,G(A))": fake_logits})

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """-log D(a, G(a)) + lambda * |b - G(a)|_1. Logged `l1_loss` is before the weight."""
        fake = self._fake(batch)
        adversarial = losses.nonsaturating_generator_loss(self.judge(batch["A"], fake))
        l1 = losses.l1_loss(fake, batch["B"])
        return adversarial + self.lambda_l1 * l1, {"gan_loss": adversarial, "l1_loss": l1}

    # -- evaluation -------------------------------------------------------------------------------
    @torch.no_grad()
    def translate_each(self, images: Tensor, index: Tensor | None = None) -> Tensor:
        """G(a) of evaluation images (eval mode, float32), each image run alone when G's output
        depends on its batch: batch norm with the test batch's statistics (`batch_stats_at_test`,
        Isola et al. 2017 sec. 3.3) or dropout at test time.

        One image at a time is the authors' test protocol (their test scripts fix the batch size
        to 1, whatever the training batch) and how facades trains (batch 1), so an image is
        normalised with its own statistics. Its translation then does not depend on the
        evaluation batch size, on which images share its batch, nor on how DDP shards the set.
        Its dropout noise is drawn from a seed of (`sample_seed`, the image's index in its
        evaluation set): the same sample in every run, process and batching, as the fixed
        evaluation latents of the unconditional models; the training's random stream is restored.
        """
        network = self.sampler
        if not depends_on_batch_at_test(network):
            return self.translate(network, images)
        index = torch.arange(len(images)) if index is None else index
        cuda = []  # the generator of the evaluating device, forked and seeded with the CPU's
        if self.device.type == "cuda":
            cuda = [torch.cuda.current_device() if self.device.index is None else self.device.index]
        with torch.random.fork_rng(devices=cuda):
            translations = []
            for image, i in zip(images.split(1), index.tolist(), strict=True):
                seed = (self.sample_seed * 1_000_003 + i) % 2**63
                torch.default_generator.manual_seed(seed)
                for device in cuda:
                    torch.cuda.default_generators[device].manual_seed(seed)
                translations.append(self.translate(network, image))
        return torch.cat(translations)

    def _translation(self, batch: dict[str, Tensor]) -> Tensor:
        """G(a) of an evaluation batch, computed once (one dropout sample for FID and metrics)."""
        if "eval_fake_B" not in batch:
            batch["eval_fake_B"] = self.translate_each(batch["A"], batch.get("index"))
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
        """Rows of input | translation | target; the translation is the one evaluation scores
        (`translate_each`, with the items' validation indices)."""
        return {"A2B": self.rows(batch["A"], self._translation(batch), batch["B"])}
