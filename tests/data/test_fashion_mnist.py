"""Fashion-MNIST / MNIST: the IDX reader, the lookup order of the files, and the offline errors."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import gans.data.fashion_mnist as fm
from gans.data.fashion_mnist import FashionMNISTDataModule, MNISTDataModule, read_idx
from gans.errors import DataError

IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding, written by hand: 0, 0, dtype code, ndim, big-endian dims, big-endian data."""
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


# -- read_idx -------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_plain_and_gzipped(tmp_path, suffix):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    got = read_idx(write_idx(tmp_path / f"images-idx3-ubyte{suffix}", images))
    assert got.shape == (2, 3, 4) and got.dtype == np.uint8 and np.array_equal(got, images)
    labels = np.array([258, -1, 7], dtype=np.int32)  # multi-byte, big-endian, signed
    assert read_idx(write_idx(tmp_path / f"labels-idx1-ubyte{suffix}", labels)).tolist() == [258, -1, 7]
    floats = np.array([[0.5, -2.25]], dtype=np.float32)
    assert read_idx(write_idx(tmp_path / f"f-idx2{suffix}", floats)).tolist() == [[0.5, -2.25]]


def test_read_idx_known_bytes(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x0b\x01\x00\x00\x00\x02\x01\x02\xff\xfe")  # int16: 0x0102, 0xfffe
    assert read_idx(path).tolist() == [258, -2]


def test_read_idx_truncated_names_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((4, 5, 5), dtype=np.uint8))[:-7])
    with pytest.raises(DataError, match="truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x00\x08\x01\x00\x00\x00\x01\x05",
        b"\x00\x00\x07\x01\x00\x00\x00\x01\x05",
        b"\x00\x00",
        b"PK\x03\x04 a zip file",
    ],
)
def test_read_idx_bad_magic_names_file(tmp_path, data):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(data)
    with pytest.raises(DataError, match="not an IDX file") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_broken_gzip_names_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, dtype=np.uint8)))[:30])
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "delete it" in str(info.value)


# -- the real data set ---------------------------------------------------------------------------
def test_real_fashion_mnist(tmp_path):
    """The Debian package's files (`make install`): a missing data set fails here, never skips."""
    dm = FashionMNISTDataModule(
        root=str(tmp_path), download=False, val_size=5000, image_size=28, channels=1, on_device=False
    )
    dm.setup("fit")
    assert dm.train_images.shape == (55000, 1, 28, 28) and dm.val_images.shape == (5000, 1, 28, 28)
    assert dm.test_images.shape == (10000, 1, 28, 28) and dm.train_images.dtype == torch.uint8
    assert dm.num_classes == 10 and dm.image_shape == (1, 28, 28)
    labels = torch.cat([dm.train_labels, dm.val_labels])
    assert labels.dtype == torch.int64 and labels.min() == 0 and labels.max() == 9
    assert torch.bincount(labels).tolist() == [6000] * 10 and torch.bincount(dm.test_labels).tolist() == [1000] * 10
    mean = torch.cat([dm.train_images, dm.val_images]).float().mean() / 255
    assert abs(mean - 0.2860) < 0.001  # the published Fashion-MNIST training mean (MNIST's is 0.1307)


# -- lookup order and offline behaviour ----------------------------------------------------------
def fake_set(raw: Path, n_train: int, n_test: int, fill: int) -> None:
    rng = np.random.default_rng(fill)
    for split, n in (("train", n_train), ("test", n_test)):
        image_stem, label_stem = fm.SPLIT_FILES[split]
        images = np.full((n, 28, 28), fill, dtype=np.uint8)
        write_idx(raw / (image_stem + (".gz" if split == "train" else "")), images)
        write_idx(raw / label_stem, rng.integers(0, 10, n).astype(np.uint8))


def test_torchvision_layout_preferred(tmp_path):
    fake_set(tmp_path / "FashionMNIST" / "raw", 12, 4, fill=7)
    dm = FashionMNISTDataModule(root=str(tmp_path), download=False, val_size=2, on_device=False)
    dm.prepare_data()  # everything found: nothing to do
    dm.setup()
    assert len(dm.train_images) == 10 and len(dm.val_images) == 2 and len(dm.test_images) == 4
    assert dm.train_images.unique().tolist() == [7] and dm.test_images.shape == (4, 1, 28, 28)
    # the same module with the torchvision folder absent reads the system copy
    elsewhere = FashionMNISTDataModule(
        root=str(tmp_path / "empty"),
        system_dir=str(tmp_path / "FashionMNIST" / "raw"),
        download=False,
        val_size=3,
        on_device=False,
    )
    elsewhere.setup()
    assert len(elsewhere.train_images) == 9


def test_missing_without_download_names_folders(tmp_path):
    root, system = tmp_path / "data", tmp_path / "nowhere"
    dm = FashionMNISTDataModule(root=str(root), system_dir=str(system), download=False, on_device=False)
    for step in (dm.prepare_data, dm.setup):
        with pytest.raises(DataError) as info:
            step()
        message = str(info.value)
        assert str(root / "FashionMNIST" / "raw") in message and str(system) in message
        assert "data.download=true" in message and "apt-get install dataset-fashion-mnist" in message


def test_offline_download_fails_at_once(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(fm, "host_reachable", lambda url, timeout=3.0: asked.append(url) or False)
    import torchvision.datasets

    def no_download(*args, **kwargs):
        raise AssertionError("must not try to download when the host is unreachable")

    monkeypatch.setattr(
        torchvision.datasets,
        "FashionMNIST",
        type("Blocked", (), {"mirrors": torchvision.datasets.FashionMNIST.mirrors, "__init__": no_download}),
    )
    dm = FashionMNISTDataModule(root=str(tmp_path), system_dir=str(tmp_path / "none"), download=True, on_device=False)
    with pytest.raises(DataError) as info:
        dm.setup()
    assert len(asked) == 1  # one reachability check, then the error: no download attempt
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "unreachable" in message
    assert str(tmp_path / "FashionMNIST" / "raw") in message


def test_mnist_missing_names_its_folder(tmp_path):
    dm = MNISTDataModule(root=str(tmp_path), download=False, on_device=False)
    with pytest.raises(DataError) as info:
        dm.setup()
    assert str(tmp_path / "MNIST" / "raw") in str(info.value) and "network access" in str(info.value)
