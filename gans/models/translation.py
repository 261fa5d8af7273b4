"""What the image-to-image models (CycleGAN, Pix2pix) share on top of `AdversarialModule`.

Batches are {"A": inputs, "B": targets or the other domain, "index"}, images in [-1, 1].
There is no latent: evaluation translates the evaluation images (`evaluation_pairs`), and the
sample grids show translations of a fixed set of validation images, kept from the first
validation batch.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor, nn

from gans.models.base import AdversarialModule, eval_mode


class ImageToImageModule(AdversarialModule):
    """Base of the translation models. `num_fixed_samples` caps the validation items kept for the
    sample grids (each a row of the grid)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A plain attribute, not a buffer: it stays out of checkpoints and out of the base's
        # broadcast of buffers across DDP processes (the grids are drawn on rank 0 only).
        self._fixed_batch: dict[str, Tensor] | None = None

    @torch.no_grad()
    def translate(self, network: nn.Module, images: Tensor) -> Tensor:
        """network(images) in eval mode without gradients, as float32 (for metrics and images)."""
        with eval_mode(network):
            return network(images.to(self.device)).float()

    def prepare_evaluation(self, batch: dict[str, Tensor]) -> None:
        """Translate at the run's precision whether or not FID is computed: the error metrics read
        the same cached translations (`evaluation_pairs` stores them in the batch)."""
        self.evaluation_pairs(batch)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._keep_fixed_batch(batch)
        super().validation_step(batch, batch_idx)

    # -- sample grids -----------------------------------------------------------------------------
    def _keep_fixed_batch(self, batch: dict[str, Tensor]) -> None:
        if self._fixed_batch is None:
            n = self.num_fixed_samples
            # The items' indices too: a model may draw an item's evaluation noise from its index.
            keys = [k for k in ("A", "B", "index") if k in batch]
            self._fixed_batch = {k: torch.as_tensor(batch[k])[:n].detach().clone() for k in keys}

    def fixed_batch(self, n: int) -> dict[str, Tensor] | None:
        """The first n kept validation items, on the module's device; taken from the data module's
        validation loader if no validation batch has been seen yet (None if there is none)."""
        if self._fixed_batch is None:
            datamodule = self._trainer.datamodule if self._trainer is not None else None
            batch = None if datamodule is None else next(iter(datamodule.val_dataloader()), None)
            if batch is None:
                return None
            self._keep_fixed_batch(batch)
        return {k: v[:n].to(self.device) for k, v in self._fixed_batch.items()}

    @staticmethod
    def rows(*columns: Tensor) -> tuple[Tensor, int]:
        """Images interleaved so a grid with len(columns) images per row shows item i of every
        column on row i; grayscale columns are repeated to RGB when another column is RGB."""
        channels = max(c.shape[1] for c in columns)
        columns = tuple(c.float().expand(-1, channels, -1, -1) for c in columns)
        return torch.stack(columns, dim=1).flatten(0, 1), len(columns)

    def visuals(self, nrow: int, interpolation_rows: int, interpolation_steps: int) -> dict[str, tuple[Tensor, int]]:
        """Translations of `nrow` fixed validation items (no latent interpolations here)."""
        batch = self.fixed_batch(nrow)
        return {} if batch is None else self.translation_visuals(batch)

    @abstractmethod
    def translation_visuals(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, int]]:
        """{grid name: (images, images per row)} for a batch of fixed validation items."""
