"""CIFAR-10: the python-version layout read from a small fixture, the split, the offline errors, the
download path (a file:// archive, never the network), and the unpickler that builds only arrays."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gans.data import cifar10
from gans.data.base import TensorImages
from gans.data.cifar10 import CIFAR10DataModule
from gans.errors import DataError
from tests.test_run import assert_ok, one_line_error, run

PLANE = 32 * 32


class Python2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle wrote the CIFAR-10 files (protocol 2): every string, bytes or
    text, as a byte string (SHORT_BINSTRING / BINSTRING), so it loads as bytes with encoding="bytes"
    (Python 3's protocol 2 would wrap bytes in `_codecs.encode` calls instead)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_byte_string(self, obj: bytes | str) -> None:
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_byte_string
    dispatch[str] = save_byte_string


def pickled(content: object, numpy_module: str = "numpy.core.multiarray") -> bytes:
    """`content` pickled as the CIFAR-10 files are, numpy's array reconstruction named `numpy_module`
    (the real files say numpy 1's "numpy.core.multiarray"; numpy 2 writes "numpy._core.multiarray")."""
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(content)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", f"c{numpy_module}\n".encode())


def write_cifar(root: Path, per_batch: int = 6, n_test: int = 4, seed: int = 0) -> dict[str, tuple]:
    """The python-version layout under `root`: five train batches of `per_batch` random images, a test
    batch of `n_test`, batches.meta. The first three training images are pure red, green and blue;
    the first test image is black but for one blue pixel at row 5, column 7."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        data = rng.integers(0, 256, (n, 3 * PLANE), dtype=np.uint8)
        labels = [int(label) for label in rng.integers(0, 10, n)]
        if name == "data_batch_1":
            data[:3] = 0
            for channel in range(3):
                data[channel, channel * PLANE : (channel + 1) * PLANE] = 255
        if name == "test_batch":
            data[0] = 0
            data[0, 2 * PLANE + 5 * 32 + 7] = 200
        content = {b"batch_label": name.encode(), b"labels": labels, b"data": data, b"filenames": [b"x.png"] * n}
        # The test batch as numpy 2 pickles it, so both module names are read.
        module = "numpy._core.multiarray" if name == "test_batch" else "numpy.core.multiarray"
        (folder / name).write_bytes(pickled(content, module))
        written[name] = (data, labels)
    names = [name.encode() for name in cifar10.CLASS_NAMES]
    (folder / "batches.meta").write_bytes(pickled({b"num_cases_per_batch": 10000, b"label_names": names}))
    return written


def module(root: Path, **kwargs) -> CIFAR10DataModule:
    kwargs = {"download": False, "val_size": 5, "on_device": False, "image_size": 32, "channels": 3, **kwargs}
    return CIFAR10DataModule(root=str(root), **kwargs)


# -- reading --------------------------------------------------------------------------------------
def test_reads_pixels_channels_and_labels_of_the_python_layout(tmp_path):
    written = write_cifar(tmp_path)
    images, labels, test_images, test_labels = module(tmp_path).load()
    assert images.shape == (30, 3, 32, 32) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert test_images.shape == (4, 3, 32, 32) and test_labels.dtype == torch.int64
    # Rows are channel-major: red plane, green plane, blue plane, each row by row.
    for channel in range(3):
        expected = torch.zeros(3, 32, 32, dtype=torch.uint8)
        expected[channel] = 255
        assert torch.equal(images[channel], expected), f"image {channel} should be pure {'RGB'[channel]}"
    assert test_images[0].nonzero().tolist() == [[2, 5, 7]] and test_images[0, 2, 5, 7] == 200
    # Every image and label exactly, batches in file order.
    train = [written[f"data_batch_{i}"] for i in range(1, 6)]
    assert np.array_equal(images.numpy(), np.concatenate([data for data, _ in train]).reshape(-1, 3, 32, 32))
    assert np.array_equal(test_images.numpy(), written["test_batch"][0].reshape(-1, 3, 32, 32))
    assert labels.tolist() == [label for _, batch_labels in train for label in batch_labels]
    assert test_labels.tolist() == written["test_batch"][1]


def test_splits_train_into_train_and_validation_and_keeps_the_test_batch(tmp_path):
    write_cifar(tmp_path)
    dm = module(tmp_path, val_size=5)
    dm.prepare_data()  # the files are there: nothing to fetch
    dm.setup("fit")
    assert dm.num_classes == 10 and dm.find_classes() == 10 and dm.image_shape == (3, 32, 32)
    assert dm.class_names == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                              "truck")  # fmt: skip
    assert (len(dm.train_images), len(dm.val_images), len(dm.test_images)) == (25, 5, 4)
    images, labels, test_images, test_labels = dm.load()
    by_pixels = {image.numpy().tobytes(): int(label) for image, label in zip(images, labels)}
    train = [image.numpy().tobytes() for image in dm.train_images]
    val = [image.numpy().tobytes() for image in dm.val_images]
    assert not set(train) & set(val) and set(train) | set(val) == set(by_pixels)  # a partition of the 30
    assert [by_pixels[key] for key in val] == dm.val_labels.tolist()
    assert torch.equal(dm.test_images, test_images) and torch.equal(dm.test_labels, test_labels)
    # As the model sees it, in [-1, 1]: the red image is (1, -1, -1) at every pixel.
    red = TensorImages(images, labels)[0]["image"]
    assert red.amin((1, 2)).tolist() == red.amax((1, 2)).tolist() == [1.0, -1.0, -1.0]


def test_missing_files_without_download_name_the_folder_and_the_fix(tmp_path):
    dm = module(tmp_path / "data", download=False)
    for step in (dm.prepare_data, dm.setup):
        with pytest.raises(DataError) as info:
            step()
        message = str(info.value)
        assert "\n" not in message and str(tmp_path / "data" / "cifar-10-batches-py") in message
        assert "data.download=true" in message and cifar10.URL in message


def test_offline_fails_at_once_with_one_line(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(cifar10, "host_reachable", lambda url, timeout=3.0: asked.append(url) or False)

    def no_download(*args, **kwargs):
        raise AssertionError("must not try to download when the host is unreachable")

    monkeypatch.setattr(cifar10, "download_and_extract", no_download)
    dm = module(tmp_path, download=True)
    with pytest.raises(DataError) as info:
        dm.setup()
    assert asked == [cifar10.URL]  # one reachability check, then the error
    message = str(info.value)
    assert "\n" not in message and "www.cs.toronto.edu is unreachable" in message and cifar10.URL in message
    assert str(tmp_path / "cifar-10-batches-py") in message and "data.root" in message
    assert not list(tmp_path.iterdir())  # nothing left behind


# -- download (a file:// archive: the real code path without the network) --------------------------
def archive_of(tmp_path: Path) -> tuple[str, dict[str, str]]:
    source = tmp_path / "source"
    write_cifar(source)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    folder = source / "cifar-10-batches-py"
    sums = {path.name: hashlib.md5(path.read_bytes()).hexdigest() for path in folder.iterdir()}
    return archive.as_uri(), sums


def test_download_unpacks_checks_md5_and_loads(tmp_path, monkeypatch):
    url, sums = archive_of(tmp_path)
    monkeypatch.setattr(cifar10, "FILE_MD5", sums)
    root = tmp_path / "data"
    dm = module(root, download=True, url=url)
    dm.setup()
    assert len(dm.train_images) == 25 and len(dm.test_images) == 4
    assert sorted(path.name for path in root.iterdir()) == ["cifar-10-batches-py"]  # no staging left
    assert (root / "cifar-10-batches-py" / "data_batch_5").is_file()


def test_download_failing_md5_keeps_nothing(tmp_path, monkeypatch):
    url, sums = archive_of(tmp_path)
    monkeypatch.setattr(cifar10, "FILE_MD5", {**sums, "data_batch_3": "0" * 32})
    root = tmp_path / "data"
    with pytest.raises(DataError, match="data_batch_3 from .* fails its md5 check") as info:
        module(root, download=True, url=url).setup()
    assert "\n" not in str(info.value)
    assert not list(root.iterdir())  # neither the folder nor the staging copy


def test_the_published_checksums_are_torchvisions():
    torchvision = pytest.importorskip("torchvision.datasets")
    published = dict(torchvision.CIFAR10.train_list + torchvision.CIFAR10.test_list)
    published[torchvision.CIFAR10.meta["filename"]] = torchvision.CIFAR10.meta["md5"]
    assert published == cifar10.FILE_MD5 and torchvision.CIFAR10.url == cifar10.URL
    assert torchvision.CIFAR10.tgz_md5 == "c58f30108f718f92721af3b95e74349a"


# -- broken and hostile files ----------------------------------------------------------------------
def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def bad_shape(path: Path) -> None:
    path.write_bytes(pickled({b"data": np.zeros((6, 1000), np.uint8), b"labels": [0] * 6}))


def bad_labels(path: Path) -> None:
    path.write_bytes(pickled({b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 10]}))


@pytest.mark.parametrize(
    "spoil, says",
    [
        (truncate, "not a readable CIFAR-10 file"),
        (lambda path: path.write_bytes(b"<html>404 Not Found</html>"), "not a readable CIFAR-10 file"),
        (lambda path: path.write_bytes(pickled([1, 2, 3])), "holds a list"),
        (bad_shape, r"b'data' is uint8 \(6, 1000\)"),
        (bad_labels, "b'labels' are not 2 class indices in 0..9"),
    ],
)
def test_a_broken_batch_names_the_file(tmp_path, spoil, says):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    spoil(path)
    with pytest.raises(DataError, match=says) as info:
        module(tmp_path).setup()
    message = str(info.value)
    assert str(path) in message and "download the archive again" in message and "\n" not in message


class RunsACommand:
    """Unpickling this calls os.system(command): what a hostile file could hide in a batch."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("nested", [False, True])
def test_a_pickle_that_would_run_code_is_refused(tmp_path, nested):
    write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    payload = RunsACommand(f"touch {marker}")
    content = {b"data": payload, b"labels": [0]} if nested else payload
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(pickle.dumps(content, protocol=3))
    with pytest.raises(DataError, match=r"names (posix|os|nt)\.system, which a CIFAR-10 file never does"):
        module(tmp_path).setup()
    assert not marker.exists()


def test_another_data_set_in_the_layout_is_named(tmp_path):
    write_cifar(tmp_path)
    meta = tmp_path / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(pickled({b"label_names": [b"apple", b"aquarium_fish"]}))
    with pytest.raises(DataError, match="names the classes apple, aquarium_fish, not CIFAR-10's"):
        module(tmp_path).setup()


# -- the CLI -----------------------------------------------------------------------------------------
def test_cli_trains_dcgan_on_a_cifar10_folder(tmp_path):
    write_cifar(tmp_path / "data", per_batch=8, n_test=8)
    small = ["data.batch_size=8", "data.eval_batch_size=8", "data.val_size=8", "data.download=false"]
    result = run("data=cifar10", f"data.root={tmp_path / 'data'}", "debug=smoke", "model=dcgan", "data.image_size=32",
                 *small, "test=false", "logger=csv", f"hydra.run.dir={tmp_path}/run")  # fmt: skip
    assert_ok(result)
    assert "cifar10: 32 training, 8 validation (held out) and 8 test images (its own test split)" in result.stdout
    (metrics_csv,) = (tmp_path / "run").glob("csv/*/metrics.csv")
    rows = list(csv.DictReader(metrics_csv.open()))
    # FID against the held-out training images (the test batch's FID is left out: Inception on a
    # CPU is most of this test's time, and the unit tests above check the test split).
    fids = [float(row["val/fid"]) for row in rows if row.get("val/fid")]
    assert fids and all(math.isfinite(fid) for fid in fids)
    grid = Image.open(next((tmp_path / "run" / "samples").glob("iter=*.png")))
    assert grid.mode == "RGB"


def test_cli_without_files_and_host_fails_fast_with_one_line(tmp_path):
    # 127.0.0.1 stands for an unreachable host: refused at once, and never the real network.
    root = tmp_path / "data"
    url = "data.url=https://127.0.0.1/cifar-10-python.tar.gz"
    line = one_line_error(run("data=cifar10", f"data.root={root}", url, f"hydra.run.dir={tmp_path}/run", timeout=120))
    assert str(root / "cifar-10-batches-py") in line and "127.0.0.1" in line
    assert not (tmp_path / "run" / "wandb").exists()  # refused before W&B starts
