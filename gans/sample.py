"""Draw images from a trained checkpoint: `python -m gans.sample RUN_DIR/checkpoints/last.ckpt 10000 out.npz`.

A conditional model draws each image's condition itself (e.g. a uniform class label), or takes one
for all images: `--label 3` draws 10,000 images of class 3.

The model is rebuilt from the Hydra config saved beside the checkpoint (`RUN_DIR/.hydra/config.yaml`)
and its weights loaded with `torch.load(weights_only=True)`. The output is a uint8 `.npz`
(`images`: N, H, W, C), the input `python -m gans.fid` takes, or a folder of PNGs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict
from PIL import Image

from gans.config import register_resolvers
from gans.data.base import to_uint8
from gans.errors import GansError


def run_config(checkpoint: Path):
    config = checkpoint.resolve().parent.parent / ".hydra" / "config.yaml"
    if not config.is_file():
        raise GansError(f"{config} not found: pass a checkpoint inside a run dir written by run.py")
    return OmegaConf.load(config)


def load_model(checkpoint: Path, device: str = "cpu", weights_only: bool = True):
    """The LightningModule of a run, with the checkpoint's weights, in eval mode."""
    register_resolvers()
    cfg = run_config(checkpoint)
    state = torch.load(checkpoint, map_location="cpu", weights_only=weights_only)
    with open_dict(cfg):  # run.py finds it in the data at training time; the model saved it
        cfg.data.num_classes = int(state.get("hyper_parameters", {}).get("num_classes", 0))
    model = instantiate(cfg.model)
    model.on_load_checkpoint(state)  # the training progress: ProGAN's stage follows the images shown
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval()


def label_condition(model, label: int, n: int) -> torch.Tensor:
    """n copies of a class label, checked against the model."""
    if model.sample_condition(1) is None:
        raise GansError(f"--label {label}: {type(model).__name__} is unconditional; drop --label")
    num_classes = getattr(model, "num_classes", None)
    if num_classes is not None and not 0 <= label < num_classes:
        raise GansError(f"--label {label} is outside the model's classes 0..{num_classes - 1}")
    return torch.full((n,), label, dtype=torch.int64, device=model.device)


@torch.no_grad()
def sample(model, n: int, batch_size: int = 1000, seed: int = 0, label: int | None = None) -> np.ndarray:
    """n images as uint8 (N, H, W, C), latents (and conditions) drawn from a seeded generator;
    `label`: the class of every image, for class-conditional models."""
    torch.manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        condition = None if label is None else label_condition(model, label, size)
        chunks.append(to_uint8(model.generate(size, condition)).cpu())
    return torch.cat(chunks).permute(0, 2, 3, 1).numpy()


def save(images: np.ndarray, out: Path) -> None:
    if out.suffix == ".npz":
        np.savez_compressed(out, images=images)
        return
    out.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(out / f"{i:06d}.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("num", type=int)
    parser.add_argument("out", type=Path, help="a .npz file or a folder for PNGs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", type=int, default=None, help="class of every image (class-conditional models)")
    parser.add_argument("--unsafe-load", action="store_true", help="torch.load(weights_only=False): trusted files only")
    args = parser.parse_args(argv)
    try:
        if not args.checkpoint.is_file():
            raise GansError(f"{args.checkpoint} does not exist: pass a .ckpt written by run.py")
        model = load_model(args.checkpoint, args.device, weights_only=not args.unsafe_load)
        save(sample(model, args.num, seed=args.seed, label=args.label), args.out)
    except GansError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.num} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
