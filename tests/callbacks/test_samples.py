"""Sample grids: PNGs of the module's visuals, interpolation rows that start and end at the fixed latents."""

import lightning as L
import torch
from PIL import Image

from gans.callbacks.samples import SampleGrids
from tests.models.test_base import make_model, make_trainer


def test_grids_are_written_as_png_after_training(tmp_path, random_images):
    model = make_model(num_fixed_samples=16)
    callback = SampleGrids(str(tmp_path / "run"), nrow=4, interpolation_rows=2, interpolation_steps=5)
    trainer: L.Trainer = make_trainer(tmp_path, limit_train_batches=2, limit_val_batches=0, callbacks=[callback])
    trainer.fit(model, datamodule=random_images())
    (samples,) = (tmp_path / "run" / "samples").glob("iter=*.png")
    (interpolation,) = (tmp_path / "run" / "interpolation").glob("iter=*.png")
    # make_grid pads 2 px: 4 columns and 4 rows of 16 px images; 5 columns and 2 rows.
    assert Image.open(samples).size == (4 * 18 + 2, 4 * 18 + 2)
    assert Image.open(interpolation).size == (5 * 18 + 2, 2 * 18 + 2)
    assert samples.name == f"iter={model.iteration:07d}.png" and model.iteration == 2  # iterations, not optimizer steps


def test_interpolation_rows_run_from_the_second_latent_to_the_first():
    model = make_model(num_fixed_samples=8)
    visuals = model.visuals(nrow=4, interpolation_rows=2, interpolation_steps=6)
    images, steps = visuals["interpolation"]
    assert steps == 6 and images.shape == (12, 1, 16, 16)
    z = model.fixed_z
    ends = model.generate_from(torch.stack([z[2], z[0], z[3], z[1]]))
    torch.testing.assert_close(images[[0, 5, 6, 11]], ends)
