"""A folder of the user's own images, loaded once into memory at a fixed size.

Layout: either all images anywhere under `root` (one unlabeled set, label 0)::

    root/0001.png  root/0002.jpg  root/more/0003.webp ...

or one subfolder per class (labels are the sorted class names' indices; `classes`, `num_classes`)::

    root/cat/0001.png  root/cat/x/0002.jpg  root/dog/0003.jpg ...

Files ending in .png, .jpg, .jpeg, .bmp, .webp, .tif or .tiff (any case) are found recursively;
hidden files and folders (".name") are skipped. Every image is decoded once at `setup` with PIL
(EXIF orientation applied, transparency composited onto white, palette/CMYK/16-bit converted),
resized to `image_size` (shorter side, then a center crop, or stretched to a square) and
converted to `channels`; the whole set is then a uint8 tensor in memory (or on the GPU), like
every data set here. A folder has no test split, so two disjoint parts are held out of it
(seeded by `split_seed`): `val_size` images for validation (`val/fid`, which picks the best
checkpoint) and `test_size` for the test (`test/fid`, which scores it). Example::

    python run.py data=image_folder data.root=~/pictures/faces data.image_size=64
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from gans.data.base import InMemoryImageDataModule, held_out_count
from gans.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
RESIZE_MODES = ("center_crop", "stretch")
BACKGROUND = (255, 255, 255)  # transparent pixels are composited onto white


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def find_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files, other files) under `folder`, recursively, sorted; hidden entries skipped."""
    images, others, seen = [], [], set()
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(directory)
        if real in seen:  # a symlink loop
            subdirs[:] = []
            continue
        seen.add(real)
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for name in files:
            path = Path(directory, name)
            if is_image_file(path):
                images.append(path)
            elif not name.startswith("."):
                others.append(path)

    def key(path: Path) -> str:  # the same order on every filesystem
        return path.relative_to(folder).as_posix()

    return sorted(images, key=key), sorted(others, key=key)


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer or float images (grayscale) -> "L", scaled to 0..255."""
    array = np.asarray(image)
    if image.mode == "F":
        array = array * 255.0 if np.nanmax(array, initial=0.0) <= 1.0 else array
    elif image.mode.startswith("I;16") or array.max(initial=0) > 255:
        peak = 65535 if array.max(initial=0) <= 65535 else array.max()
        array = array.astype(np.float64) * (255.0 / peak)
    return Image.fromarray(np.nan_to_num(array).round().clip(0, 255).astype(np.uint8), "L")


def to_mode(image: Image.Image, channels: int) -> Image.Image:
    """Any PIL mode -> "RGB" (channels=3) or "L" (channels=1); alpha composited onto white."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = _to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "L" and "transparency" in image.info:
        image = image.convert("LA")
    elif image.mode == "RGB" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    if channels == 1:
        # Via RGB, so the luma weights are ITU-R 601, as the base's 3 -> 1 conversion.
        return image if image.mode == "L" else image.convert("RGB").convert("L")
    return image if image.mode == "RGB" else image.convert("RGB")


def load_image(path: Path, size: int, channels: int, resize: str) -> np.ndarray:
    """One file -> uint8 array (size, size, channels). Raises PIL's/OS errors for a bad file."""
    with Image.open(path) as image:
        if image.format == "JPEG":  # decode big JPEGs at a reduced scale, still >= 2x the target
            image.draft(image.mode, (2 * size, 2 * size))
        image.load()
        image = ImageOps.exif_transpose(image)
        image = to_mode(image, channels)
    if resize == "center_crop":
        image = ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    else:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


