"""The CLI end to end, as users type it: `python run.py ...` with `debug=smoke`."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from gans.tools.sample import main as sample_main
from tests.wandb_records import history, run_info

ROOT = Path(__file__).resolve().parents[1]


def run(*overrides: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "run.py", *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def wandb_run_file(run_dir: Path) -> Path:
    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    return run_file


def wandb_metrics(run_dir: Path) -> dict[str, float]:
    merged: dict[str, float] = {}
    for row in history(wandb_run_file(run_dir)):
        merged.update(row)
    return merged


HYDRA_LOG_LINE = re.compile(r"^\[[\d-]+ [\d:,]+\]\[[^\]]+\]\[[A-Z]+\] - (.*)$")


def assert_one_line_per_record(result: subprocess.CompletedProcess) -> None:
    """Defect 13: every log record shows once, in Hydra's format (Lightning's own console handler
    printed each of its lines a second time, as `INFO: ...`), and Lightning's litlogger tip not at all."""
    lines = (result.stdout + result.stderr).splitlines()
    assert not [line for line in lines if re.match(r"^(INFO|WARNING|ERROR): ", line)]
    assert not [line for line in lines if "litlogger" in line]
    messages = [m.group(1) for line in lines if (m := HYDRA_LOG_LINE.match(line))]
    assert any("Seed set to" in message for message in messages)  # Lightning's records do come through
    assert len(messages) == len(set(messages)), [m for m in messages if messages.count(m) > 1]


def assert_complete_run(run_dir: Path) -> None:
    metrics = wandb_metrics(run_dir)
    assert math.isfinite(metrics["val/fid"]) and metrics["val/fid"] > 0
    assert metrics["val/fid_samples"] == 32
    assert math.isfinite(metrics["test/fid"])
    assert "train/D(x)" in metrics and "train/grad_norm_g" in metrics
    assert list((run_dir / "samples").glob("iter=*.png")) and list((run_dir / "interpolation").glob("*.png"))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and list((run_dir / "checkpoints").glob("best-*.ckpt"))
    assert (run_dir / ".hydra" / "config.yaml").is_file()


def test_smoke_run_logs_fid_to_wandb_and_writes_samples_and_checkpoints(smoke_run, tmp_path):
    run_dir, result = smoke_run  # shared with the tests of the tasks that read its checkpoints
    assert_ok(result)
    assert_complete_run(run_dir)
    assert_one_line_per_record(result)
    # Defect 14: a single run is in no W&B group and keeps the plain name.
    assert run_info(wandb_run_file(run_dir)) == {"name": "dcgan-fashion_mnist", "group": ""}
    # The checkpoint draws new images through `python -m gans.sample`, in the layout gans.fid reads.
    out = tmp_path / "drawn.npz"
    assert sample_main([str(run_dir / "checkpoints" / "last.ckpt"), "20", str(out)]) == 0
    images = np.load(out)["images"]
    assert images.shape == (20, 28, 28, 1) and images.dtype == np.uint8 and images.std() > 0
    assert sample_main([str(tmp_path / "missing.ckpt"), "20", str(out)]) == 1


def test_smoke_run_on_two_cpu_processes(tmp_path):
    assert_ok(run("debug=smoke", "trainer=ddp_cpu", f"hydra.run.dir={tmp_path}"))
    assert_complete_run(tmp_path)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 8  # 4 batches per process, each a D and a G step


def best_checkpoint_score(checkpoint: Path) -> float:
    """`best_model_score` of the checkpoint callback whose state `checkpoint` holds."""
    states = torch.load(checkpoint, weights_only=True)["callbacks"]
    (score,) = [state["best_model_score"] for state in states.values() if "best_model_score" in state]
    return float(score)


def test_seed_null_draws_a_seed_logs_it_and_uses_it(tmp_path):
    """Defect 10: `seed=null` crashed (`None + epoch` in the data's sampler); it now draws a seed,
    says so in one line, and every `${seed}` of the config uses it."""
    result = run(
        "seed=null",
        "debug=smoke",
        "logger=csv",
        "test=false",
        "model.eval_fid=false",
        "optimized_metric=null",
        f"hydra.run.dir={tmp_path}",
    )
    assert_ok(result)
    output = result.stdout + result.stderr
    (seed,) = re.findall(r"seed=null: using seed (\d+); pass seed=\1 to repeat", output)
    assert f"Seed set to {seed}" in output
    hparams = OmegaConf.load(next(tmp_path.glob("csv/*/hparams.yaml")))  # the config the run used, resolved
    assert hparams.seed == int(seed) and hparams.data.shuffle_seed == int(seed)


def test_max_steps_is_refused_with_one_line(tmp_path):
    """`trainer.max_steps` counts Lightning's optimizer steps (a D and a G step per iteration)."""
    line = one_line_error(run("trainer.max_steps=10", f"hydra.run.dir={tmp_path}"))
    assert line.endswith(
        "trainer.max_steps counts optimizer steps (2+ per iteration here): "
        "use max_iterations=N to stop after N training iterations"
    )


