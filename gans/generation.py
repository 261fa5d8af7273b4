"""New images from a trained model, and where they go: a folder of PNGs or a uint8 `.npz`
(`images`: N, H, W, C), the input `python -m gans.fid` takes. Shared by `task=generate` and
`python -m gans.sample`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gans.data.base import to_uint8
from gans.errors import GansError


def label_condition(model, label: int, n: int, option: str = "--label") -> torch.Tensor:
    """n copies of a class label, checked against the model; `option` is how the user passed it
    (`--label`, `label=`), for the error."""
    given = f"{option}{'' if option.endswith('=') else ' '}{label}"
    if model.sample_condition(1) is None:
        raise GansError(f"{given}: {type(model).__name__} is unconditional; drop {option.rstrip('=')}")
    num_classes = getattr(model, "num_classes", None)
    if num_classes is not None and not 0 <= label < num_classes:
        raise GansError(f"{given} is outside the model's classes 0..{num_classes - 1}")
    return torch.full((n,), label, dtype=torch.int64, device=model.device)


def text_condition(model, text: str, n: int, option: str = "--text") -> torch.Tensor:
    """n copies of a caption's embedding, for text-conditional models (StackGAN)."""
    if not hasattr(model, "embed_text"):
        raise GansError(f"{option} {text!r}: {type(model).__name__} is not conditioned on text; drop {option}")
    return model.embed_text([text]).expand(n, -1)


def check_generates(model) -> None:
    """Refuse models that draw nothing from a latent (image-to-image models translate inputs)."""
    if not getattr(model, "latent_dim", None):
        raise GansError(f"{type(model).__name__} translates images rather than drawing them: use task=translate")


@torch.no_grad()
def sample(
    model,
    n: int,
    batch_size: int = 1000,
    seed: int = 0,
    label: int | None = None,
    option: str = "--label",
    text: str | None = None,
) -> np.ndarray:
    """n images as uint8 (N, H, W, C), latents (and conditions) drawn from a seeded generator;
    `label`: the class of every image, for class-conditional models; `text`: the caption of every
    image, for text-conditional ones."""
    check_generates(model)
    if n < 1:
        raise GansError(f"asked for {n} images: ask for at least one")
    torch.manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        condition = None if label is None else label_condition(model, label, size, option)
        if text is not None:
            condition = text_condition(model, text, size)
        chunks.append(to_uint8(model.generate(size, condition)).cpu())
    return torch.cat(chunks).permute(0, 2, 3, 1).numpy()


def save(images: np.ndarray, out: Path) -> None:
    """uint8 (N, H, W, C) images to `out`: a compressed `.npz` when it ends so, else a folder of
    PNGs named 000000.png, 000001.png, ..."""
    out = Path(out)
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, images=images)
        return
    out.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(out / f"{i:06d}.png")
