"""`task=translate` (gans/tasks/translate.py): every test image of each direction, written as a PNG."""

from __future__ import annotations

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import open_dict
from PIL import Image

from gans.tasks.translate import translate
from tests.conftest import compose_config
from tests.tasks.conftest import random_splits


def test_translate_writes_every_test_image_of_both_unequal_directions(tmp_path):
    # Defect 6 (issue 6): the test sets were cut to min(|testA|, |testB|), so task=translate wrote
    # 120 of horse2zebra's translations each way and skipped 20 zebras. Here testA has 3 images
    # and testB 5: all 3 A2B and all 5 B2A are written, named by the input's place in its folder.
    data = random_splits(tmp_path / "data", {"trainA": 4, "trainB": 4, "testA": 3, "testB": 5}, (12, 12, 3))
    cfg = compose_config(
        "task=translate", "model=cyclegan", "data=unpaired_folder", f"data.root={data}", "data.image_size=32",
        "data.load_size=36", "data.eval_batch_size=2", "model.generator.modules.A2B.width=4",
        "model.generator.modules.B2A.width=4", "model.discriminator.modules.A.width=4",
        "model.discriminator.modules.B.width=4", f"paths.output_dir={tmp_path / 'run'}",
    )  # fmt: skip
    model = instantiate(cfg.model)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "last.ckpt")
    with open_dict(cfg):
        cfg.ckpt_path = str(tmp_path / "last.ckpt")
    assert translate(cfg) == 3 + 5
    out = tmp_path / "run" / "translations"
    assert sorted(p.name for p in (out / "A2B").iterdir()) == [f"{i:06d}.png" for i in range(3)]
    assert sorted(p.name for p in (out / "B2A").iterdir()) == [f"{i:06d}.png" for i in range(5)]
    assert np.asarray(Image.open(out / "B2A" / "000004.png")).shape == (32, 32, 3)
