"""SRResNet and SRGAN through `run.py`: a sweep of debug=smoke runs at x4 and x2 with PSNR/SSIM
beside bicubic and the grids, each checkpoint then upscaling a folder (task=upscale); SRGAN from
the SRResNet checkpoint (FID on HR/SR tiles) on two CPU processes with the offline content-loss
line and the step schedule; exact resume; and the one-line errors of an HR image smaller than the
crop, a scale the generator cannot do and a missing generator_init file."""

from __future__ import annotations

import math

import torch
from PIL import Image

from tests.data.test_super_resolution import photo_folder
from tests.test_run import assert_ok, one_line_error, resumed_equals_straight, run, wandb_metrics

NO_EVAL = ["logger=none", "test=false", "model.eval_fid=false", "optimized_metric=null"]
TINY = ["model.generator.blocks=2", "model.generator.width=8", "data.crop_size=16", "data.batch_size=4",
        "data.crops_per_image=2", "data.eval_max_side=32", "data.fid_patch=16"]  # fmt: skip


def folders(tmp_path) -> list[str]:
    train = photo_folder(tmp_path / "photos" / "train", [(52, 60), (49, 64), (64, 64), (56, 50), (60, 49)])
    test = photo_folder(tmp_path / "photos" / "test", [(37, 45), (70, 90)], seed=50)
    return [f"data.train={train}", f"data.test={test}", "data.val_size=1"]


def test_smoke_sweep_at_x4_and_x2_scores_sr_beside_bicubic_with_grids(tmp_path):
    sweep = tmp_path / "sweep"
    # FID (a 2048-d matrix square root, ~30 s per evaluation on this CPU) is checked in the next test.
    assert_ok(run("--multirun", "model=srresnet", "debug=smoke", *TINY, *folders(tmp_path), "data.scale=4,2",
                  "model.eval_fid=false", "optimized_metric=null", f"hydra.sweep.dir={sweep}"))  # fmt: skip
    for job, scale in (("0", 4), ("1", 2)):
        metrics = wandb_metrics(sweep / job)
        for prefix in ("val", "test"):
            for name in ("psnr", "ssim", "psnr_bicubic", "ssim_bicubic"):
                assert math.isfinite(metrics[f"{prefix}/{name}"]), (prefix, name)
        assert metrics["test/psnr_bicubic"] > metrics["test/psnr"]  # four iterations: bicubic still wins
        state = torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True)
        assert state["progress"]["iteration"] == 2
        assert len([k for k in state["state_dict"] if k.startswith("generator.upsample.") and k.endswith("0.weight")]) \
            == {4: 2, 2: 1}[scale]  # fmt: skip
        upscaled = tmp_path / f"upscaled{job}"
        photos = tmp_path / "photos" / "test"
        checkpoint = sweep / job / "checkpoints" / "last.ckpt"
        assert_ok(run("task=upscale", "model=srresnet", *TINY, f"data.scale={scale}", f"input={photos}",
                      f"ckpt_path={checkpoint}", f"hydra.run.dir={upscaled}"))  # fmt: skip
        assert Image.open(upscaled / "upscaled" / "01.png").size == (90 * scale, 70 * scale)
        grid = Image.open(next((sweep / job / "sr").glob("iter=*.png")))
        zoom = Image.open(next((sweep / job / "sr_zoom").glob("iter=*.png")))
        assert grid.size == zoom.size == (2 + 4 * (32 + 2), 2 + 1 * (32 + 2))  # LR | bicubic | SR | HR, one image


def test_srgan_from_the_srresnet_checkpoint_on_two_processes_says_which_content_loss(tmp_path):
    photos = folders(tmp_path)
    assert_ok(run("model=srresnet", "debug=smoke", *TINY, *photos, "test=false", f"hydra.run.dir={tmp_path}/pre"))
    metrics = wandb_metrics(tmp_path / "pre")
    assert math.isfinite(metrics["val/fid"]) and metrics["val/fid_samples"] == 4  # the 16x16 tiles of a 32x32 image
    pretrained = tmp_path / "pre" / "checkpoints" / "last.ckpt"
    # 48x48 crops: the offline content network (Inception up to Mixed_5d) needs at least that.
    result = run("model=srgan", "debug=smoke", "trainer=ddp_cpu", *TINY, *photos, *NO_EVAL, "data.crop_size=48",
                 "data.eval_max_side=48", "data.val_size=2", "data.crops_per_image=4", "model.discriminator.width=4",
                 f"model.generator_init={pretrained}", "model.scheduler_g.milestones=[1]",
                 "model.scheduler_d.milestones=[1]", f"hydra.run.dir={tmp_path}/gan")  # fmt: skip
    assert_ok(result)
    output = result.stdout + result.stderr
    assert "VGG19's ImageNet weights cannot be had" in output and "FID Inception v3 up to Mixed_5d" in output
    state = torch.load(tmp_path / "gan" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["progress"]["images_seen"] == 4 * 2  # 3 images x 4 crops: one batch of 4 on each process
    assert all(k.split(".")[0] in ("generator", "discriminator") for k in state["state_dict"])
    assert [group["lr"] for o in state["optimizer_states"] for group in o["param_groups"]] == [1e-5, 1e-5]


def test_srgan_resumed_continues_exactly(tmp_path):
    overrides = ["model=srgan", "debug=smoke", *TINY, *folders(tmp_path), *NO_EVAL, "model.content_loss=mse",
                 "model.discriminator.width=4", "trainer.limit_train_batches=1"]  # fmt: skip
    straight, _ = resumed_equals_straight(tmp_path, *overrides)
    assert straight["progress"]["iteration"] == 2


def test_bad_input_is_one_clear_line_each(tmp_path):
    photos = folders(tmp_path)
    every = [*photos, f"data.val={tmp_path / 'photos' / 'test'}"]  # no hold-out: all five train
    line = one_line_error(run("model=srresnet", *every, *NO_EVAL, "data.crop_size=56", f"hydra.run.dir={tmp_path}/a"))
    assert line.endswith("train/00.png is 60x52, smaller than data.crop_size=56 (3 more are too): remove it or lower "
                         "data.crop_size")  # fmt: skip
    line = one_line_error(run("model=srresnet", *photos, *TINY, *NO_EVAL, "data.scale=3", "data.crop_size=15",
                              f"hydra.run.dir={tmp_path}/b"))  # fmt: skip
    assert line.endswith("data.scale=3 cannot be done by the SRResNet generator: it upsamples in x2 pixel-shuffle "
                         "steps, so the scale must be a power of two (2, 4 or 8)")  # fmt: skip
    line = one_line_error(run("model=srgan", *photos, *TINY, *NO_EVAL, f"model.generator_init={tmp_path}/none.ckpt",
                              f"hydra.run.dir={tmp_path}/c"))  # fmt: skip
    assert line.endswith(f"model.generator_init={tmp_path}/none.ckpt does not exist: give the last.ckpt of a "
                         "model=srresnet run")  # fmt: skip
