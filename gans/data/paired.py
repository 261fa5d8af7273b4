"""Paired images (pix2pix, Isola et al. 2017): the authors' layout `ROOT/{train,val,test}/*`, each
file [A | B] side by side, and their named sets, downloaded into `data/<name>`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from torch import Tensor

from gans.data.image_folder import read_images, to_mode
from gans.data.two_domains import FolderPairsDataModule
from gans.errors import DataError

log = logging.getLogger(__name__)

PIX2PIX_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
PIX2PIX_SETS = ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")
DIRECTIONS = ("AtoB", "BtoA")


def load_side_by_side(path: Path, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """One [A | B] file -> two uint8 (size, size, channels) arrays, each half stretched to a square."""
    with Image.open(path) as image:
        image.load()
        image = to_mode(ImageOps.exif_transpose(image), channels)
    width, height = image.size
    if width < 2:
        raise ValueError(f"{width} px wide, cannot hold A and B side by side")
    half = width // 2
    halves = (image.crop((0, 0, half, height)), image.crop((half, 0, width, height)))
    arrays = [np.asarray(h.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8) for h in halves]
    return tuple(a[:, :, None] if a.ndim == 2 else a for a in arrays)


class PairedImageDataModule(FolderPairsDataModule):
    """Aligned pairs in the pix2pix authors' layout `ROOT/{train,val,test}/*`: each file holds A and B
    side by side ([A | B], split at width // 2), found recursively, any size and mode.

    The test is ROOT/test, or ROOT/<val_split> where there is no test folder (cityscapes, maps and
    edges2shoes ship train/ and val/ only, and their published scores are on val/). Validation is
    ROOT/<val_split> when the test is ROOT/test; otherwise `val_size` pairs held out of ROOT/train
    (seeded by `split_seed`), so validation is never the test set. With jitter, A and B of a pair
    get the same crop and flip.

    Args:
        root: the folder (default `data/<name>`).
        direction: "AtoB" (input = left half) or "BtoA" (input = right half): batch["A"] is always
            the input and batch["B"] the target.
        name: one of `PIX2PIX_SETS` to download it into `root` when its folders are absent; any
            other value (or None: the folder's name) only names the set in FID cache keys.
        download: allow that download.
        val_split: the validation folder (the test folder when there is no ROOT/test).
        val_size: pairs held out of ROOT/train for validation when the layout has no separate
            validation folder: a count, a fraction, or None (10%, at least 2, at most 50).
        split_seed: seed of that hold-out.
        **kwargs: see `ImagePairsDataModule`.
    """

    paired = True
    url_template = PIX2PIX_URL
    known_names = PIX2PIX_SETS
    unpack_hint = "extract it (tar -xzf)"

    def __init__(self, root: str | None = None, direction: str = "AtoB", val_split: str = "val", **kwargs) -> None:
        if direction not in DIRECTIONS:
            raise DataError(f"data.direction={direction} must be AtoB or BtoA")
        super().__init__(root=root, **kwargs)
        self.direction, self.val_split = direction, val_split

    def layout(self) -> str:
        return f"{self.root / 'train'} and {self.root / self.val_split} or {self.root / 'test'}"

    def _present(self) -> bool:
        return any((self.root / split).is_dir() for split in ("train", self.val_split, "test"))

    def _read(self, files: list[Path], size: int) -> tuple[Tensor, Tensor]:
        shape = (self.channels, size, size)
        a, b = read_images(files, lambda path: load_side_by_side(path, size, self.channels), [shape] * 2)
        return (b, a) if self.direction == "BtoA" else (a, b)

    def load_pairs(self) -> dict[str, tuple[Tensor, Tensor]]:
        self.prepare_data()
        root = self.root
        if not (root / "train").is_dir():
            raise DataError(f"{root / 'train'} is missing: the paired layout is {self.layout()}")
        test_dir = next((root / s for s in ("test", self.val_split) if (root / s).is_dir()), None)
        if test_dir is None:
            raise DataError(f"{root / self.val_split} and {root / 'test'} are both missing: one holds the test pairs")
        val_dir = root / self.val_split
        train_files = self._images(root / "train")
        if val_dir.is_dir() and val_dir.resolve() != test_dir.resolve():
            val_files, held_out = self._images(val_dir), ""
        else:  # the only evaluation folder is the test set: validate on pairs held out of train/
            train_files, val_files = self.hold_out(train_files, root / "train")
            held_out = f" (held out of {root / 'train'})"
        train = self._read(train_files, self.stored_size)
        validate = self._read(val_files, self.image_size)
        test = self._read(self._images(test_dir), self.image_size)
        log.info(
            "%s: %d training, %d validation%s, %d test pairs (%s)",
            root, len(train[0]), len(validate[0]), held_out, len(test[0]), test_dir.name,
        )  # fmt: skip
        return {"train": train, "validate": validate, "test": test}
