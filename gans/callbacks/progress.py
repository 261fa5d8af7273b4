"""Callbacks that count in the project's units: training iterations and images seen (kimg), not
Lightning's `global_step`, which counts optimizer steps (two or more per iteration here)."""

from __future__ import annotations

import logging

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from gans.errors import GansError

log = logging.getLogger(__name__)


def stop_training(trainer: L.Trainer) -> None:
    """Stop training after the current iteration, with the validation and checkpoints of this
    point, as early stopping does."""
    trainer.should_stop = True
    # Lightning validates on such a stop only in an epoch that `check_val_every_n_epoch` selects
    # (every 4th on the CPU default), so a stop elsewhere would end without `val/fid` or the best
    # checkpoint. None makes this epoch one; no later epoch follows.
    trainer.check_val_every_n_epoch = None


class IterationLimit(L.Callback):
    """Stop training after `max_iterations` iterations (or at `trainer.max_epochs`, whichever comes
    first). The stop runs the evaluation and checkpoints of that point, as early stopping does.

    Args:
        max_iterations: iterations (batches; each its discriminator and generator updates); None = no limit.
    """

    def __init__(self, max_iterations: int | None = None) -> None:
        if max_iterations is not None and (not isinstance(max_iterations, int) or max_iterations < 1):
            raise GansError(f"max_iterations={max_iterations} must be a positive number of iterations, or null")
        self.max_iterations = max_iterations

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed from a checkpoint at the limit (e.g. to test it with other settings) trains
        # no further; without this, the first resumed batch would run before the check below.
        if self.max_iterations is not None and pl_module.iteration >= self.max_iterations:
            log.info(f"max_iterations={self.max_iterations} already reached (iteration {pl_module.iteration}): "
                     "no further training")  # fmt: skip
            trainer.should_stop = True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if self.max_iterations is not None and pl_module.iteration >= self.max_iterations:
            stop_training(trainer)


class ProgressCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint whose file names may also use `{iteration}` and `{kimg}`,
    e.g. `best-iter{iteration:07d}`, and whose `last.ckpt` is always the latest state.

    Lightning 2.6 writes `last.ckpt` only at a step where it also saved a best checkpoint: after a
    validation that did not improve the monitored metric (or at the end of training) it kept the
    previous one, so a run resumed from `last.ckpt` silently went back to its last best iteration
    (a 65-minute SRResNet run would have resumed from 1,096 of its 1,802 iterations). Here every
    save point of the run and the end of training write it."""

    # Lightning saves either at the end of each training epoch or after each validation (it
    # decides per run); `last.ckpt` follows in the same hook, after the best checkpoint.
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._keep_last_current(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._keep_last_current(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._keep_last_current(trainer)

    def _keep_last_current(self, trainer: L.Trainer) -> None:
        # Skipped where Lightning would not save (sanity check, evaluation-only runs) and where a
        # checkpoint, and with it `last.ckpt`, was written at this step already.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _monitor_candidates(self, trainer: L.Trainer) -> dict[str, torch.Tensor]:
        candidates = super()._monitor_candidates(trainer)
        module = trainer.lightning_module
        candidates["iteration"] = torch.tensor(getattr(module, "iteration", trainer.global_step))
        candidates["kimg"] = torch.tensor(float(getattr(module, "kimg", 0.0)))
        return candidates