def resumed_equals_straight(tmp_path, *overrides: str) -> tuple[dict, dict]:
    """Train 2 epochs straight, and 1 epoch then 1 more resumed from its last checkpoint; assert
    the two end states are equal bit for bit. Returns both checkpoints (straight, resumed)."""
    assert_ok(run(*overrides, "trainer.max_epochs=2", f"hydra.run.dir={tmp_path}/straight"))
    assert_ok(run(*overrides, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}/first"))
    first = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = run(*overrides, "trainer.max_epochs=2", f"ckpt_path={first}", f"hydra.run.dir={tmp_path}/resumed")
    assert_ok(resumed)
    assert "Restored all states" in resumed.stdout + resumed.stderr
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["progress"] == b["progress"] and a["global_step"] == b["global_step"]
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    return a, b


def test_resume_continues_exactly_at_the_saved_step(tmp_path):
    fast = ["debug=smoke", "logger=none", "test=false", "model.eval_fid=false", "optimized_metric=null"]
    straight, _ = resumed_equals_straight(tmp_path, *fast)
    assert straight["global_step"] == 16
    assert torch.load(tmp_path / "first" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "[ERROR]" in line]
    return line


def test_missing_dataset_fails_fast_with_one_line(tmp_path):
    line = one_line_error(
        run(
            "data.system_dir=/nonexistent",
            f"data.root={tmp_path}",
            "data.download=false",
            f"hydra.run.dir={tmp_path}/run",
        )
    )
    assert str(tmp_path) in line and "apt-get install dataset-fashion-mnist" in line
    assert not (tmp_path / "run" / "wandb").exists()  # defect 13: the data is checked before W&B starts


def test_bad_image_folder_root_names_the_path(tmp_path):
    line = one_line_error(run("data=image_folder", f"data.root={tmp_path}/nowhere", f"hydra.run.dir={tmp_path}/run"))
    assert f"{tmp_path}/nowhere" in line


def test_corrupt_image_names_the_file(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(12):
        Image.new("RGB", (20, 20), (i * 20, 0, 0)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    line = one_line_error(
        run("data=image_folder", f"data.root={folder}", "data.batch_size=4", f"hydra.run.dir={tmp_path}/run")
    )
    assert "broken.png" in line
    assert not (tmp_path / "run" / "wandb").exists()  # defect 13: the data is checked before W&B starts


def test_unknown_config_choice_lists_the_options():
    result = run("model=nope")
    assert result.returncode != 0
    assert "Could not find 'model/nope'" in result.stderr and "dcgan" in result.stderr


# -- image-to-image ---------------------------------------------------------------------------------
def horse2zebra_layout(root: Path, per_split: int = 5) -> Path:
    """A folder in the CycleGAN authors' layout: odd sizes, JPEG and PNG, RGB, gray and RGBA."""
    rng = np.random.default_rng(0)
    for split in ("trainA", "trainB", "testA", "testB"):
        (root / split).mkdir(parents=True)
        for i in range(per_split):
            w, h = (int(v) for v in rng.integers(40, 90, 2))
            mode = ("RGB", "L", "RGBA")[i % 3]
            channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
            pixels = rng.integers(0, 255, (h, w, channels), dtype=np.uint8).squeeze()
            Image.fromarray(pixels, mode).save(root / split / f"{i}.{'jpg' if mode == 'RGB' else 'png'}")
    return root


def test_cyclegan_trains_on_a_horse2zebra_folder_and_translates_its_test_set(tmp_path):
    data = horse2zebra_layout(tmp_path / "horse2zebra")
    small = [f"data.root={data}", "data.image_size=64", "data.load_size=72"]
    assert_ok(run("model=cyclegan", "data=horse2zebra", *small, "debug=smoke", f"hydra.run.dir={tmp_path}/run"))
    metrics = wandb_metrics(tmp_path / "run")
    assert math.isfinite(metrics["val/fid_A2B"]) and math.isfinite(metrics["val/fid_B2A"])
    assert metrics["val/fid"] == pytest.approx((metrics["val/fid_A2B"] + metrics["val/fid_B2A"]) / 2, rel=1e-5)
    assert list((tmp_path / "run" / "A2B").glob("iter=*.png")) and list((tmp_path / "run" / "B2A").glob("iter=*.png"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    translated = run(
        "task=translate",
        "model=cyclegan",
        "data=horse2zebra",
        *small,
        f"ckpt_path={ckpt}",
        f"hydra.run.dir={tmp_path}/tr",
    )
    assert_ok(translated)
    for direction in ("A2B", "B2A"):
        files = sorted((tmp_path / "tr" / "translations" / direction).glob("*.png"))
        assert len(files) == 5
        assert np.asarray(Image.open(files[0])).shape == (64, 64, 3)


def test_pix2pix_trains_on_the_offline_default_and_logs_paired_metrics(tmp_path):
    assert_ok(run("model=pix2pix", "debug=smoke", "test=false", f"hydra.run.dir={tmp_path}"))
    metrics = wandb_metrics(tmp_path)
    for key in ("val/fid", "val/l1", "val/psnr", "val/ssim"):
        assert math.isfinite(metrics[key]), key
    assert metrics["val/fid_samples"] == 32
    assert list((tmp_path / "A2B").glob("iter=*.png"))


def test_cyclegan_offline_default_logs_the_error_against_ground_truth(tmp_path):
    assert_ok(run("model=cyclegan", "debug=smoke", "test=false", "logger=csv", f"hydra.run.dir={tmp_path}"))
    (metrics_csv,) = tmp_path.glob("csv/*/metrics.csv")
    header = metrics_csv.read_text().splitlines()[0]
    assert "val/l1_A2B" in header and "val/l1_B2A" in header and "val/fid_A2B" in header


def test_missing_horse2zebra_without_network_fails_fast_with_one_line(tmp_path):
    root = tmp_path / "horse2zebra"
    line = one_line_error(
        run("model=cyclegan", "data=horse2zebra", f"data.root={root}", f"hydra.run.dir={tmp_path}/run")
    )
    assert str(root) in line and "horse2zebra.zip" in line
