"""experiments/friends.py with stand-in models (no checkpoints, no Fashion-MNIST): the PCA baseline
takes the AE's code size, reconstructions are scored on the [0, 1] scale, samples are searched in
the training images, and the figure has a labelled row for each part."""

from __future__ import annotations

import pytest
import torch

from experiments.friends import evaluate, figure, main
from gans.data.base import to_float
from gans.metrics.pca import PCABaseline

TRAIN = torch.randint(0, 256, (300, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
TEST = torch.randint(0, 256, (40, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


class CopyingAE:
    """An 'autoencoder' with a 3-number code whose samples are training images and whose
    reconstructions shrink the input by 10%."""

    code_dim, sample_seed, prior = 3, 0, "expost"

    def draw_latent(self, n: int, generator: torch.Generator, device) -> torch.Tensor:
        return torch.rand(n, 3, generator=generator, device=device)

    def generate_from(self, z: torch.Tensor) -> torch.Tensor:
        return to_float(TRAIN[(z[:, 0] * len(TRAIN)).long()])

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return 0.9 * images


def test_evaluate_with_a_stand_in_autoencoder():
    results, rows = evaluate({"ae": CopyingAE()}, TRAIN, TEST, n=20, pca_components=None, seed=None, columns=4)
    assert results["pca"]["components"] == 3
    assert results["pca"]["test_mse"] == pytest.approx(PCABaseline(3).fit(TRAIN).mse(TEST[:20]))
    # 0.9 x - x = -0.1 x on [-1, 1], -0.05 x on [0, 1]
    expected = float((0.05 * to_float(TEST[:20]).double()).square().mean())
    assert results["models"]["ae"]["reconstructions"]["test_mse"] == pytest.approx(expected)
    samples = results["models"]["ae"]["samples"]
    assert samples["copies"] == 20 and samples["median_nn"] == 0.0 and samples["fraction_closer"] == 1.0
    assert results["models"]["ae"]["seed"] == 1 and results["real_test"]["median_nn"] > 0
    assert [name for name, _ in rows] == ["ae samples", "nearest training", "ae closest", "its training image",
                                          "test input", "PCA, 3 components", "ae reconstruction"]  # fmt: skip
    assert all(images.shape == (4, 1, 4, 4) for _, images in rows)
    torch.testing.assert_close(rows[0][1], rows[1][1])  # copies: each sample is its nearest training image
    grid = figure(rows, 4)
    assert grid.shape[0] == 3 and grid.shape[1] == 2 + 7 * (8 + 2)  # 7 rows of 2x-enlarged 4-pixel images


def test_no_code_size_means_no_pca_row():
    results, rows = evaluate({}, TRAIN, TEST, n=10, pca_components=None, seed=0, columns=4)
    assert results["pca"] is None and rows == [] and results["models"] == {}


def test_a_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(["--dcgan", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "f.json")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main([]) == 1
    assert "at least one checkpoint" in capsys.readouterr().err
