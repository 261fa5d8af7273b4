"""The module's visuals (sample grids of fixed latents, latent interpolations, translations),
saved as PNG under the run dir and sent to the loggers."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.transforms.functional import to_pil_image, to_tensor
from torchvision.utils import make_grid, save_image


class SampleGrids(L.Callback):
    """After each evaluation (and at the end of training), draw the module's `visuals()` (for a GAN:
    the fixed latents and an interpolation grid), write `<name>/iter=NNNNNNN.png` (the training
    iteration) under `dirpath` and log each image to W&B or TensorBoard. A visual may name its rows (`(images, nrow, names)`,
    a class-conditional model's classes): the names go in a margin left of the grid.

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
        visuals = pl_module.visuals(self.nrow, self.interpolation_rows, self.interpolation_steps)
        for name, (images, nrow, *row_names) in visuals.items():
            grid = self._grid(images, nrow)
            if row_names and row_names[0]:
                grid = label_rows(grid, row_names[0])
            self.save(trainer, name, grid)

    @staticmethod
    def _grid(images: Tensor, nrow: int) -> Tensor:
        return make_grid(images.float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), pad_value=1.0)

    def save(self, trainer: L.Trainer, name: str, grid: Tensor) -> None:
        iteration = getattr(trainer.lightning_module, "iteration", trainer.global_step)
        path = self.dirpath / name / f"iter={iteration:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        # Loggers count training batches, which are our iterations (global_step counts D and G updates).
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=name, images=[grid], step=step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(name, grid, step)


def label_rows(grid: Tensor, names: list[str], padding: int = 2) -> Tensor:
    """The grid (3, H, W) in [0, 1] with a white margin on the left holding each row's name."""
    image = to_pil_image(grid.clamp(0, 1))
    font = ImageFont.load_default()
    margin = int(max(ImageDraw.Draw(image).textlength(name, font=font) for name in names)) + 6
    canvas = Image.new("RGB", (image.width + margin, image.height), "white")
    canvas.paste(image, (margin, 0))
    draw, row_height = ImageDraw.Draw(canvas), (image.height - padding) / len(names)
    for i, name in enumerate(names):
        draw.text((3, padding + (i + 0.5) * row_height), name, fill="black", font=font, anchor="lm")
    return to_tensor(canvas)
