"""Folders of images in the two-domain layouts, and helpers the two-domain data tests share."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from gans.data.image_folder import find_images, load_image
from gans.data.paired import PairedImageDataModule
from gans.data.unpaired import UnpairedImageDataModule


def fake_trainer(rank: int, world: int) -> SimpleNamespace:
    return SimpleNamespace(
        global_rank=rank, world_size=world, strategy=SimpleNamespace(root_device=torch.device("cpu"))
    )


def noise(height: int, width: int, channels: int, seed: int) -> np.ndarray:
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


# -- the unpaired (CycleGAN) layout -------------------------------------------------------------
SIZES = {"trainA": 3, "trainB": 5, "testA": 3, "testB": 4}


def unpaired_folder(root: Path) -> Path:
    """ROOT/{trainA,trainB,testA,testB}: odd sizes; RGB, grayscale and RGBA files; a nested folder."""
    for s, (split, n) in enumerate(SIZES.items()):
        for i in range(n):
            name = f"sub/{i:02d}.png" if i == 1 else f"{i:02d}.png"  # found recursively, sorted by path
            if i == 2:  # grayscale, odd size
                save(root / split / name, noise(13, 21, 1, 10 * s + i), "L")
            else:
                save(root / split / name, noise(17 + i, 11 + 2 * s, 3, 10 * s + i))
    rgba = noise(9, 9, 4, 99)
    rgba[..., 3] = 0  # fully transparent: composited onto white
    save(root / "testB" / "03.png", rgba, "RGBA")
    (root / "trainA" / "notes.txt").write_text("not an image")  # ignored
    return root


def unpaired(root: Path, **kwargs) -> UnpairedImageDataModule:
    kwargs = {"image_size": 8, "load_size": 10, "batch_size": 1, "eval_batch_size": 2, "on_device": False, **kwargs}
    dm = UnpairedImageDataModule(str(root), **kwargs)
    dm.setup("fit")
    return dm


def windows(image: torch.Tensor, size: int) -> dict[tuple[int, int, bool], torch.Tensor]:
    """Every size x size crop of a CHW image and its mirror image, by (top, left, flipped)."""
    h, w = image.shape[-2:]
    crops = {
        (y, x, False): image[:, y : y + size, x : x + size] for y in range(h - size + 1) for x in range(w - size + 1)
    }
    return crops | {(y, x, True): crop.flip(-1) for (y, x, _), crop in crops.items()}


def placements(crop: torch.Tensor, image: torch.Tensor) -> set[tuple[int, int, bool]]:
    """Where in `image` the crop can come from: (top, left, flipped) of each matching window."""
    return {key for key, window in windows(image, crop.shape[-1]).items() if torch.equal(crop, window)}


def files_at(folder: Path, size: int) -> list[torch.Tensor]:
    """Every image of a folder as the data module loads it at `size`, in sorted file order."""
    return [torch.tensor(load_image(path, size, 3, "stretch").transpose(2, 0, 1)) for path in find_images(folder)[0]]


def rows_of(images: torch.Tensor, candidates: list[torch.Tensor]) -> list[int]:
    """For each image, the position of the equal candidate (noise images: each matches one)."""
    return [next(i for i, c in enumerate(candidates) if torch.equal(image, c)) for image in images]


def epoch_indices(dm, epoch: int) -> tuple[list[int], list[int]]:
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    rows = torch.cat(list(loader.sampler), dim=1)
    return rows[0].tolist(), rows[1].tolist()


def paired_folder(root: Path, splits=("train", "val", "test"), counts=(4, 3, 2)) -> Path:
    """[A | B] files with B = 255 - A exactly (halves 10x10, so load_size=10 keeps them unresampled)."""
    for s, (split, n) in enumerate(zip(splits, counts)):
        for i in range(n):
            a = noise(10, 10, 3, 100 * s + i)
            save(root / split / f"{i}.png", np.concatenate([a, 255 - a], 1))
    return root


def paired(root: Path, **kwargs) -> PairedImageDataModule:
    kwargs = {"image_size": 8, "load_size": 10, "batch_size": 2, "eval_batch_size": 2, "on_device": False, **kwargs}
    dm = PairedImageDataModule(str(root), **kwargs)
    dm.setup("fit")
    return dm
