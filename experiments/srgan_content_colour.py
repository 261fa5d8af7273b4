"""How much the offline content loss (the FID Inception up to Mixed_5d, `gans/nets/content.py`)
sees colour, against the pixel MSE: one batch of 16 offline training crops (96x96) compared with
their bicubic x4 reconstruction, a greyscale copy and a tinted copy (SRGAN_NOTES.md).

    OMP_NUM_THREADS=1 python experiments/srgan_content_colour.py
"""

from __future__ import annotations

import torch

from gans.data.super_resolution import SuperResolutionDataModule, bicubic_upscale
from gans.nets.content import inception_content


def main() -> None:
    dm = SuperResolutionDataModule(on_device=False, crops_per_image=2, train_max_side=1024)
    dm.setup()
    net = inception_content()
    batch = next(iter(dm.train_dataloader()))
    hr = batch["hr"]
    changed = {
        "bicubic": bicubic_upscale(batch["lr"], 4),
        "greyscale": hr.mean(1, keepdim=True).expand_as(hr),
        "tinted": (hr + torch.tensor([-0.3, 0.1, 0.3]).view(1, 3, 1, 1)).clamp(-1, 1),
    }
    with torch.no_grad():
        target = net(hr)
        for name, x in changed.items():
            pixel, content = (x - hr).pow(2).mean().item(), (net(x) - target).pow(2).mean().item()
            print(f"{name}: pixel MSE {pixel:.4f}, content {content:.4f}")


if __name__ == "__main__":
    main()
