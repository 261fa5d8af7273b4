"""`python run.py task=evaluate ckpt_path=...` (gans/tasks/evaluate.py): metrics.json with FID/KID
from the base's test evaluation, precision/recall/density/coverage, memorisation and its picture."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from tests.tasks.conftest import paired_folder, untrained_run
from tests.test_run import assert_ok, one_line_error, run, wandb_metrics

SAMPLE_METRICS = ("precision", "recall", "density", "coverage")


def test_evaluate_scores_a_smoke_checkpoint_as_its_training_run_did(smoke_dcgan, tmp_path):
    (best,) = (smoke_dcgan / "checkpoints").glob("best-*.ckpt")  # what the training run's test scored
    assert_ok(run("task=evaluate", f"ckpt_path={best}", f"hydra.run.dir={tmp_path}"))
    report = json.loads((tmp_path / "metrics.json").read_text())
    metrics = report["metrics"]
    assert set(metrics) == {"fid", "kid", *SAMPLE_METRICS, "memorisation"} and report["notes"] == []
    for name in ("fid", "kid", *SAMPLE_METRICS):
        entry = metrics[name]
        assert math.isfinite(entry["value"]), name
        assert entry["real"] == entry["generated"] == 32 and entry["protocol"], name  # debug=smoke's 32 test images
    for name in ("precision", "recall", "coverage"):
        assert 0.0 <= metrics[name]["value"] <= 1.0
    assert "k = 3" in metrics["precision"]["protocol"] and "k = 5" in metrics["coverage"]["protocol"]
    # trainer.test on the loaded weights: the very FID the training run's test logged.
    assert metrics["fid"]["value"] == pytest.approx(wandb_metrics(smoke_dcgan)["test/fid"], rel=1e-5)
    assert report["model_metrics"]["test/fid"] == metrics["fid"]["value"]
    assert "test/class_coverage" in report["model_metrics"]  # the model's own metrics come along
    memorisation = metrics["memorisation"]
    assert 0.0 <= memorisation["fraction_closer"] <= 1.0 and math.isfinite(memorisation["median_ratio"])
    assert (memorisation["generated"], memorisation["test"], memorisation["training"]) == (32, 32, 55000)
    # Eight samples above their nearest training images, each 28x28 enlarged twice, in two rows.
    pairs = np.asarray(Image.open(tmp_path / memorisation["closest_pairs"]))
    assert pairs.shape[0] == 2 + 2 * (56 + 2) and pairs.shape[1] > 8 * (56 + 2) and pairs.std() > 0


def test_evaluate_a_translation_model_without_sample_metrics(tmp_path):
    data = paired_folder(tmp_path / "pairs", {"train": 4, "test": 6})
    ckpt = untrained_run(
        tmp_path / "pix2pix", "model=pix2pix", "data=paired_folder", f"data.root={data}", "data.image_size=32",
        "data.load_size=32", "data.val_size=2", "data.direction=AtoB",
    )  # fmt: skip
    # A data setting given on the command line applies on top of the run's data config.
    assert_ok(run("task=evaluate", f"ckpt_path={ckpt}", "data.max_eval_samples=5", f"hydra.run.dir={tmp_path / 'ev'}"))
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(report["metrics"]) == {"fid", "kid"} and report["metrics"]["fid"]["generated"] == 5
    assert "output for the test input" in report["metrics"]["fid"]["protocol"]
    for key in ("test/fid", "test/l1", "test/psnr", "test/ssim"):
        assert math.isfinite(report["model_metrics"][key]), key
    (note,) = report["notes"]
    assert "Pix2Pix translates test images" in note and "do not apply" in note
    assert not (tmp_path / "ev" / "closest_pairs.png").exists()


@pytest.mark.parametrize(
    ("ckpt_path", "message"),
    [
        (None, "task=evaluate needs a trained model: add ckpt_path=RUN_DIR/checkpoints/last.ckpt"),
        ("nowhere/last.ckpt", "ckpt_path=nowhere/last.ckpt does not exist: pass a .ckpt written by run.py"),
    ],
)
def test_evaluate_without_a_checkpoint_fails_with_one_line(tmp_path, ckpt_path, message):
    given = [] if ckpt_path is None else [f"ckpt_path={ckpt_path}"]
    assert one_line_error(run("task=evaluate", *given, f"hydra.run.dir={tmp_path}")).endswith(message)


def test_a_run_whose_data_config_no_longer_builds_is_one_line_naming_data(smoke_dcgan, tmp_path):
    import shutil

    from omegaconf import OmegaConf

    old = tmp_path / "old_run"  # a run of older code: its data module has since moved
    shutil.copytree(smoke_dcgan / ".hydra", old / ".hydra")
    shutil.copytree(smoke_dcgan / "checkpoints", old / "checkpoints")
    config = OmegaConf.load(old / ".hydra" / "config.yaml")
    config.data._target_ = "gans.data.image_pairs.FashionEdgesDataModule"
    OmegaConf.save(config, old / ".hydra" / "config.yaml")
    line = one_line_error(run("task=evaluate", f"ckpt_path={old}/checkpoints/last.ckpt", f"hydra.run.dir={tmp_path}/e"))
    assert "its run's data config does not build with this code" in line
    assert line.endswith("pass data=NAME, a data config of this version (conf/data)")
