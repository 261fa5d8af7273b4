"""The upscaling task: `python run.py task=upscale model=srresnet ckpt_path=RUN/checkpoints/last.ckpt
input=FOLDER` (or model=srgan, with the same data.scale and model.generator settings as the run).

Builds the generator alone from the config (no data set, no discriminator, no content network),
loads its weights from the checkpoint with `torch.load(weights_only=True)` (the EMA copy when the
run kept one), and writes every image found under `input` (recursively, any mode, as RGB) upscaled
by `data.scale` to `<run dir>/upscaled/<its path under input>.png`. Each image is upscaled whole, on
the GPU when there is one: a 2560x1920 photograph becomes 10240x7680, which needs tens of GB of
activations at the full resolution.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from PIL import Image

from gans.data.base import to_float, to_uint8
from gans.data.image_folder import find_images
from gans.data.super_resolution import read_photo
from gans.errors import GansError

log = logging.getLogger(__name__)


def generator_weights(ckpt_path: str | None) -> dict[str, torch.Tensor]:
    """The generating network's state dict in a checkpoint of run.py: the EMA copy if kept."""
    if not ckpt_path:
        raise GansError("task=upscale needs a trained model: add ckpt_path=RUN_DIR/checkpoints/last.ckpt")
    if not Path(ckpt_path).is_file():
        raise GansError(f"ckpt_path={ckpt_path} does not exist: pass a .ckpt written by run.py")
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
    for prefix in ("ema.module.", "generator."):
        weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if weights:
            return weights
    raise GansError(f"ckpt_path={ckpt_path} holds no generator: pass the checkpoint of a model=srresnet or srgan run")


def upscale(cfg: DictConfig) -> int:
    """Upscale every image under `cfg.input`; returns how many were written."""
    if not cfg.get("input"):
        raise GansError("task=upscale needs input=FOLDER: a folder of images to upscale")
    root = Path(str(cfg.input)).expanduser()
    if not root.is_dir():
        raise GansError(f"input={root} is not a folder of images")
    files = find_images(root)[0]
    if not files:
        raise GansError(f"input={root} holds no images (.png, .jpg, .jpeg, .bmp, .webp, .tif, .tiff)")
    generator = instantiate(cfg.model.generator)
    try:
        generator.load_state_dict(generator_weights(cfg.get("ckpt_path")))
    except RuntimeError as err:
        raise GansError(f"ckpt_path={cfg.ckpt_path} does not fit model.generator (another data.scale or width?): "
                        f"{str(err).splitlines()[0]}") from None  # fmt: skip
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator.to(device).eval()
    out = Path(cfg.paths.output_dir) / "upscaled"
    with torch.no_grad():
        for path in files:
            image = torch.from_numpy(read_photo(path)).permute(2, 0, 1)[None].to(device)
            sr = to_uint8(generator(to_float(image)).float().clamp(-1, 1))[0].permute(1, 2, 0).cpu().numpy()
            target = (out / path.relative_to(root)).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(sr).save(target)
    log.info(f"wrote {len(files)} images upscaled x{generator.scale} to {out}")
    return len(files)
