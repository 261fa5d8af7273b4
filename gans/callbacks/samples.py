"""Sample grids of the fixed latents and latent interpolations, saved as PNG and sent to the loggers."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor
from torchvision.utils import make_grid, save_image


def interpolate(z1: Tensor, z2: Tensor, steps: int) -> Tensor:
    """Rows of latents z = t z1 + (1 - t) z2 for t from 0 to 1: (len(z1) * steps, dim)."""
    t = torch.linspace(0.0, 1.0, steps, device=z1.device).view(1, steps, 1)
    return (t * z1.unsqueeze(1) + (1.0 - t) * z2.unsqueeze(1)).flatten(0, 1)


class SampleGrids(L.Callback):
    """After each evaluation (and at the end of training), draw the module's fixed latents and an
    interpolation grid, write `samples/step=NNNNNNN.png` and `interpolation/...png` under
    `dirpath`, and log both images to W&B or TensorBoard.

    Args:
        dirpath: where PNGs go (the Hydra run dir by default).
        nrow: images per grid row.
        interpolation_rows: pairs of latents to interpolate between (0 disables).
        interpolation_steps: images per interpolation row.
    """

    def __init__(self, dirpath: str, nrow: int = 8, interpolation_rows: int = 8, interpolation_steps: int = 10) -> None:
        self.dirpath = Path(dirpath)
        self.nrow, self.interpolation_rows, self.interpolation_steps = nrow, interpolation_rows, interpolation_steps

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.draw(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.draw(trainer, pl_module)

    @rank_zero_only
    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        z = getattr(pl_module, "fixed_z", None)
        if z is None:
            return
        grids = {"samples": self._grid(pl_module.generate_from(z), self.nrow)}
        rows = min(self.interpolation_rows, len(z) // 2)
        if rows and self.interpolation_steps > 1:
            path = interpolate(z[:rows], z[rows : 2 * rows], self.interpolation_steps)
            grids["interpolation"] = self._grid(pl_module.generate_from(path), self.interpolation_steps)
        for name, grid in grids.items():
            self.save(trainer, name, grid)

    @staticmethod
    def _grid(images: Tensor, nrow: int) -> Tensor:
        return make_grid(images.float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), pad_value=1.0)

    def save(self, trainer: L.Trainer, name: str, grid: Tensor) -> None:
        path = self.dirpath / name / f"step={trainer.global_step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        # Loggers count training batches (Lightning's x-axis); global_step counts D and G updates.
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=name, images=[grid], step=step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(name, grid, step)
