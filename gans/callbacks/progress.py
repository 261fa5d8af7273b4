"""Callbacks that count in the project's units: training iterations and images seen (kimg), not
Lightning's `global_step`, which counts optimizer steps (two or more per iteration here)."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint


class IterationLimit(L.Callback):
    """Stop training after `max_iterations` iterations (or at `trainer.max_epochs`, whichever comes
    first). The stop runs the evaluation and checkpoints of that point, as early stopping does.

    Args:
        max_iterations: iterations (batches; each its discriminator and generator updates); None = no limit.
    """

    def __init__(self, max_iterations: int | None = None) -> None:
        if max_iterations is not None and max_iterations < 1:
            raise ValueError(f"max_iterations must be a positive number of iterations, got {max_iterations}")
        self.max_iterations = max_iterations

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if self.max_iterations is not None and pl_module.iteration >= self.max_iterations:
            trainer.should_stop = True


class ProgressCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint whose file names may also use `{iteration}` and `{kimg}`,
    e.g. `best-iter{iteration:07d}`."""

    def _monitor_candidates(self, trainer: L.Trainer) -> dict[str, torch.Tensor]:
        candidates = super()._monitor_candidates(trainer)
        module = trainer.lightning_module
        candidates["iteration"] = torch.tensor(getattr(module, "iteration", trainer.global_step))
        candidates["kimg"] = torch.tensor(float(getattr(module, "kimg", 0.0)))
        return candidates
