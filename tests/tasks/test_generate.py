"""`python run.py task=generate ckpt_path=... n=N out=PATH [label=K]` (gans/tasks/generate.py)."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import open_dict
from PIL import Image

from gans.checkpoint import load_model
from gans.errors import GansError
from gans.generation import sample
from gans.tasks.generate import generate
from tests.conftest import compose_config
from tests.tasks.conftest import untrained_run
from tests.test_run import assert_ok, one_line_error, run


def test_generate_writes_a_png_folder_by_default(smoke_dcgan, tmp_path):
    ckpt = smoke_dcgan / "checkpoints" / "last.ckpt"
    assert_ok(run("task=generate", f"ckpt_path={ckpt}", "n=5", f"hydra.run.dir={tmp_path}"))
    files = sorted((tmp_path / "samples").iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(5)]
    images = np.stack([np.asarray(Image.open(f)) for f in files])
    assert images.shape == (5, 28, 28) and images.std() > 0
    # The same images `python -m gans.sample` draws with the same seed: one implementation.
    assert np.array_equal(images, sample(load_model(ckpt), 5, seed=42)[..., 0])


def test_generate_draws_one_class_of_a_conditional_model_into_an_npz(tmp_path):
    ckpt = untrained_run(tmp_path / "cgan", "model=cgan", num_classes=10)
    out = tmp_path / "threes.npz"
    assert_ok(run("task=generate", f"ckpt_path={ckpt}", "n=6", f"out={out}", "label=3", "seed=7",
                  f"hydra.run.dir={tmp_path / 'gen'}"))  # fmt: skip
    images = np.load(out)["images"]
    assert images.shape == (6, 28, 28, 1) and images.dtype == np.uint8
    model = load_model(ckpt)
    assert np.array_equal(images, sample(model, 6, seed=7, label=3))  # class 3 for every image
    assert not np.array_equal(images, sample(model, 6, seed=7, label=4))


def test_a_label_for_an_unconditional_model_fails_with_one_line(smoke_dcgan, tmp_path):
    ckpt = smoke_dcgan / "checkpoints" / "last.ckpt"
    line = one_line_error(run("task=generate", f"ckpt_path={ckpt}", "n=2", "label=3", f"hydra.run.dir={tmp_path}"))
    assert line.endswith("label=3: DCGAN is unconditional; drop label")
    assert not (tmp_path / "samples").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n": None}, "task=generate needs n=N: how many images to write"),
        ({"n": 0}, "n=0 must be a positive number of images"),
        ({"label": "three"}, "label=three must be a class index"),
        ({"ckpt_path": None}, "task=generate needs a trained model"),
    ],
)
def test_generate_refuses_bad_settings(tmp_path, settings, message):
    (tmp_path / "last.ckpt").touch()  # refused before it is read
    cfg = compose_config("task=generate", f"ckpt_path={tmp_path / 'last.ckpt'}", "n=3", f"paths.output_dir={tmp_path}")
    with open_dict(cfg):
        cfg.update(settings)
    with pytest.raises(GansError, match=message):
        generate(cfg)
