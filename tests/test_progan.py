"""ProGAN through `run.py`: a debug=smoke sweep grows through three sides to FID, the growth strip
and (with class labels) the class-conditional metrics, two CPU processes with inactive blocks,
`gans.sample` at the side reached, exact resume inside a fade-in, and a one-line error for an
image folder whose side is not a power of two."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from gans.tools.sample import main as sample_main
from tests.test_run import assert_ok, one_line_error, resumed_equals_straight, run, wandb_metrics
from tests.test_wgan_cgan import image_folder

NO_EVAL = ["logger=none", "test=false", "model.eval_fid=false", "optimized_metric=null"]


def test_smoke_runs_of_a_sweep_grow_to_the_final_side_with_fid_a_growth_strip_and_class_labels(tmp_path):
    # 16x16 data: 4x4, 8x8 and 16x16 in four iterations of 16 images, fully faded in at the end.
    sweep = tmp_path / "sweep"
    assert_ok(run("--multirun", "model=progan", "model.num_classes=0,10", "data.image_size=16", "debug=smoke",
                  f"hydra.sweep.dir={sweep}"))  # fmt: skip
    for job in ("0", "1"):
        state = torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True)
        assert state["progress"]["images_seen"] == 4 * 16
        metrics = wandb_metrics(sweep / job)
        assert math.isfinite(metrics["val/fid"]) and math.isfinite(metrics["test/fid"])
        strip = Image.open(next((sweep / job / "growth").glob("iter=*.png")))
        assert strip.height == 2 + 3 * (16 + 2)  # rows 4x4, 8x8 and 16x16, each at 16x16
    assert "test/class_coverage" in wandb_metrics(sweep / "0")
    conditional = wandb_metrics(sweep / "1")  # the class-conditional metrics at the final side
    assert 0.0 <= conditional["test/class_acc"] <= 1.0 and math.isfinite(conditional["test/intra_fid"])


def test_two_cpu_processes_train_with_blocks_not_yet_grown_and_class_labels(tmp_path):
    assert_ok(run("model=progan", "debug=smoke", "trainer=ddp_cpu", "model.num_classes=${data.num_classes}", *NO_EVAL,
                  f"hydra.run.dir={tmp_path}"))  # fmt: skip
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    assert state["progress"]["images_seen"] == 4 * 16 * 2  # two processes: 32x32 reached, stable from 96
    top = [v for k, v in state["state_dict"].items() if k.startswith("generator.blocks.2.")]
    assert top and all(torch.isfinite(v).all() for v in top)
    assert state["state_dict"]["discriminator.last.6.weight"].shape[0] == 1 + 10  # score and class logits
    # gans.sample restores the stage with the weights: images at the side the run reached.
    assert sample_main([str(ckpt), "4", str(tmp_path / "bags.npz"), "--label", "8"]) == 0
    assert np.load(tmp_path / "bags.npz")["images"].shape == (4, 32, 32, 1)


def test_a_run_resumed_inside_a_fade_in_continues_exactly(tmp_path):
    # 8x8 fades in over images 16 to 80: the first run stops at 64 images, alpha 0.75.
    straight, _ = resumed_equals_straight(tmp_path, "model=progan", "model.fade_images=64", "debug=smoke", *NO_EVAL)
    first = torch.load(tmp_path / "first" / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["progress"]["images_seen"] == 64 and straight["progress"]["images_seen"] == 128


def test_an_image_folder_whose_side_is_not_a_power_of_two_is_one_line(tmp_path):
    root = image_folder(tmp_path / "shapes", None)
    line = one_line_error(run("model=progan", "data=image_folder", f"data.root={root}", "data.image_size=48",
                              "data.batch_size=4", "data.val_size=2", "data.test_size=2", f"hydra.run.dir={tmp_path}/run"))  # fmt: skip
    assert line.endswith("data.image_size=48 is not a power of two of at least 4: ProGAN grows by doubling from "
                         "4x4; use e.g. data.image_size=64")  # fmt: skip
