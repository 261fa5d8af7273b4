"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) and MNIST (LeCun et al. 1998), 28x28 grayscale.

Files are the IDX originals, looked up in order: torchvision's layout under `root`
(`root/FashionMNIST/raw/*-ubyte[.gz]`), then `system_dir` (Debian's `dataset-fashion-mnist`
installs the complete set in /usr/share/datasets/fashion-mnist), then torchvision's download,
tried only when its host answers within seconds, so an offline machine fails fast.
"""

from __future__ import annotations

import gzip
import socket
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torch import Tensor

from gans.data.base import InMemoryImageDataModule
from gans.data.download import host_reachable
from gans.errors import DataError

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (plain or gzipped): magic 0x0000 | dtype byte | ndim byte, then big-endian dims."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read {path}: {err}; delete it so it is fetched again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file; delete it so it is fetched again")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    dtype = np.dtype(IDX_DTYPES[raw[2]]).newbyteorder(">")
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(
            f"{path} is truncated ({data.size} of {int(np.prod(dims))} values); delete it and fetch it again"
        )
    return data.reshape(dims)


def find_idx_file(stem: str, dirs: list[Path]) -> Path | None:
    for directory in dirs:
        for name in (stem, stem + ".gz"):
            if (directory / name).is_file():
                return directory / name
    return None


class FashionMNISTDataModule(InMemoryImageDataModule):
    """Real Fashion-MNIST: 60,000 training images (less `val_size` held out) and the 10,000 test images.

    Args:
        root: folder for torchvision's layout (`root/FashionMNIST/raw`), where downloads go.
        system_dir: a folder holding the IDX files directly (Debian's package), used if present.
        download: let torchvision download the files when they are nowhere local.
        **kwargs: see `InMemoryImageDataModule`.
    """

    name = "fashion_mnist"
    num_classes = 10
    # Xiao et al. 2017, table 1.
    class_names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")  # fmt: skip
    torchvision_class = "FashionMNIST"
    offline_hint = "apt-get install dataset-fashion-mnist"

    def __init__(
        self,
        root: str = "data",
        system_dir: str | None = "/usr/share/datasets/fashion-mnist",
        download: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.root, self.system_dir, self.download = Path(root), system_dir, download

    def _search_dirs(self) -> list[Path]:
        dirs = [self.root / self.torchvision_class / "raw"]
        return dirs + [Path(self.system_dir)] if self.system_dir else dirs

    def _have_files(self) -> bool:
        stems = [stem for pair in SPLIT_FILES.values() for stem in pair]
        return all(find_idx_file(stem, self._search_dirs()) for stem in stems)

    def prepare_data(self) -> None:
        if self._have_files():
            return
        where = " or ".join(str(d) for d in self._search_dirs())
        if not self.download:
            raise DataError(
                f"{self.torchvision_class} not found in {where}; set data.download=true or {self.offline_hint}"
            )
        import torchvision.datasets

        dataset_class = getattr(torchvision.datasets, self.torchvision_class)
        if not host_reachable(dataset_class.mirrors[0]):
            raise DataError(
                f"{self.torchvision_class} not found in {where} and {urlparse(dataset_class.mirrors[0]).hostname} "
                f"is unreachable: {self.offline_hint}, or copy the four IDX files into {self._search_dirs()[0]}"
            )
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(30)  # a stalled mirror fails instead of hanging the run
        try:
            dataset_class(str(self.root), train=True, download=True)
        finally:
            socket.setdefaulttimeout(previous)

    def _read_split(self, split: str) -> tuple[Tensor, Tensor]:
        image_stem, label_stem = SPLIT_FILES[split]
        paths = [find_idx_file(stem, self._search_dirs()) for stem in (image_stem, label_stem)]
        if None in paths:
            self.prepare_data()
            paths = [find_idx_file(stem, self._search_dirs()) for stem in (image_stem, label_stem)]
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.ndim != 3 or len(images) != len(labels):
            raise DataError(f"{paths[0]} and {paths[1]} do not form an image/label pair")
        return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return *self._read_split("train"), *self._read_split("test")


class MNISTDataModule(FashionMNISTDataModule):
    """MNIST digits, the same IDX layout; downloaded by torchvision (no complete offline copy here)."""

    name = "mnist"
    class_names = tuple(str(digit) for digit in range(10))
    torchvision_class = "MNIST"
    offline_hint = "run once with network access"

    def __init__(self, root: str = "data", system_dir: str | None = None, download: bool = True, **kwargs) -> None:
        super().__init__(root=root, system_dir=system_dir, download=download, **kwargs)
