"""The translation task: `python run.py task=translate model=cyclegan ckpt_path=... data.root=...`.

Rebuilds the model and data from the config, loads the checkpoint's weights (with
`torch.load(weights_only=True)` unless `ckpt_weights_only=false`), translates every image of the
test split and writes PNGs to `<run dir>/translations/<direction>/<index>.png`, index = the input
image's place in its test folder (sorted file order): both directions for CycleGAN, each over its
whole input domain (horse2zebra: 120 A2B from testA, 140 B2A from testB), A2B for Pix2pix.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from PIL import Image

from gans.checkpoint import load_weights, require_checkpoint
from gans.data.base import to_uint8
from gans.errors import GansError

log = logging.getLogger(__name__)


def save_png(image: torch.Tensor, path: Path) -> None:
    array = image.permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)


def translate(cfg: DictConfig) -> int:
    """Write the translations of the test split; returns how many images were written."""
    model = instantiate(cfg.model)
    if getattr(model, "latent_dim", None):
        raise GansError(f"task=translate needs an image-to-image model (cyclegan, pix2pix), not {type(model).__name__}")
    load_weights(model, require_checkpoint(cfg.get("ckpt_path"), "translate"), cfg.ckpt_weights_only)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    datamodule = instantiate(cfg.data, max_eval_samples=None, on_device=False)
    datamodule.prepare_data()
    datamodule.setup("test")
    out = Path(cfg.paths.output_dir) / "translations"
    written = 0
    with torch.no_grad():
        for batch in datamodule.test_dataloader():
            batch = {k: v.to(device) for k, v in batch.items()}
            for stream, (_, fakes) in model.evaluation_pairs(batch).items():
                direction = stream or "A2B"
                # The translations of the input domain's images that exist in this batch (unequal
                # test sets: items past the smaller set's end have no image of it), in item order.
                present = batch.get(f"has_{direction.split('2')[0]}")
                indices = batch["index"] if present is None else batch["index"][present]
                folder = out / direction
                folder.mkdir(parents=True, exist_ok=True)
                for index, image in zip(indices.tolist(), to_uint8(fakes).cpu(), strict=True):
                    save_png(image, folder / f"{index:06d}.png")
                    written += 1
    log.info(f"wrote {written} translated test images to {out}")
    return written
