"""Conditional GAN: Mirza & Osindero 2014, "Conditional Generative Adversarial Nets": the GAN
game of Goodfellow et al. 2014 with both players given the class label y,

    min_G max_D  E_x,y[log D(x | y)] + E_z,y[log(1 - D(G(z | y) | y))]   (eq. 2),

on the DCGAN networks (`gans.nets.cgan`), with the discriminator conditioned by input
concatenation (the paper) or by projection (Miyato & Koyama 2018). Every DCGAN switch (losses,
the lecture's tricks) applies: this model is DCGAN with a condition.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gans.models.dcgan import DCGAN
from gans.nets.cgan import check_classes


class CGAN(DCGAN):
    """Args (besides `DCGAN`'s):
    num_classes: label count, `data.num_classes` (run.py reads it from the data).

    A generated image is judged with the label it was made for: in training, the labels of the
    real minibatch it is paired with (so real and generated batches have the same class mix); in
    evaluation, generated image i takes the label of real image i.
    """

    class_conditional = True

    def __init__(self, *args, num_classes: int, **kwargs) -> None:
        self.num_classes = check_classes(num_classes)  # before the base draws the grid's conditions
        super().__init__(*args, **kwargs)

    def condition_of(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["label"]

    def sample_condition(self, n: int) -> Tensor:
        return torch.randint(0, self.num_classes, (n,), device=self.device)

    def grid_conditions(self, n: int) -> Tensor:
        return torch.arange(n) % self.num_classes  # interpolation row i: class i

    def visuals(self, nrow: int, interpolation_rows: int, interpolation_steps: int) -> dict:
        """The sample grid has one row per class, labelled with its name, and the same fixed latent
        down each column, so a column holds one "style" across the classes."""
        grids = super().visuals(nrow, interpolation_rows, interpolation_steps)
        columns = min(nrow, len(self.fixed_z))
        z = self.fixed_z[:columns].repeat(self.num_classes, 1)
        labels = torch.arange(self.num_classes, device=z.device).repeat_interleave(columns)
        grids["samples"] = (self.generate_from(z, labels), columns, self.class_names(self.num_classes))
        return grids
