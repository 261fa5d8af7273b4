"""Run dirs for the tasks that read a checkpoint: the session's smoke-trained DCGAN, and untrained
models saved in the layout `run.py` writes (config beside the checkpoints) where training adds
nothing to what a test checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict
from PIL import Image

from tests.conftest import compose_config
from tests.test_run import assert_ok


@pytest.fixture(scope="session")
def smoke_dcgan(smoke_run) -> Path:
    """The run dir of the session's `python run.py debug=smoke` (DCGAN on Fashion-MNIST, test FID
    on 32 images; tests/conftest.py), shared with tests/test_run.py."""
    run_dir, result = smoke_run
    assert_ok(result)
    return run_dir


def random_splits(root: Path, counts: dict[str, int], shape: tuple[int, int, int]) -> Path:
    """root/<split>/<i>.png: counts[split] seeded random RGB images of `shape` (height, width, 3)."""
    rng = np.random.default_rng(0)
    for split, n in counts.items():
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / split / f"{i}.png")
    return root


def paired_folder(root: Path, counts: dict[str, int]) -> Path:
    """A pix2pix folder (the authors' layout): each split's files are [A | B], 32x32 halves."""
    return random_splits(root, counts, (32, 64, 3))


def untrained_run(run_dir: Path, *overrides: str, num_classes: int = 0) -> Path:
    """A run dir holding the composed config and a checkpoint of the freshly initialised model;
    returns the checkpoint's path."""
    cfg = compose_config(*overrides)
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")  # unresolved, as Hydra saves it
    with open_dict(cfg):
        cfg.data.num_classes = num_classes
    state = {"state_dict": instantiate(cfg.model).state_dict(), "hyper_parameters": {"num_classes": num_classes}}
    torch.save(state, run_dir / "checkpoints" / "last.ckpt")
    return run_dir / "checkpoints" / "last.ckpt"
