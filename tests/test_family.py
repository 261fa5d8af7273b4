"""The base is ready for the rest of the family: a one-network model and a conditional model
(tests/toys.py, configs in tests/conf/model) train through `run.py` with FID, grids and exact resume;
every process of a DDP run stops together when one process's loss turns NaN; `max_iterations`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gans.tools.sample import main as sample_main
from tests.test_run import ROOT, assert_ok, one_line_error, run, wandb_metrics

TOYS = f"hydra.searchpath=[file://{ROOT / 'tests' / 'conf'}]"
NO_EVAL = ["logger=none", "test=false", "model.eval_fid=false", "optimized_metric=null"]


def last_checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.parametrize("model", ["toy_mmd", "toy_cgan"])
def test_toy_model_trains_with_fid_and_grids_and_resumes_exactly(tmp_path, model):
    first = tmp_path / "first"
    assert_ok(run(TOYS, f"model={model}", "debug=smoke", f"hydra.run.dir={first}"))
    metrics = wandb_metrics(first)
    assert math.isfinite(metrics["val/fid"]) and math.isfinite(metrics["test/fid"]) and metrics["val/fid_samples"] == 32
    assert list((first / "samples").glob("iter=0000004.png")) and list((first / "interpolation").glob("iter=*.png"))
    assert last_checkpoint(first)["progress"] == {"iteration": 4, "images_seen": 4 * 64}
    # Class-aware evaluation (the metrics' own tests: tests/metrics/test_classifier.py).
    if model == "toy_cgan":
        assert 0 <= metrics["val/class_acc"] <= 1 and "val/class_coverage" not in metrics
    else:
        fractions = [v for k, v in metrics.items() if k.startswith("test/class_fraction/")]
        assert len(fractions) == 10 and sum(fractions) == pytest.approx(1.0, abs=1e-5)
        assert 0 < metrics["test/class_coverage"] <= 1 and "val/class_acc" not in metrics

    # Resuming the 1-epoch run to 2 epochs ends where the uninterrupted 2-epoch run ends, bit for bit
    # (evaluation in the first run does not disturb the training randomness).
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    ckpt = first / "checkpoints" / "last.ckpt"
    result = run(TOYS, f"model={model}", "debug=smoke", *NO_EVAL, "trainer.max_epochs=2", f"ckpt_path={ckpt}",
                 f"hydra.run.dir={resumed}")  # fmt: skip
    assert_ok(result)
    assert "Restored all states" in result.stdout + result.stderr
    assert_ok(run(TOYS, f"model={model}", "debug=smoke", *NO_EVAL, "trainer.max_epochs=2", f"hydra.run.dir={straight}"))
    a, b = last_checkpoint(straight), last_checkpoint(resumed)
    assert a["progress"] == b["progress"] == {"iteration": 8, "images_seen": 8 * 64}
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key

    if model == "toy_cgan":  # the conditional sampling API from the command line
        out = tmp_path / "threes.npz"
        assert sample_main([str(ckpt), "6", str(out), "--label", "3"]) == 0
        assert np.load(out)["images"].shape == (6, 28, 28, 1)
        assert sample_main([str(ckpt), "6", str(out), "--label", "10"]) == 1  # outside 0..9
    else:
        assert sample_main([str(ckpt), "6", str(tmp_path / "x.npz"), "--label", "3"]) == 1  # unconditional


def test_nan_on_one_ddp_process_stops_every_process_with_one_line(tmp_path):
    # Defect 3: a non-finite loss raised on one rank only and the other rank waited forever.
    line = one_line_error(
        run(TOYS, "model=toy_mmd", "debug=smoke", "trainer=ddp_cpu", "logger=none", "test=false",
            "model.eval_fid=false", "optimized_metric=null", "trainer.max_epochs=3", "model.poison_at=6",
            "model.poison_rank=1", f"hydra.run.dir={tmp_path}", timeout=600)  # fmt: skip
    )
    assert "non-finite" in line or "nan" in line
    state = last_checkpoint(tmp_path)  # the last good checkpoint stays valid
    assert state["progress"]["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


def test_max_iterations_stops_after_that_many_iterations(tmp_path):
    assert_ok(run(TOYS, "model=toy_mmd", "debug=smoke", *NO_EVAL, "trainer.max_epochs=5", "max_iterations=6",
                  f"hydra.run.dir={tmp_path}"))  # fmt: skip
    state = last_checkpoint(tmp_path)
    assert state["progress"]["iteration"] == 6 and state["global_step"] == 6  # one optimizer: one step each
