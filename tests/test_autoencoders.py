"""The AE and the VAE through `run.py`, as users type it: a sweep of both with FID, their own
metrics in W&B and their grids; the VAE on two CPU processes with the ex-post mixture; exact
resume; sampling from a checkpoint; one-line errors for bad settings."""

from __future__ import annotations

import math

import numpy as np
import torch

from gans.tools.sample import main as sample_main
from tests.test_run import assert_ok, one_line_error, resumed_equals_straight, run, wandb_metrics

NO_EVAL = ["logger=none", "test=false", "model.eval_fid=false", "optimized_metric=null"]


def test_ae_and_vae_sweep_with_fid_of_samples_and_reconstructions_and_their_own_metrics(tmp_path):
    sweep = tmp_path / "sweep"
    assert_ok(run("--multirun", "model=ae,vae", "debug=smoke", f"hydra.sweep.dir={sweep}"))
    shared = ["val/fid", "val/fid_recon", "val/mse", "test/fid", "test/fid_recon", "test/mse", "val/class_coverage"]
    own = {"0": ["train/ae_loss"], "1": ["train/elbo", "train/kl", "train/recon", "train/bpd", "val/elbo", "val/kl",
                                        "val/recon", "val/bpd", "test/elbo", "test/bpd"]}  # fmt: skip
    for job, keys in own.items():
        metrics = wandb_metrics(sweep / job)
        assert all(math.isfinite(metrics[key]) for key in shared + keys), [k for k in shared + keys if k not in metrics]
        for grid in ("samples", "reconstructions", "interpolation"):
            assert list((sweep / job / grid).glob("iter=*.png")), grid
    vae = wandb_metrics(sweep / "1")
    assert vae["test/elbo"] < 0
    assert math.isclose(vae["test/bpd"], -vae["test/elbo"] / (784 * math.log(2)), rel_tol=1e-4)
    assert math.isclose(-vae["test/elbo"], vae["test/recon"] + vae["test/kl"], rel_tol=1e-4)
    # The AE's checkpoint carries its mixture: gans.sample draws from it without the data.
    ckpt = sweep / "0" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["state_dict"]["mixture.fitted_at"] == 4
    assert sample_main([str(ckpt), "5", str(tmp_path / "ae.npz")]) == 0
    assert np.load(tmp_path / "ae.npz")["images"].shape == (5, 28, 28, 1)


def test_vae_with_the_expost_mixture_on_two_cpu_processes(tmp_path):
    # The mixture is fit on rank 0 and given to the other process with the buffers; the ELBO
    # metrics are synced over both.
    assert_ok(run("model=vae", "model.prior=expost", "debug=smoke", "trainer=ddp_cpu", "logger=csv", "test=false",
                  "model.eval_fid=false", "optimized_metric=null", f"hydra.run.dir={tmp_path}"))  # fmt: skip
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["progress"]["iteration"] == 4 and state["state_dict"]["mixture.fitted_at"] == 4
    assert torch.isfinite(state["state_dict"]["mixture.scale_tril"]).all()
    log = (tmp_path / "run.log").read_text()
    assert "val/elbo = " in log and "on 32 images" in log  # both processes' halves of the 32


def test_vae_resumes_exactly(tmp_path):
    straight, _ = resumed_equals_straight(tmp_path, "model=vae", "model.kl_warmup=6", "debug=smoke", *NO_EVAL)
    assert straight["progress"] == {"iteration": 8, "images_seen": 8 * 64}


def test_bad_settings_are_one_line_errors(tmp_path):
    line = one_line_error(run("model=ae", "model.decoder.latent_dim=8", f"hydra.run.dir={tmp_path}/a"))
    assert line.endswith("model.decoder.latent_dim=8 but model.code_dim=16: the encoder's code must be the decoder's "
                         "input (the configs interpolate ${model.code_dim})")  # fmt: skip
    line = one_line_error(run("model=vae", "model.likelihood=laplace", f"hydra.run.dir={tmp_path}/b"))
    assert line.endswith("model.likelihood must be one of gaussian, bernoulli, got 'laplace'")
