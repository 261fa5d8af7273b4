"""DCGAN: Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", trained with the GAN objective of Goodfellow et
al. 2014 ("Generative Adversarial Nets"), non-saturating generator loss by default.

The course lecture's stabilising tricks that live in the training step are switches here (the
ones inside the networks are in `gans.nets.dcgan`, Adam's beta1 in the optimizer config, the
noise distribution in the base): noisy labels (`real_label`, `fake_label`), occasional label
flipping (`label_flip`), separate real and generated batches (`mixed_batches`) and images in
[-1, 1] for a tanh generator (`output`). The conditional GAN (`gans.models.cgan`) is this model
with a condition, so every switch applies to it too.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from gans import losses
from gans.errors import GansError
from gans.models.base import AdversarialModule

OUTPUTS = ("tanh", "sigmoid")


def label_range(key: str, value: float | Sequence[float]) -> tuple[float, float]:
    """A BCE target range [low, high] from a number (a constant target) or a pair."""
    pair = (value, value) if isinstance(value, (int, float)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, float)) for v in pair) or pair[0] > pair[1]:
        raise GansError(f"model.{key}={value!r} must be a number or a range [low, high] with low <= high")
    return float(pair[0]), float(pair[1])


class DCGAN(AdversarialModule):
    """Args (besides `AdversarialModule`'s):
    generator_objective: "nonsaturating" (max log D(G(z)), Goodfellow et al. 2014 sec. 3) or
        "minimax" (min log(1 - D(G(z))), the original game, which saturates).
    real_label, fake_label: the discriminator's targets for real and generated images, a number or
        a range [low, high] drawn from uniformly per image (`gans.losses.target_labels`): hard 1
        and 0 (Goodfellow et al. 2014), one-sided label smoothing real_label=0.9 (Salimans et al.
        2016), the lecture's noisy labels real_label=[0.7, 1.2], fake_label=[0.0, 0.3].
    label_flip: probability that a real/generated pair swaps targets (occasional label flipping).
    mixed_batches: feed the discriminator one batch of real and generated images together; the
        lecture's trick is the opposite (False): separate batches, so batch norm never
        normalises a real image with statistics of generated ones.
    output: "tanh" (images in [-1, 1], the lecture's trick) or "sigmoid" (images in [0, 1]); it
        must match the generator's `output` (the config interpolates one from the other).
    """

    def __init__(
        self,
        *args,
        generator_objective: str = "nonsaturating",
        real_label: float | Sequence[float] = 1.0,
        fake_label: float | Sequence[float] = 0.0,
        label_flip: float = 0.0,
        mixed_batches: bool = False,
        output: str = "tanh",
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        objectives = {"nonsaturating": losses.nonsaturating_generator_loss, "minimax": losses.minimax_generator_loss}
        if generator_objective not in objectives:
            raise ValueError(f"generator_objective must be one of {sorted(objectives)}, got {generator_objective!r}")
        if output not in OUTPUTS:
            raise GansError(f"model.output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        if not 0.0 <= label_flip < 0.5:
            raise GansError(f"model.label_flip={label_flip} must be a probability in [0, 0.5)")
        generator_output = getattr(self.generator, "output", output)
        if generator_output != output:
            raise GansError(f"model.output={output} but model.generator.output={generator_output}: set them alike")
        self.generator_objective = objectives[generator_objective]
        self.real_label, self.fake_label = label_range("real_label", real_label), label_range("fake_label", fake_label)
        self.label_flip, self.mixed_batches, self.output = label_flip, mixed_batches, output

    # -- images in the generator's range ------------------------------------------------------
    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Real images in the generator's output range: [0, 1] for a sigmoid generator."""
        batch = super().prepare_batch(batch)
        if self.output == "sigmoid":
            batch = {**batch, "image": batch["image"].add(1.0).mul(0.5)}
        return batch

    def synthesize(self, network, z: Tensor, condition: Tensor | None) -> Tensor:
        """Samples for grids and FID, always in [-1, 1] (the data's range)."""
        images = super().synthesize(network, z, condition)
        return images.mul(2.0).sub(1.0) if self.output == "sigmoid" else images

    def fake_images(self, n: int, condition: Tensor | None) -> Tensor:
        """n generated images (in the generator's range) for training, with the given conditions."""
        return super().synthesize(self.generator, self.sample_latent(n), condition)  # the raw output range

    def discriminate(self, images: Tensor, condition: Tensor | None) -> Tensor:
        return self.discriminator(images) if condition is None else self.discriminator(images, condition)

    # -- the two updates (Goodfellow et al. 2014, Algorithm 1) ---------------------------------
    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Ascend log D(x) + log(1 - D(G(z))) on a real minibatch and a fresh generated one."""
        real, condition = batch["image"], self.condition_of(batch)
        fake = self.fake_images(len(real), condition)  # no graph into G: G is toggled off here
        if self.mixed_batches:
            both = None if condition is None else torch.cat([condition, condition])
            real_logits, fake_logits = self.discriminate(torch.cat([real, fake]), both).split(len(real))
        else:
            real_logits, fake_logits = self.discriminate(real, condition), self.discriminate(fake, condition)
        loss = losses.bce_discriminator_loss(
            real_logits, fake_logits, self.real_label, self.fake_label, self.label_flip
        )
        return loss, self.mean_probabilities({"D(x)": real_logits, "D(G(z))": fake_logits})

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Descend the generator objective on a fresh minibatch of noise."""
        condition = self.condition_of(batch)
        fake = self.fake_images(len(batch["image"]), condition)
        return self.generator_objective(self.discriminate(fake, condition)), {}
