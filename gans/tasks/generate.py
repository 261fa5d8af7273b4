"""The generation task: `python run.py task=generate ckpt_path=RUN_DIR/checkpoints/last.ckpt n=10000 out=x.npz`.

Rebuilds the model from its run's config (`RUN_DIR/.hydra/config.yaml`), loads the checkpoint
(`torch.load(weights_only=True)` unless `ckpt_weights_only=false`) with its training progress,
and writes n samples drawn with `seed`: a uint8 `.npz` (`images`: N, H, W, C) when `out` ends in
.npz, else a folder of PNGs (default `<run dir>/samples`). `label=K` gives every image class K
(class-conditional models); otherwise a conditional model draws its conditions itself.
`python -m gans.sample CKPT N OUT [--label K]` is the short form; both call `gans.generation`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from gans.checkpoint import load_model, require_checkpoint
from gans.errors import GansError
from gans.generation import sample, save

log = logging.getLogger(__name__)


def generate(cfg: DictConfig) -> int:
    """Write the samples; returns how many were written."""
    checkpoint = require_checkpoint(cfg.get("ckpt_path"), "generate")
    n, label = cfg.get("n"), cfg.get("label")
    if n is None:
        raise GansError("task=generate needs n=N: how many images to write")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise GansError(f"n={n} must be a positive number of images")
    if label is not None and (not isinstance(label, int) or isinstance(label, bool)):
        raise GansError(f"label={label} must be a class index (an integer)")
    out = Path(cfg.out) if cfg.get("out") else Path(cfg.paths.output_dir) / "samples"
    seed = cfg.seed if cfg.get("seed") is not None else 0
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(checkpoint, device, weights_only=cfg.ckpt_weights_only)
    save(sample(model, n, seed=seed, label=label, option="label="), out)
    classes = "" if label is None else f" of class {label}"
    log.info(f"wrote {n} images{classes} from {checkpoint} (seed {seed}) to {out}")
    return n
