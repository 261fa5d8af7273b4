"""Checkpoints written by `run.py`, read back: the run's config and a model with their weights.

Checkpoints load with `torch.load(weights_only=True)` (tensors and plain containers only, no
code runs) unless the user opts out for a file they trust (`ckpt_weights_only=false`,
`--unsafe-load`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from gans.config import register_resolvers
from gans.errors import GansError


def require_checkpoint(ckpt_path: str | Path | None, task: str) -> Path:
    """The checkpoint file of `ckpt_path=...`, or a one-line error naming what to pass."""
    if not ckpt_path:
        raise GansError(f"task={task} needs a trained model: add ckpt_path=RUN_DIR/checkpoints/last.ckpt")
    if not Path(ckpt_path).is_file():
        raise GansError(f"ckpt_path={ckpt_path} does not exist: pass a .ckpt written by run.py")
    return Path(ckpt_path)


def run_config(checkpoint: Path) -> DictConfig:
    """The config of the run that wrote `checkpoint` (`RUN_DIR/.hydra/config.yaml`, unresolved)."""
    config = Path(checkpoint).resolve().parent.parent / ".hydra" / "config.yaml"
    if not config.is_file():
        raise GansError(f"{config} not found: pass a checkpoint inside a run dir written by run.py")
    return OmegaConf.load(config)


def load_state(checkpoint: Path, weights_only: bool = True) -> dict:
    return torch.load(checkpoint, map_location="cpu", weights_only=weights_only)


def load_model(checkpoint: Path, device: str | torch.device = "cpu", weights_only: bool = True):
    """The LightningModule of a run, rebuilt from the run's config, with the checkpoint's weights
    and training progress, in eval mode."""
    register_resolvers()
    cfg = run_config(checkpoint)
    state = load_state(checkpoint, weights_only)
    with open_dict(cfg):  # run.py finds it in the data at training time; the model saved it
        cfg.data.num_classes = int(state.get("hyper_parameters", {}).get("num_classes", 0))
    model = instantiate(cfg.model)
    model.on_load_checkpoint(state)  # the training progress: ProGAN's stage follows the images shown
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval()


def load_weights(model: torch.nn.Module, checkpoint: Path, weights_only: bool = True) -> None:
    """The checkpoint's weights into a model built from the command line's config."""
    model.load_state_dict(load_state(checkpoint, weights_only)["state_dict"])
