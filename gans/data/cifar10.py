"""CIFAR-10 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images"): 60,000
32x32 RGB images in 10 classes, 50,000 for training and 10,000 for the test. ProGAN's record
unsupervised Inception Score, 8.80 (Karras et al. 2018), is on this set.

The files are the authors' "CIFAR-10 python version", in the folder its archive unpacks to (and
torchvision uses): `root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`. Each is
a pickled dict: b"data" a (N, 3072) uint8 array whose rows hold the red plane, then green, then
blue, each 32x32 row-major; b"labels" N ints in 0..9; batches.meta b"label_names". They are read
here rather than through torchvision so that any copy in that layout loads (torchvision checks
every file's md5, which also rejects the small test fixtures), and read with an unpickler that
builds only numpy arrays: a pickle can run any code it names, and these files come from the
network or from a user.

Not available offline here; when online the archive is downloaded once (its host is asked first,
so an offline machine fails in seconds) and every unpacked file is checked against torchvision's
published md5 before it is used. By hand: download `URL` (md5 c58f30108f718f92721af3b95e74349a)
and `tar xzf` it inside `root`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torch import Tensor

from gans.data.base import InMemoryImageDataModule
from gans.data.fashion_mnist import host_reachable
from gans.data.download import download_and_extract
from gans.errors import DataError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE, META_FILE = "test_batch", "batches.meta"
# torchvision's published md5 of each file in the archive (torchvision.datasets.CIFAR10), checked
# after a download; the archive's own (c58f3010...) cannot be, as it is deleted once unpacked.
FILE_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
SIDE, CHANNELS = 32, 3
# Krizhevsky 2009, the class order of batches.meta.
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# The only globals a CIFAR-10 pickle needs: numpy's array reconstruction. The files were written
# by Python 2 with numpy 1 ("numpy.core.multiarray"); numpy 2 pickles say "numpy._core.multiarray".
# Both names map to the function of the numpy installed, without importing the deprecated alias.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


# What a truncated, corrupt or hostile pickle raises on the way (an unpickler's errors are not all
# UnpicklingError: a cut-off file gives EOFError, a bad opcode argument ValueError or KeyError).
UNREADABLE = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OSError)


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that refuses every global but numpy's array reconstruction."""

    def find_class(self, module: str, name: str):
        try:
            return SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 file never does") from None


def unpickle(path: Path) -> dict:
    """One CIFAR-10 file -> its dict (bytes keys, as Python 2 wrote them). Raises DataError naming the
    file for anything that is not a plain pickled dict of arrays, lists and bytes."""
    fix = f"delete {path} and download the archive again ({URL})"
    try:
        with open(path, "rb") as f:
            content = _ArraysOnly(f, encoding="bytes").load()
    except UNREADABLE as err:
        reason = f"{type(err).__name__}: {err}".replace("\n", " ")
        raise DataError(f"{path} is not a readable CIFAR-10 file ({reason}): {fix}") from None
    if not isinstance(content, dict):
        raise DataError(f"{path} holds a {type(content).__name__}, not a CIFAR-10 dict: {fix}")
    return content


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A data or test batch -> (images (N, 3, 32, 32) uint8, labels (N,) int64)."""
    content = unpickle(path)
    data, labels = content.get(b"data"), content.get(b"labels")
    fix = f"delete {path} and download the archive again ({URL})"
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE**2:
        shape = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: b'data' is {shape}, not (N, {3 * SIDE**2}) uint8: {fix}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        labels = np.empty(0)
    if labels.shape != (len(data),) or (len(labels) and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES))):
        raise DataError(f"{path}: b'labels' are not {len(data)} class indices in 0..{len(CLASS_NAMES) - 1}: {fix}")
    # Channel-major rows: 1024 red values, then green, then blue, each plane row by row.
    return data.reshape(-1, CHANNELS, SIDE, SIDE), labels


def read_label_names(path: Path) -> tuple[str, ...]:
    names = unpickle(path).get(b"label_names")
    if not isinstance(names, list) or not all(isinstance(name, bytes) for name in names):
        raise DataError(f"{path} has no b'label_names' list: delete it and download the archive again ({URL})")
    return tuple(name.decode() for name in names)


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class CIFAR10DataModule(InMemoryImageDataModule):
    """CIFAR-10: the 50,000 training images (less `val_size` held out for `val/fid`) and the 10,000
    test images (`test/fid`), 32x32 RGB, labels 0..9 (`class_names`).

    Args:
        root: folder holding `cifar-10-batches-py/` (torchvision's `root`), where a download goes.
        download: fetch the archive when files are missing (asks the host first, never hangs).
        url: the archive (a mirror or a `file://` copy of it may be given instead).
        **kwargs: see `InMemoryImageDataModule`.
    """

    name = "cifar10"
    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES

    def __init__(self, root: str = "data", download: bool = True, url: str = URL, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root, self.download, self.url = Path(os.path.expanduser(str(root))), download, url

    @property
    def folder(self) -> Path:
        return self.root / FOLDER

    def _missing(self) -> list[str]:
        return [name for name in (*TRAIN_FILES, TEST_FILE, META_FILE) if not (self.folder / name).is_file()]

    def _by_hand(self) -> str:
        return f"download {self.url} and unpack it in {self.root} (tar xzf) so that {self.folder} holds its files"

    def prepare_data(self) -> None:
        """Download and check the archive's files when any is missing (rank 0; `load` calls it too)."""
        missing = self._missing()
        if not missing:
            return
        lacks = f"CIFAR-10 is not in {self.folder} (no {', '.join(missing)})"
        if not self.download:
            raise DataError(f"{lacks}: set data.download=true, or {self._by_hand()}")
        if urlparse(self.url).scheme != "file" and not host_reachable(self.url):
            raise DataError(
                f"{lacks} and {urlparse(self.url).hostname} is unreachable (offline?): {self._by_hand()}, "
                "or give data.root of a copy"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        # Unpacked and checked aside, then moved in: an interrupted download leaves no half folder.
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".cifar-10.download-"))
        try:
            download_and_extract(self.url, staging)
            unpacked = staging / FOLDER
            for name in missing:
                path = unpacked / name
                if not path.is_file():
                    raise DataError(f"the archive {self.url} has no {FOLDER}/{name}: {self._by_hand()}")
                if md5(path) != FILE_MD5[name]:
                    raise DataError(
                        f"{FOLDER}/{name} from {self.url} fails its md5 check (corrupt download or another "
                        f"archive): try again, or {self._by_hand()}"
                    )
            self.folder.mkdir(exist_ok=True)
            for name in missing:
                os.replace(unpacked / name, self.folder / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if self._missing():
            self.prepare_data()
        names = read_label_names(self.folder / META_FILE)
        if names != CLASS_NAMES:
            raise DataError(
                f"{self.folder / META_FILE} names the classes {', '.join(names)}, not CIFAR-10's: "
                f"data.root={self.root} holds another data set"
            )
        batches = [read_batch(self.folder / name) for name in TRAIN_FILES]
        test_images, test_labels = read_batch(self.folder / TEST_FILE)
        images = np.concatenate([images for images, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        return (
            torch.from_numpy(np.ascontiguousarray(images)),
            torch.from_numpy(labels),
            torch.from_numpy(np.ascontiguousarray(test_images)),
            torch.from_numpy(test_labels),
        )
