"""The train task (gans/tasks/train.py) called as a function: what it returns to sweepers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from gans.config import register_resolvers
from gans.tasks.train import BestMetric, returned_value, train
from tests.test_run import ROOT, best_checkpoint_score


def test_task_function_returns_the_monitored_metric(tmp_path):
    register_resolvers()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["debug=smoke", "logger=none", "test=false"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)
        cfg.hydra.runtime.cwd = str(ROOT)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    value = train(cfg)
    assert isinstance(value, float) and math.isfinite(value) and value > 0
    (best,) = (tmp_path / "checkpoints").glob("best-*.ckpt")
    # Defect 2: the best score the checkpoint callback kept, not whatever was logged last.
    assert value == pytest.approx(best_checkpoint_score(best), rel=1e-6)


def test_the_best_value_is_tracked_where_no_checkpoint_monitors_it():
    """Defect 2: with no checkpoint callback on `optimized_metric`, the lowest value of the fit is
    returned (not the last; `trainer.test` would have reset it anyway)."""
    tracker = BestMetric("val/fid")
    trainer = SimpleNamespace(sanity_checking=False, callback_metrics={}, checkpoint_callbacks=[], is_global_zero=True)
    for value in (50.0, 20.0, float("nan"), 30.0):
        trainer.callback_metrics = {"val/fid": torch.tensor(value)}
        tracker.on_validation_end(trainer, None)
    trainer.callback_metrics = {}  # as after trainer.test
    assert returned_value(trainer, "val/fid", tracker) == 20.0
    restored = BestMetric("val/fid")
    restored.load_state_dict(tracker.state_dict())  # a resumed run keeps the best so far
    assert restored.best == 20.0
