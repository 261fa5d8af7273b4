"""StackGAN through `run.py`: a stage-I sweep, an exact resume inside each stage, stage II on two
CPU processes from the stage-I checkpoint with FID per stage and the text-image consistency
scores, and `gans.sample --text` (seven CLI runs, all debug=smoke)."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from gans.tools.sample import main as sample_main
from tests.test_run import assert_ok, resumed_equals_straight, run, wandb_metrics

STACKGAN = ["model=stackgan", "debug=smoke"]
NO_EVAL = ["logger=none", "test=false", "model.eval_fid=false", "optimized_metric=null"]


def test_each_stage_resumes_exactly_and_stage_two_trains_on_stage_one_with_fid_per_stage(tmp_path):
    # Stage I, a sweep of two lengths: the 1-epoch job is resumed to 2 epochs and must equal the 2-epoch job.
    sweep = tmp_path / "sweep"
    assert_ok(run("--multirun", *STACKGAN, *NO_EVAL, "trainer.max_epochs=2,1", f"hydra.sweep.dir={sweep}"))
    resumed = run(*STACKGAN, *NO_EVAL, "trainer.max_epochs=2", f"ckpt_path={sweep}/1/checkpoints/last.ckpt",
                  f"hydra.run.dir={tmp_path}/resumed")  # fmt: skip
    assert_ok(resumed)
    straight = torch.load(sweep / "0" / "checkpoints" / "last.ckpt", weights_only=True)
    again = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert straight["progress"] == again["progress"] == {"iteration": 8, "images_seen": 8 * 64}
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, again["state_dict"][key]), key
    assert not any(key.startswith("stage1.") for key in straight["state_dict"])

    stage1 = sweep / "0" / "checkpoints" / "last.ckpt"
    resumed_equals_straight(
        tmp_path / "stage2_resume", *STACKGAN, *NO_EVAL, "model.stage=2", f"model.stage1_ckpt={stage1}"
    )

    # Stage II on two processes from the stage-I checkpoint: G0 frozen, FID at each stage's side.
    run_dir = tmp_path / "stage2"
    assert_ok(run(*STACKGAN, "trainer=ddp_cpu", "model.stage=2", f"model.stage1_ckpt={stage1}", "test=false",
                  "data.max_eval_samples=16", f"hydra.run.dir={run_dir}"))  # fmt: skip
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    for key, value in straight["state_dict"].items():
        if key.startswith("generator."):  # stage I unchanged by stage II's training
            assert torch.equal(value, state["state_dict"]["stage1." + key[len("generator.") :]]), key
    metrics = wandb_metrics(run_dir)
    assert math.isfinite(metrics["val/fid"]) and math.isfinite(metrics["val/fid_stage1"])
    assert metrics["val/fid_samples"] == metrics["val/fid_samples_stage1"] == 16
    for name in ("class_acc", "tone_acc", "size_acc", "attribute_acc"):
        assert 0.0 <= metrics[f"val/{name}"] <= 1.0, name
    assert "train/kl" in metrics and "train/D(x,wrong)" in metrics
    grid = Image.open(next((run_dir / "samples").glob("iter=*.png")))
    assert grid.height == 2 + 8 * (32 + 2) and grid.width > 2 + 4 * (32 + 2)  # 8 captions x (stage I | stage II) x 2

    # A caption of the data set: its embedding is in the cache, so the encoder is not loaded again.
    out = tmp_path / "boots.npz"
    assert (
        sample_main([str(run_dir / "checkpoints" / "last.ckpt"), "3", str(out), "--text", "a small dark ankle boot"])
        == 0
    )
    assert np.load(out)["images"].shape == (3, 32, 32, 1)
