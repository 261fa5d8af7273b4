"""WGAN, WGAN-GP and the conditional GAN through `run.py`, as users type it: a sweep of the three
with FID and their own metrics in W&B, two CPU processes, exact resume, class folders, the
lecture's tricks ablation, and one-line errors for bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict
from PIL import Image

from gans.tools.sample import main as sample_main
from tests.conftest import compose_config
from tests.test_run import ROOT, assert_ok, one_line_error, resumed_equals_straight, run, wandb_metrics

NO_EVAL = ["logger=none", "test=false", "model.eval_fid=false", "optimized_metric=null"]


def test_the_three_models_sweep_with_fid_and_their_own_metrics(tmp_path):
    sweep = tmp_path / "sweep"
    assert_ok(run("--multirun", "model=wgan,wgan_gp,cgan", "debug=smoke", f"hydra.sweep.dir={sweep}"))
    own = {"0": ["train/wasserstein"], "1": ["train/wasserstein", "train/gradient_penalty"], "2": ["train/D(x)"]}
    for job, keys in own.items():
        metrics = wandb_metrics(sweep / job)
        assert math.isfinite(metrics["val/fid"]) and math.isfinite(metrics["test/fid"])
        assert all(math.isfinite(metrics[key]) for key in keys), keys
        assert list((sweep / job / "samples").glob("iter=*.png"))
    # CGAN: one grid row per Fashion-MNIST class (4 columns in debug=smoke), names in a left margin.
    grid = Image.open(next((sweep / "2" / "samples").glob("iter=*.png")))
    assert grid.height == 2 + 10 * (28 + 2) and grid.width > 2 + 4 * (28 + 2)
    ckpt = sweep / "2" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["hyper_parameters"]["num_classes"] == 10  # read from the data
    # The saved run config has no data.num_classes (run.py adds it): gans.sample takes the model's.
    assert sample_main([str(ckpt), "4", str(tmp_path / "bags.npz"), "--label", "8"]) == 0
    assert np.load(tmp_path / "bags.npz")["images"].shape == (4, 28, 28, 1)


def test_wgan_gp_on_two_cpu_processes_in_bf16(tmp_path):
    # The penalty's double backward under DDP (gloo) and bf16 autocast (a bf16 G(z) with float32
    # real images once broke the interpolation), with the base's toggling.
    assert_ok(run("model=wgan_gp", "model.n_critic=2", "debug=smoke", "trainer=ddp_cpu", "trainer.precision=bf16-mixed",
                  *NO_EVAL, f"hydra.run.dir={tmp_path}"))  # fmt: skip
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["progress"]["iteration"] == 4 and state["global_step"] == 4 + 2  # 4 critic, 2 generator steps
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


def test_wgan_gp_resumes_exactly(tmp_path):
    straight, _ = resumed_equals_straight(tmp_path, "model=wgan_gp", "model.n_critic=3", "debug=smoke", *NO_EVAL)
    assert straight["progress"] == {"iteration": 8, "images_seen": 8 * 64}


def image_folder(root: Path, classes: list[str] | None, per_class: int = 12) -> Path:
    for c, name in enumerate(classes or [""]):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", (20, 20), (c * 80, i * 20, 0)).save(folder / f"{i}.png")
    return root


def test_cgan_takes_its_classes_from_the_subfolders_of_an_image_folder(tmp_path):
    root = image_folder(tmp_path / "shapes", ["circle", "square", "star"])
    overrides = ["model=cgan", "data=image_folder", f"data.root={root}", "data.image_size=16", "data.batch_size=8"]
    assert_ok(run(*overrides, "debug=smoke", *NO_EVAL, f"hydra.run.dir={tmp_path}/run"))
    hparams = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["num_classes"] == 3
    grid = Image.open(next((tmp_path / "run" / "samples").glob("iter=*.png")))
    assert grid.height == 2 + 3 * (16 + 2)  # one row per class folder


def test_bad_input_is_one_clear_line(tmp_path):
    flat = image_folder(tmp_path / "flat", None, per_class=40)
    folder = ["data=image_folder", f"data.root={flat}", "data.image_size=16", "data.batch_size=8"]
    line = one_line_error(run("model=cgan", *folder, f"hydra.run.dir={tmp_path}/a"))
    assert "needs labelled data with at least 2 classes, got num_classes=0" in line and "subfolder per class" in line
    line = one_line_error(run("model=wgan", "model.n_critic=2.5", f"hydra.run.dir={tmp_path}/b"))
    assert line.endswith("model.n_critic=2.5 must be a positive integer (discriminator updates per generator "
                         "update), e.g. model.n_critic=5")  # fmt: skip
    line = one_line_error(run("model=wgan", "model.clip_value=0", f"hydra.run.dir={tmp_path}/c"))
    assert line.endswith("model.clip_value=0 must be a positive number")


ABLATIONS = sorted(p.stem for p in (ROOT / "conf" / "ablation").glob("*.yaml"))


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_each_ablation_changes_one_trick_of_the_default(ablation):
    default = OmegaConf.to_container(compose_config().model, resolve=False)
    changed = compose_config(f"+ablation={ablation}")
    with open_dict(changed):
        changed.data.num_classes = 10
    model = instantiate(changed.model)  # every switch is a real argument
    diff = flat_diff(default, OmegaConf.to_container(changed.model, resolve=False))
    expected = {
        "default": set(), "no_tanh": {"output"}, "uniform_noise": {"latent_distribution"},
        "mixed_batches": {"mixed_batches"}, "no_batch_norm": {"generator.norm", "discriminator.norm"},
        "relu": {"generator.activation", "discriminator.activation"}, "noisy_labels": {"real_label", "fake_label"},
        "label_flip": {"label_flip"}, "adam_beta1_09": {"optimizer_g.betas", "optimizer_d.betas"},
        "pooling": {"generator.upsample", "discriminator.downsample"},
    }  # fmt: skip
    assert diff == expected[ablation]
    assert model.generate(2).shape == (2, 1, 28, 28)


def flat_diff(a: dict, b: dict, prefix: str = "") -> set[str]:
    keys = set(a) | set(b)
    out = set()
    for key in keys:
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out |= flat_diff(x, y, f"{prefix}{key}.")
        elif x != y:
            out.add(f"{prefix}{key}")
    return out