class ImageFolderDataModule(InMemoryImageDataModule):
    """The images in a folder (flat, or one subfolder per class), held in memory as uint8.

    Args:
        root: the folder (`~` is expanded; relative to the current directory).
        image_size: side of the square images the model sees.
        channels: 3 (RGB) or 1 (grayscale).
        resize: "center_crop" (shorter side to `image_size`, then the center square) or
            "stretch" (the whole image squeezed to a square, aspect ratio ignored).
        val_size: images held out for validation: a count (int) or a fraction of the folder
            (float in (0, 1), at least one image).
        test_size: images held out for the test, apart from validation: a count or a fraction
            (None: as many as `val_size`).
        **kwargs: see `InMemoryImageDataModule`.
    """

    name = "image_folder"

    def __init__(
        self,
        root: str,
        image_size: int = 64,
        channels: int = 3,
        resize: str = "center_crop",
        val_size: int | float = 0.1,
        test_size: int | float | None = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(image_size=image_size, channels=channels, val_size=val_size, test_size=test_size, **kwargs)
        if resize not in RESIZE_MODES:
            raise DataError(f"data.resize={resize} is not one of {', '.join(RESIZE_MODES)}")
        if channels not in (1, 3):
            raise DataError(f"data.channels={channels} must be 1 (grayscale) or 3 (RGB)")
        if not isinstance(image_size, int) or image_size < 1:
            raise DataError(f"data.image_size={image_size} must be a positive number of pixels")
        self.root, self.resize = Path(os.path.expanduser(str(root))), resize
        self.classes: list[str] = []
        self.num_classes = 0
        self.files: list[Path] | None = None
        self.file_labels: list[int] | None = None

    @property
    def class_names(self) -> list[str]:
        return self.classes

    def find_classes(self) -> int:
        if self.files is None:
            self.scan()
        return self.num_classes

    # -- finding the files --------------------------------------------------------------------
    def scan(self) -> None:
        """Find the images and their labels (`files`, `file_labels`, `classes`, `num_classes`)."""
        root = self.root
        if not root.exists():
            raise DataError(f"data.root={root} does not exist: point data.root at a folder of images")
        if not root.is_dir():
            raise DataError(f"data.root={root} is a file, not a folder: point data.root at a folder of images")
        files, others = find_images(root)
        if not files:
            found = sorted({p.suffix.lower() or p.name for p in others})[:5]
            besides = f" (it has {len(others)} other files: {', '.join(found)})" if others else ""
            raise DataError(
                f"data.root={root} holds no images{besides}: put .png, .jpg, .jpeg, .bmp, .webp, .tif or "
                ".tiff files in it or in one subfolder per class"
            )
        top_level = [p for p in files if p.parent == root]
        if top_level:  # flat: one unlabeled set (subfolders, if any, are just more images)
            if len(top_level) < len(files):
                log.warning("%s has images both at its top level and in subfolders: using all, unlabeled", root)
            self.classes, labels = [], [0] * len(files)
        else:  # root/<class>/...
            tops = [p.relative_to(root).parts[0] for p in files]
            self.classes = sorted(set(tops))
            index = {name: i for i, name in enumerate(self.classes)}
            labels = [index[top] for top in tops]
        self.num_classes = len(self.classes)
        self.files, self.file_labels = files, labels

    def check_sizes(self, n: int) -> tuple[int, int]:
        """(validation, test) counts of the `n` images, checked to leave one training batch."""
        val = held_out_count(self.val_size, n, "data.val_size")
        test = val if self.test_size is None else held_out_count(self.test_size, n, "data.test_size")
        _, world = self._rank_world()
        train_size = n - val - test
        if val < 1 or test < 1 or train_size < self.batch_size * world:
            per = f" on each of {world} processes" if world > 1 else ""
            raise DataError(
                f"data.root={self.root} has {n} images: too few for data.val_size={self.val_size} and "
                f"data.test_size={self.test_size} ({val} + {test} held out, at least 1 each) and one batch of "
                f"data.batch_size={self.batch_size}{per} ({train_size} left): add images or lower data.batch_size, "
                "data.val_size or data.test_size"
            )
        return val, test

    # -- loading ------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_images is None:
            self.scan()
            self.check_sizes(len(self.files))
        super().setup(stage)

    def load(self) -> tuple[Tensor, Tensor, None, None]:
        if self.files is None:
            self.scan()
        size, channels = self.image_size, self.channels
        (images,) = read_images(
            self.files, lambda path: (load_image(path, size, channels, self.resize),), [(channels, size, size)]
        )
        return images, torch.tensor(self.file_labels, dtype=torch.int64), None, None


def read_images(files: list[Path], read: Callable[[Path], tuple[np.ndarray, ...]], shapes: list[tuple]) -> list[Tensor]:
    """Decode `files` in threads: `read(path)` gives HWC arrays, stored as uint8 (N, *shape) tensors.
    An unreadable file raises one DataError naming it (and how many more fail)."""
    outputs = [np.empty((len(files), *shape), dtype=np.uint8) for shape in shapes]

    def one(i: int) -> str | None:
        try:
            for output, array in zip(outputs, read(files[i])):
                output[i] = array.transpose(2, 0, 1)
        except Exception as err:  # noqa: BLE001 - a corrupt file can fail anywhere in a PIL plugin
            return f"{type(err).__name__}: {err}".replace("\n", " ")
        return None

    with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) + 4)) as pool:
        errors = list(pool.map(one, range(len(files))))  # PIL decodes and resizes without the GIL
    bad = [(path, err) for path, err in zip(files, errors) if err is not None]
    if bad:
        others = f"; {len(bad) - 1} more images are unreadable too" if len(bad) > 1 else ""
        raise DataError(f"cannot read image {bad[0][0]} ({bad[0][1]}){others}: delete or replace it")
    return [torch.from_numpy(output) for output in outputs]
