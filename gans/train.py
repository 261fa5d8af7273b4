"""The training task: build data, model, callbacks, loggers and trainer from the Hydra config,
fit (resuming from `ckpt_path`), test, and return the monitored metric for sweepers."""

from __future__ import annotations

import logging

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate each entry of a config group that has a `_target_` (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if isinstance(entry, DictConfig) and "_target_" in entry]


def train(cfg: DictConfig) -> float | None:
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    loggers = instantiate_group(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=instantiate_group(cfg.get("callbacks")), logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=cfg.ckpt_weights_only)
        if cfg.get("test"):
            best = getattr(trainer.checkpoint_callback, "best_model_path", "")
            trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=cfg.ckpt_weights_only)
    finally:
        _finish_wandb(loggers)
    metric = trainer.callback_metrics.get(cfg.get("optimized_metric"))
    return None if metric is None else float(metric)


def _finish_wandb(loggers: list) -> None:
    # Lightning leaves the W&B run open; close it so the next job of a --multirun gets its own.
    from lightning.pytorch.loggers import WandbLogger

    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish()
