"""The StackGAN record's picture: one row per caption, its text on the left, then for each of a
few fixed latents the stage-I image (nearest-upsampled) beside the stage-II image.

    python experiments/stackgan_captions.py RUN2/checkpoints/last.ckpt experiments/figures/issue11-stackgan-captions.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

from gans.callbacks.samples import label_rows
from gans.checkpoint import load_model

CAPTIONS = (
    "a large dark dress", "a large light dress", "a small dark bag", "a large light bag",
    "a small dark ankle boot", "a large light ankle boot", "a mid-size grey sneaker",
    "a small light pair of trousers", "a large dark pullover", "a large light t-shirt",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--latents", type=int, default=4)
    parser.add_argument("--zoom", type=int, default=3)
    args = parser.parse_args()
    model = load_model(args.checkpoint)
    torch.manual_seed(0)
    z = torch.randn(args.latents, model.latent_dim).repeat(len(CAPTIONS), 1)
    text = model.embed_text(list(CAPTIONS)).repeat_interleave(args.latents, 0)
    low, high = model.generate_stages(z, text, seed=0)
    if high is None:  # a stage-I checkpoint: its images alone
        pairs, per_row = low, args.latents
    else:
        side = high.shape[-1]
        pairs = torch.stack([F.interpolate(low, size=(side, side), mode="nearest"), high], 1).flatten(0, 1)
        per_row = 2 * args.latents
    pairs = F.interpolate(pairs, scale_factor=args.zoom, mode="nearest")
    grid = make_grid(pairs, nrow=per_row, normalize=True, value_range=(-1, 1), pad_value=1.0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_image(label_rows(grid, list(CAPTIONS)), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
