"""`python run.py --multirun ...` as users type it: every combination, the value returned to the
sweeper, W&B groups, and sweeps of multi-process (DDP) jobs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hydra.types import RunMode
from omegaconf import OmegaConf

from gans.config import sweep_group, sweep_run_name
from tests.test_run import assert_ok, best_checkpoint_score, run, wandb_run_file
from tests.wandb_records import run_info


def returned_values(run_log: Path) -> list[float]:
    return [float(v) for v in re.findall(r"returned val/fid = (\S+) \(best\)", run_log.read_text())]


def test_multirun_sweeps_every_combination_returns_the_best_score_and_groups_the_runs_in_wandb(tmp_path):
    """Defect 2: with the default `test=true` the sweeper got None (`trainer.test` resets the
    callback metrics); it gets the best `val/fid`, the one the best checkpoint kept.
    Defect 14: one W&B group per sweep, named after the sweep dir; the run names say the overrides
    the sweep chose."""
    sweep = tmp_path / "lr-sweep"
    result = run("--multirun", "debug=smoke", "model.optimizer_g.lr=1e-4,2e-4", "seed=1", f"hydra.sweep.dir={sweep}")
    assert_ok(result)
    names = set()
    for job in ("0", "1"):
        (best,) = (sweep / job / "checkpoints").glob("best-*.ckpt")
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
        (value,) = returned_values(sweep / job / "run.log")
        assert value == pytest.approx(best_checkpoint_score(best), rel=1e-5)
        info = run_info(wandb_run_file(sweep / job))
        assert info["group"] == "lr-sweep"
        names.add(info["name"])
    assert names == {f"dcgan-fashion_mnist:model.optimizer_g.lr={lr}" for lr in ("0.0001", "0.0002")}
    lrs = {OmegaConf.load(sweep / job / ".hydra" / "config.yaml").model.optimizer_g.lr for job in ("0", "1")}
    assert lrs == {1e-4, 2e-4}


def test_ddp_multirun_is_one_sweep_with_each_job_on_its_own_config(tmp_path):
    """Defect 4: Lightning starts rank 1 by running the command line again; under --multirun that
    was the whole sweep, so every rank 1 ran a sweep of its own ("Launching 2 jobs" twice). Now one
    sweep runs, and each job's rank 1 runs that job's config (its seed) in that job's dir."""
    sweep = tmp_path / "sweep"
    result = run(
        "--multirun",
        "debug=smoke",
        "trainer=ddp_cpu",
        "logger=csv",
        "test=false",
        "model.eval_fid=false",
        "optimized_metric=null",
        "seed=1,2",
        f"hydra.sweep.dir={sweep}",
    )
    assert_ok(result)
    assert (result.stdout + result.stderr).count("Launching 2 jobs") == 1
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1", "multirun.yaml"]
    for job in ("0", "1"):
        seed = OmegaConf.load(sweep / job / ".hydra" / "config.yaml").seed
        assert f"[rank: 1] Seed set to {seed}" in (sweep / job / "train_ddp_process_1.log").read_text()
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()


def test_run_name_and_group_resolvers(monkeypatch):
    """Defect 14: what conf/logger/wandb.yaml resolves to, for a single run and for a sweep's job."""
    assert sweep_group(RunMode.RUN, "multirun/2025-01-31_12-00-00") is None
    assert sweep_group(RunMode.MULTIRUN, "multirun/2025-01-31_12-00-00") == "2025-01-31_12-00-00"
    monkeypatch.setattr(sys, "argv", ["run.py", "--multirun", "debug=smoke", "seed=1,2"])
    assert sweep_run_name("dcgan-mnist", RunMode.RUN, ["debug=smoke", "seed=2"]) == "dcgan-mnist"
    # debug=smoke is on the command line as is, the same for every job of the group: left out.
    assert sweep_run_name("dcgan-mnist", RunMode.MULTIRUN, ["debug=smoke", "seed=2"]) == "dcgan-mnist:seed=2"


