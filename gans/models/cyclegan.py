"""CycleGAN: Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks".

Two translators, G: A -> B and F: B -> A, and two discriminators, D_A (images of A against
F(B)) and D_B (images of B against G(A)). The full objective (eq. 3) is

    L_GAN(G, D_B) + L_GAN(F, D_A) + lambda * L_cyc(G, F)
    L_cyc = E[|F(G(a)) - a|_1] + E[|G(F(b)) - b|_1]          (eq. 2)

with the least-squares GAN loss (Mao et al. 2017; sec. 4): G minimises E[(D_B(G(a)) - 1)^2]
and D_B minimises E[(D_B(b) - 1)^2] + E[D_B(G(a))^2], "divided by 2 while optimizing D" (sec. 4).
lambda = 10; for photo <-> painting the identity loss
lambda_identity * lambda * (E[|G(b) - b|_1] + E[|F(a) - a|_1]) (sec. 5.2, Taigman et al. 2017)
keeps colours, with the authors' code default lambda_identity = 0.5 (so weight 5). The
discriminators train on a history of 50 generated images (`ImagePool`), Adam with lr 2e-4 and
beta1 0.5, the rate constant for the first half of training, then decayed linearly to zero
(`gans.models.schedules.linear_decay`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError

from gans import losses
from gans.models.base import Update
from gans.models.image_pool import ImagePool
from gans.models.translation import ImageToImageModule

PREFIXES = ("val", "test")


def lsgan_generator_loss(fake_scores: Tensor) -> Tensor:
    """E[(D(G(a)) - 1)^2], as the paper writes it and the authors' code computes it (MSE against 1):
    no factor 1/2 here (unlike `losses.least_squares_generator_loss`), so lambda = 10 keeps its
    published weight against the adversarial term."""
    return losses.mse_loss(fake_scores, torch.ones_like(fake_scores))


class CycleGAN(ImageToImageModule):
    """Args (besides `AdversarialModule`'s):
    generator: `nn.ModuleDict` {"A2B": G, "B2A": F}; discriminator: `nn.ModuleDict` {"A": D_A, "B": D_B}.
    lambda_cycle: weight of the cycle-consistency loss (10).
    lambda_identity: identity-loss weight as a fraction of lambda_cycle (0.5; 0 turns it off).
    pool_size: generated images kept per discriminator (50; 0 = always the latest).
    """

    def __init__(
        self,
        *args,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if set(self.generator.keys()) != {"A2B", "B2A"} or set(self.discriminator.keys()) != {"A", "B"}:
            raise ValueError(
                "CycleGAN needs generator = ModuleDict {A2B, B2A} and discriminator = ModuleDict {A, B}, got "
                f"{sorted(self.generator.keys())} and {sorted(self.discriminator.keys())}"
            )
        if self.n_critic != 1:
            raise ValueError(
                "CycleGAN updates the generators and discriminators once each per step: n_critic must be 1"
            )
        self.lambda_cycle, self.lambda_identity = lambda_cycle, lambda_identity
        self.pools = {"A": ImagePool(pool_size), "B": ImagePool(pool_size)}  # fakes of each domain
        # L1 of the translations against the ground truth, when evaluation pairs are aligned.
        self.eval_l1 = nn.ModuleDict(
            {prefix: nn.ModuleDict({"A2B": MeanAbsoluteError(), "B2A": MeanAbsoluteError()}) for prefix in PREFIXES}
        )

    # -- training ---------------------------------------------------------------------------------
    def updates(self) -> list[Update]:
        """One iteration of the authors' training loop: translate both ways and update G and F on
        the full objective, the discriminators fixed; then update D_A and D_B, G and F fixed, on
        the translations through the image pools."""
        return [Update("g", "generator", self.generator_loss), Update("d", "discriminator", self.discriminator_loss)]

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 3 for G and F, plus the identity loss; stores the (detached) translations in
        `batch` as "fake_B" = G(a) and "fake_A" = F(b) for the discriminator update.
        Logged `cycle_loss` and `identity_loss` are the L1 sums before their weights."""
        G, F = self.generator["A2B"], self.generator["B2A"]
        real_A, real_B = batch["A"], batch["B"]
        fake_B, fake_A = G(real_A), F(real_B)
        adversarial = lsgan_generator_loss(self.discriminator["B"](fake_B)) + lsgan_generator_loss(
            self.discriminator["A"](fake_A)
        )
        cycle = losses.l1_loss(F(fake_B), real_A) + losses.l1_loss(G(fake_A), real_B)
        loss = adversarial + self.lambda_cycle * cycle
        identity = torch.zeros((), device=real_A.device)
        if self.lambda_identity > 0:
            identity = losses.l1_loss(G(real_B), real_B) + losses.l1_loss(F(real_A), real_A)
            loss = loss + self.lambda_identity * self.lambda_cycle * identity
        batch["fake_A"], batch["fake_B"] = fake_A.detach(), fake_B.detach()
        return loss, {"gan_loss": adversarial, "cycle_loss": cycle, "identity_loss": identity}

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """LSGAN loss of D_A and D_B, each halved (sec. 4), on real images and pooled translations.
        Uses the translations `generator_loss` left in `batch`, or makes them."""
        if "fake_A" not in batch:
            with torch.no_grad():
                batch["fake_A"], batch["fake_B"] = self.generator["B2A"](batch["B"]), self.generator["A2B"](batch["A"])
        total, stats = 0.0, {}
        for domain, fake_name in (("A", "F(B)"), ("B", "G(A)")):
            D = self.discriminator[domain]
            real_scores = D(batch[domain])
            fake_scores = D(self.pools[domain].query(batch[f"fake_{domain}"]))
            # 0.5 * (E[(D(real) - 1)^2] + E[D(fake)^2]): Mao et al.'s 1/2 is the paper's halving.
            loss = losses.least_squares_discriminator_loss(real_scores, fake_scores)
            total = total + loss
            stats[f"d_loss_{domain}"] = loss
            stats[f"D_{domain}({domain})"] = real_scores.detach().mean()
            stats[f"D_{domain}({fake_name})"] = fake_scores.detach().mean()
        return total, stats

    # -- evaluation -------------------------------------------------------------------------------
    def _translations(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(G(a), F(b)) of an evaluation batch, for the images that exist, computed once and kept.

        The test sets of the two domains differ in size (horse2zebra: 120 horses, 140 zebras), so
        evaluation item i holds A[i] and B[i] only where "has_A" / "has_B" say so; the stand-ins
        past the end of the smaller set are neither translated nor scored. The existing images go
        to batch["eval_real_A"] and batch["eval_real_B"]."""
        if "eval_fake_B" not in batch:
            for domain in "AB":
                present = batch.get(f"has_{domain}")
                batch[f"eval_real_{domain}"] = batch[domain] if present is None else batch[domain][present]
            # A batch past the end of one domain has no image of it: an empty stream, no network call.
            for fake, network, real in (("eval_fake_B", "A2B", "eval_real_A"), ("eval_fake_A", "B2A", "eval_real_B")):
                images = batch[real]
                batch[fake] = self.translate(self.sampler[network], images) if len(images) else images.float()
        return batch["eval_fake_B"], batch["eval_fake_A"]

    def evaluation_pairs(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """FID per direction over every test image of each domain: G(A images) against the B
        images (stream "A2B"), F(B images) against the A images ("B2A"); the two tensors of a
        stream may differ in length."""
        fake_B, fake_A = self._translations(batch)
        return {"A2B": (batch["eval_real_B"], fake_B), "B2A": (batch["eval_real_A"], fake_A)}

    def evaluate_batch_extra(self, batch: dict[str, Tensor], prefix: str) -> None:
        """With aligned evaluation pairs (the data module's `aligned_eval`: B[i] is the true
        translation of A[i]), the mean absolute error of each translation on [-1, 1], over the
        items where both images exist."""
        if not getattr(self.trainer.datamodule, "aligned_eval", False):
            return
        fake_B, fake_A = self._translations(batch)
        real_A, real_B = batch["A"].float(), batch["B"].float()
        has_A, has_B = batch.get("has_A"), batch.get("has_B")
        if has_A is not None and has_B is not None:  # keep the items with both images
            both = has_A & has_B
            fake_B, fake_A, real_A, real_B = fake_B[both[has_A]], fake_A[both[has_B]], real_A[both], real_B[both]
        metrics = self.eval_l1[prefix]
        metrics["A2B"].update(fake_B, real_B)
        metrics["B2A"].update(fake_A, real_A)
        for direction, metric in metrics.items():
            self.log(f"{prefix}/l1_{direction}", metric, on_step=False, on_epoch=True)

    def translation_visuals(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, int]]:
        """Rows of input | translation | reconstruction, for each direction."""
        G, F = self.sampler["A2B"], self.sampler["B2A"]
        fake_B, fake_A = self.translate(G, batch["A"]), self.translate(F, batch["B"])
        return {
            "A2B": self.rows(batch["A"], fake_B, self.translate(F, fake_B)),
            "B2A": self.rows(batch["B"], fake_A, self.translate(G, fake_A)),
        }
