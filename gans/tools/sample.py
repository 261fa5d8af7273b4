"""Draw images from a trained checkpoint: `python -m gans.sample RUN_DIR/checkpoints/last.ckpt 10000 out.npz`,
the short form of `python run.py task=generate ckpt_path=... n=10000 out=out.npz`.

A conditional model draws each image's condition itself (e.g. a uniform class label), or takes one
for all images: `--label 3` draws 10,000 images of class 3. A text-conditional model (StackGAN) draws
images for a caption: `--text "a dark ankle boot"`.

The model is rebuilt from the Hydra config saved beside the checkpoint (`RUN_DIR/.hydra/config.yaml`)
and its weights loaded with `torch.load(weights_only=True)`. The output is a uint8 `.npz`
(`images`: N, H, W, C), the input `python -m gans.fid` takes, or a folder of PNGs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from gans.checkpoint import load_model
from gans.errors import GansError
from gans.generation import sample, save


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gans.sample", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("num", type=int)
    parser.add_argument("out", type=Path, help="a .npz file or a folder for PNGs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", type=int, default=None, help="class of every image (class-conditional models)")
    parser.add_argument("--text", default=None, help="caption of every image (text-conditional models)")
    parser.add_argument("--unsafe-load", action="store_true", help="torch.load(weights_only=False): trusted files only")
    args = parser.parse_args(argv)
    try:
        if not args.checkpoint.is_file():
            raise GansError(f"{args.checkpoint} does not exist: pass a .ckpt written by run.py")
        model = load_model(args.checkpoint, args.device, weights_only=not args.unsafe_load)
        save(sample(model, args.num, seed=args.seed, label=args.label, text=args.text), args.out)
    except GansError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.num} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
