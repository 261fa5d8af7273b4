"""The training task: build data, model, callbacks, loggers and trainer from the Hydra config,
fit (resuming from `ckpt_path`), test, and return the best value of the monitored metric to
sweepers."""

from __future__ import annotations

import logging
import math
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from gans.config import is_multirun
from gans.errors import GansError

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate each entry of a config group that has a `_target_` (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if isinstance(entry, DictConfig) and "_target_" in entry]


def train(cfg: DictConfig) -> float | None:
    check_trainer_config(cfg)
    drawn_seed = None
    if cfg.get("seed") is None:
        # Set before anything is instantiated: every `${seed}` (e.g. the data's shuffle seed) reads it.
        cfg.seed = drawn_seed = secrets.randbelow(2**31)
        log.info(f"seed=null: using seed {drawn_seed}; pass seed={drawn_seed} to repeat")
    L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    record_num_classes(cfg, datamodule)
    if rank_zero_only.rank == 0:
        # Refuse missing or unreadable data before a logger starts (W&B would keep an empty run).
        # The images load once here; Lightning's own `setup` call moves them to the device later.
        datamodule.prepare_data()
        datamodule.setup("fit")
    model = instantiate(cfg.model)
    callbacks = instantiate_group(cfg.get("callbacks"))
    metric = cfg.get("optimized_metric")
    tracker = None
    if metric and not any(isinstance(c, ModelCheckpoint) and c.monitor == metric for c in callbacks):
        callbacks.append(tracker := BestMetric(metric))
    loggers = instantiate_group(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    weights_only = cfg.ckpt_weights_only
    try:
        with ddp_processes_run_this_job(drawn_seed):
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=weights_only)
            if cfg.get("test"):
                best = getattr(trainer.checkpoint_callback, "best_model_path", "")
                trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=weights_only)
    finally:
        _finish_wandb(loggers)
    return returned_value(trainer, metric, tracker)


def record_num_classes(cfg: DictConfig, datamodule) -> None:
    """`data.num_classes` from the data (10 for Fashion-MNIST, the class subfolders of an image
    folder, 0 when unlabelled), for model configs that interpolate `${data.num_classes}`."""
    find_classes = getattr(datamodule, "find_classes", None)  # image-pair data modules have no classes
    with open_dict(cfg):
        cfg.data.num_classes = int(find_classes()) if find_classes else int(getattr(datamodule, "num_classes", 0))


def check_trainer_config(cfg: DictConfig) -> None:
    """Refuse trainer settings whose meaning here differs from what their name says."""
    if cfg.get("trainer", {}).get("max_steps") not in (None, -1):
        raise GansError(
            "trainer.max_steps counts optimizer steps (2+ per iteration here): "
            "use max_iterations=N to stop after N training iterations"
        )


class BestMetric(L.Callback):
    """The lowest value `monitor` reached at any validation, for a sweeper to minimise, where no
    checkpoint callback monitors it (else its `best_model_score` is the value). Checkpointed, so a
    resumed run reports the best of the whole run."""

    def __init__(self, monitor: str) -> None:
        self.monitor, self.best = monitor, None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None or not math.isfinite(value := float(value)):
            return
        if self.best is None or value < self.best:
            self.best = value

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")


def returned_value(trainer: L.Trainer, metric: str | None, tracker: BestMetric | None) -> float | None:
    """The best `metric` of the run (not the last: the sweeper compares runs at their best), logged
    in one line. `trainer.callback_metrics` cannot serve: `trainer.test` resets it."""
    if not metric:
        return None
    value = tracker.best if tracker is not None else None
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor == metric and callback.best_model_score is not None:
            value = float(callback.best_model_score)
    if trainer.is_global_zero:
        if value is None:
            log.warning(f"{metric} was never logged: returning None to the sweeper")
        else:
            log.info(f"returned {metric} = {value:.6g} (best)")
    return value


# -- DDP under --multirun -----------------------------------------------------------------------
# Arguments of Hydra's own command line that select the config, kept in the processes' command.
_CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")
# Hydra overrides about sweeping or this process's run dir and log name, left out of that command.
_SWEEP_KEYS = ("hydra.mode", "hydra.sweep", "hydra/sweeper", "hydra.launcher", "hydra/launcher", "hydra.run.dir",
               "hydra.job.name", "hydra.output_subdir")  # fmt: skip
# What Lightning's launcher sets in the launching process's environment for the processes to meet.
_RENDEZVOUS_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def _override_key(override: str) -> str:
    return override.lstrip("~+").split("=", 1)[0]


def _config_flags(args: list[str]) -> list[str]:
    kept, i = [], 0
    while i < len(args):
        if args[i] in _CONFIG_FLAGS:
            kept += args[i : i + 2]
            i += 2
            continue
        if args[i].split("=", 1)[0] in _CONFIG_FLAGS:
            kept.append(args[i])
        i += 1
    return kept


def _set_run_dir(hydra_cfg: DictConfig, run_dir: str) -> None:
    with read_write(hydra_cfg.run):
        hydra_cfg.run.dir = run_dir


@contextmanager
def ddp_processes_run_this_job(drawn_seed: int | None) -> Iterator[None]:
    """Have the processes that Lightning's DDP launches run this job's config, in its dir.

    Lightning's `_SubprocessScriptLauncher` starts ranks 1..N-1 by running the command line again
    (`sys.argv`) with `hydra.run.dir=<HydraConfig's run.dir>` appended. Under `--multirun` that
    command is the whole sweep: each such process would start a sweep of its own, a sampling
    sweeper (Optuna) would give the ranks of one job different hyperparameters, and the run dir is
    not the job's. So while a job trains, the command is the job's own overrides (no `--multirun`)
    and the run dir is the job's output dir. The launching process goes on to the next job, so its
    process group and the rendezvous variables Lightning set are cleared after each job; else the
    next job would take itself for a process launched from outside and wait for ranks that never
    come. A seed drawn for `seed=null` goes on the command too, so that every rank uses it.
    """
    if not HydraConfig.initialized():
        yield
        return
    hydra_cfg = HydraConfig.get()
    multirun = is_multirun(hydra_cfg.mode)
    argv, run_dir = list(sys.argv), hydra_cfg.run.dir
    environment = {name: os.environ.get(name) for name in _RENDEZVOUS_VARIABLES}
    seed = [] if drawn_seed is None else [f"seed={drawn_seed}"]
    if multirun:
        task = [o for o in hydra_cfg.overrides.task if not (seed and _override_key(o) == "seed")]
        hydra = [o for o in hydra_cfg.overrides.hydra if not _override_key(o).startswith(_SWEEP_KEYS)]
        sys.argv = [argv[0], *_config_flags(argv[1:]), *task, *seed, *hydra]
        _set_run_dir(hydra_cfg, hydra_cfg.runtime.output_dir)
    else:
        sys.argv = [*argv, *seed]
    try:
        yield
    finally:
        sys.argv = argv
        if multirun:
            _set_run_dir(hydra_cfg, run_dir)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
            for name, value in environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _finish_wandb(loggers: list) -> None:
    # Lightning leaves the W&B run open; close it so the next job of a --multirun gets its own.
    from lightning.pytorch.loggers import WandbLogger

    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish()
