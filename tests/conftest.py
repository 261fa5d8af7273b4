"""Shared fixtures: a tiny in-memory data set, a per-session cache for Inception files."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from gans.data.base import InMemoryImageDataModule

# One cache for the whole session (converted Inception weights, real-image features), set before
# any test imports the metrics, and shared with the CLI subprocesses through the environment.
if "GANS_CACHE" not in os.environ:
    os.environ["GANS_CACHE"] = tempfile.mkdtemp(prefix="gans-test-cache-")
    # The process that made it removes it (100 MB each: converted Inception weights, features).
    atexit.register(shutil.rmtree, os.environ["GANS_CACHE"], ignore_errors=True)
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
if "PYTEST_XDIST_WORKER" in os.environ:
    # `make test` runs one worker per core: a worker (and the CLI runs it starts) then uses one
    # thread, or the workers' thread pools would fight over the same cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


class RandomImages(InMemoryImageDataModule):
    """Seeded random uint8 images with labels, for fast model and trainer tests."""

    name = "random"

    def __init__(self, num: int = 96, channels: int = 1, size: int = 16, **kwargs) -> None:
        kwargs.setdefault("val_size", 16)
        kwargs.setdefault("batch_size", 8)
        kwargs.setdefault("eval_batch_size", 8)
        super().__init__(**kwargs)
        self.shape = (num, channels, size, size)

    def load(self):
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, self.shape, dtype=torch.uint8, generator=g)
        return images, torch.randint(0, 10, (self.shape[0],), generator=g), None, None


@pytest.fixture
def random_images() -> type[RandomImages]:
    return RandomImages


# -- FID: two small Fashion-MNIST sets and their reference scores, so Inception runs once ----------
FASHION_MNIST_TEST_IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"  # `make install`
FID_SET_SIZE = 40  # Inception costs ~0.1 s per image on a CPU core


@pytest.fixture(scope="session")
def fid_image_sets() -> tuple[torch.Tensor, torch.Tensor]:
    """Real Fashion-MNIST test images, and a disjoint set with Gaussian noise: RGB uint8 (N, 3, 28, 28)."""
    from pathlib import Path

    from gans.data.fashion_mnist import read_idx

    images = torch.from_numpy(read_idx(Path(FASHION_MNIST_TEST_IMAGES))[: 2 * FID_SET_SIZE].copy())
    real, other = images[:FID_SET_SIZE], images[FID_SET_SIZE:]
    noise = 40 * torch.randn(other.shape, generator=torch.Generator().manual_seed(0))
    noisy = (other.float() + noise).round().clamp(0, 255).to(torch.uint8)
    return real.unsqueeze(1).repeat(1, 3, 1, 1), noisy.unsqueeze(1).repeat(1, 3, 1, 1)


@pytest.fixture(scope="session")
def fid_image_dirs(fid_image_sets, tmp_path_factory):
    """The two sets as folders of RGB PNGs: (real_dir, fake_dir)."""
    from PIL import Image

    dirs = []
    for name, images in zip(("real", "fake"), fid_image_sets):
        folder = tmp_path_factory.mktemp(f"fid-{name}")
        for i, image in enumerate(images):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
        dirs.append(folder)
    return tuple(dirs)


@pytest.fixture(scope="session")
def fid_reference(fid_image_sets):
    """A `FeatureDistances` (FID, and KID with subsets of 10) fed the real and fake sets, and its scores."""
    import warnings

    from gans.metrics.fid import FeatureDistances

    real, fake = fid_image_sets
    with warnings.catch_warnings():  # torch.jit's deprecation note (weights conversion), KID's buffer note
        warnings.simplefilter("ignore")
        metric = FeatureDistances(kid=True, kid_subset_size=10)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return metric, {name: float(value) for name, value in metric.compute().items()}


def compose_config(*overrides: str):
    """The config `python run.py <overrides>` composes (resolvers registered, Hydra not run)."""
    from hydra import compose, initialize_config_dir

    from gans.config import register_resolvers

    register_resolvers()
    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(str(conf), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """`python run.py debug=smoke` (DCGAN on Fashion-MNIST, W&B offline) once per session:
    (run dir, the finished process). The CLI test checks the run; the tasks that read a
    checkpoint (evaluate, generate) use its checkpoints."""
    from tests.test_run import run

    run_dir = tmp_path_factory.mktemp("smoke_run")
    return run_dir, run("debug=smoke", f"hydra.run.dir={run_dir}")