# -- Optuna (hydra-optuna-sweeper) and SLURM (hydra-submitit-launcher) ------------------------------
OPTUNA_SPACE = {
    "model.optimizer_g.lr", "model.optimizer_d.lr", "model.optimizer_g.betas.0", "model.optimizer_d.betas.0",
    "model.n_critic", "model.generator_objective", "model.real_label",
}  # fmt: skip


def compose_with_hydra(overrides: list[str]) -> OmegaConf:
    """The config as `run.py` composes it, Hydra's own node included."""
    from hydra import compose, initialize_config_dir

    from gans.config import register_resolvers

    register_resolvers()
    with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def test_optuna_sweep_minimises_the_returned_metric_over_the_gan_knobs(tmp_path):
    """experiment=optuna_dcgan: two trials drawn from the search space, each trained on its own
    draw, the best of the values run.py returned in optimization_results.yaml, one W&B group.
    (Smoke-sized: the returned metric is train/d_loss, so no Inception runs; val/fid's return is
    tested above.)"""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[dev]' (hydra-optuna-sweeper)")
    sweep = tmp_path / "optuna-smoke"
    result = run(
        "--multirun", "experiment=optuna_dcgan", "debug=smoke", "hydra.sweeper.n_trials=2", "model.eval_fid=false",
        "model.eval_classes=false", "optimized_metric=train/d_loss", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert_ok(result)
    assert "setup plugin alembic" not in result.stdout + result.stderr  # optuna's import noise stays off the console
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert set(results.best_params) == OPTUNA_SPACE
    values, draws = [], []
    for job in ("0", "1"):
        (value,) = [
            float(v)
            for v in re.findall(r"returned train/d_loss = (\S+) \(best\)", (sweep / job / "run.log").read_text())
        ]
        values.append(value)
        cfg = OmegaConf.load(sweep / job / ".hydra" / "config.yaml")
        draws.append({key: OmegaConf.select(cfg, key) for key in OPTUNA_SPACE})
        info = run_info(wandb_run_file(sweep / job))
        assert info["group"] == "optuna-smoke"
        # The run's name says the trial's draw and nothing of the command line every trial shares
        # (which Optuna's sweeper passes on as `model.eval_fid=False`).
        drawn = info["name"].removeprefix("dcgan-fashion_mnist:").split(",")
        assert {override.split("=")[0] for override in drawn} == OPTUNA_SPACE
    assert draws[0] != draws[1]
    assert results.best_value == pytest.approx(min(values), rel=1e-5)
    assert dict(results.best_params) == pytest.approx(draws[values.index(min(values))])


def test_optuna_experiment_composes_its_search_space_and_names_the_sweep_after_the_study():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[dev]' (hydra-optuna-sweeper)")
    cfg = compose_with_hydra(["experiment=optuna_dcgan"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.direction == "minimize" and cfg.optimized_metric == "val/fid"
    assert set(sweeper.params) == OPTUNA_SPACE
    assert Path(cfg.hydra.sweep.dir).name.startswith("optuna_dcgan_")  # the W&B group of its trials


def test_slurm_launcher_config_composes_with_the_ddp_trainer():
    """The README's SLURM route: `hydra/launcher=submitit_slurm` with multi-GPU jobs."""
    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[dev]' (hydra-submitit-launcher)"
    )
    cfg = compose_with_hydra(
        ["hydra/launcher=submitit_slurm", "trainer=ddp", "hydra.launcher.gpus_per_node=4",
         "hydra.launcher.tasks_per_node=4", "hydra.launcher.timeout_min=600", "trainer.devices=4"]
    )  # fmt: skip
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.timeout_min) == (4, 4, 600)
    # Lightning meets SLURM's tasks: one process per GPU, as many as the launcher asks for.
    assert cfg.trainer.strategy._target_ == "lightning.pytorch.strategies.DDPStrategy"
    assert cfg.trainer.devices == launcher.tasks_per_node
