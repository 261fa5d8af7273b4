"""Downloads from local archives by file:// URL, their errors, and the offline line that says how."""

from __future__ import annotations

import io
import socket
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gans.data import download
from gans.data.download import download_and_extract
from gans.data.paired import PairedImageDataModule
from gans.data.unpaired import UnpairedImageDataModule
from gans.errors import DataError
from tests.data.folders import (
    SIZES,
    noise,
    paired,
    unpaired,
)  # fmt: skip

CONF = Path(__file__).resolve().parents[2] / "conf"


# -- downloads, from local archives by file:// URL ------------------------------------------------
def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(path: Path, members: dict[str, bytes]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path.resolve().as_uri()


def make_tar(path: Path, members: dict[str, bytes]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path.resolve().as_uri()


CYCLE_MEMBERS = {
    f"horse2zebra/{split}/{i}.png": png_bytes(noise(12, 12, 3, i)) for split in SIZES for i in range(SIZES[split])
}
PIX_MEMBERS = {
    f"facades/{split}/{i}.png": png_bytes(noise(10, 20, 3, i)) for split in ("train", "val") for i in range(3)
}


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_download_and_extract_local_archive(tmp_path, kind):
    maker = make_zip if kind == "zip" else make_tar
    url = maker(tmp_path / "server" / f"set.{kind}", {"set/a/1.txt": b"one", "set/b/2.txt": b"two"})
    target = tmp_path / "data"
    assert download_and_extract(url, target) == target
    assert (target / "set" / "a" / "1.txt").read_bytes() == b"one" and (target / "set" / "b" / "2.txt").is_file()
    assert sorted(p.name for p in target.iterdir()) == ["set"]  # no archive or partial file left
    assert (tmp_path / "server" / f"set.{kind}").is_file()  # the source is untouched


def test_download_errors_are_clear(tmp_path):
    garbage = tmp_path / "server" / "bad.zip"
    garbage.parent.mkdir()
    garbage.write_bytes(b"PK\x03\x04 this is no archive")
    with pytest.raises(DataError, match="not a valid archive") as info:
        download_and_extract(garbage.as_uri(), tmp_path / "data")
    assert garbage.as_uri() in str(info.value) and list((tmp_path / "data").iterdir()) == []
    whole = tmp_path / "server" / "whole.zip"
    make_zip(whole, {"x/1.bin": bytes(range(256)) * 400})
    cut = tmp_path / "server" / "cut.zip"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])  # truncated download
    with pytest.raises(DataError, match="cut.zip"):
        download_and_extract(cut.as_uri(), tmp_path / "data2")
    with pytest.raises(DataError, match="cannot download"):
        download_and_extract((tmp_path / "server" / "absent.zip").as_uri(), tmp_path / "data3")
    evil = make_tar(tmp_path / "server" / "evil.tar.gz", {"../escaped.txt": b"x"})
    with pytest.raises(DataError, match="evil.tar.gz"):
        download_and_extract(evil, tmp_path / "data4")
    assert not (tmp_path / "escaped.txt").exists()


def test_unpaired_named_set_downloads_into_root(tmp_path, monkeypatch):
    server = tmp_path / "server"
    make_zip(server / "horse2zebra.zip", CYCLE_MEMBERS)
    monkeypatch.setattr(UnpairedImageDataModule, "url_template", server.resolve().as_uri() + "/{name}.zip")
    monkeypatch.setattr(download, "host_reachable", lambda *a, **k: pytest.fail("file:// needs no check"))
    root = tmp_path / "data" / "zebras"  # another name than the archive's folder: still lands in root
    dm = unpaired(root, name="horse2zebra")
    assert dm.train_a.shape == (1, 3, 10, 10) and dm.train_b.shape == (3, 3, 10, 10) and dm.eval_size("test") == 4
    assert sorted(p.name for p in root.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert [p.name for p in root.parent.iterdir()] == ["zebras"]  # no staging folder left
    assert dm.name == "horse2zebra" and dm.eval_fingerprint("test").startswith("horse2zebra-test-3+4-")


def test_paired_named_set_downloads_tar_gz(tmp_path, monkeypatch):
    server = tmp_path / "server"
    make_tar(server / "facades.tar.gz", PIX_MEMBERS)
    monkeypatch.setattr(PairedImageDataModule, "url_template", server.resolve().as_uri() + "/{name}.tar.gz")
    dm = paired(tmp_path / "data" / "facades", name="facades", batch_size=1)
    assert dm.train_a.shape == (1, 3, 10, 10) and dm.eval_size("validate") == 2 and dm.eval_size("test") == 3


def test_archive_without_the_layout_is_an_error(tmp_path, monkeypatch):
    server = tmp_path / "server"
    make_zip(server / "horse2zebra.zip", {"horse2zebra/readme.txt": b"nothing here"})
    monkeypatch.setattr(UnpairedImageDataModule, "url_template", server.resolve().as_uri() + "/{name}.zip")
    with pytest.raises(DataError, match="does not hold the expected folders"):
        unpaired(tmp_path / "data" / "horse2zebra", name="horse2zebra")


def test_offline_error_is_immediate_and_says_how(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(download, "host_reachable", lambda url, timeout=3.0: asked.append(url) or False)
    monkeypatch.setattr(download, "download_and_extract", lambda *a, **k: pytest.fail("must not download"))
    root = tmp_path / "data" / "horse2zebra"
    url = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    with pytest.raises(DataError) as info:
        unpaired(root, name="horse2zebra")
    assert asked == [url]  # one reachability check, then the error: no download attempt, no retries
    message = str(info.value)
    assert "\n" not in message and str(root) in message and url in message and "unreachable" in message
    assert f"download {url} and unzip it so that {root / 'trainA'}" in message and str(root / "testB") in message
    with pytest.raises(DataError) as info:  # pix2pix: its own URL and tar
        paired(tmp_path / "data" / "facades", name="facades")
    assert "pix2pix/datasets/facades.tar.gz" in str(info.value) and "tar -xzf" in str(info.value)
    with pytest.raises(DataError, match="data.download=true"):
        unpaired(root, name="horse2zebra", download=False)


def test_unreachable_host_fails_fast_for_real(tmp_path, monkeypatch):
    """The real reachability check (no mock) against a closed local port: an error, not a hang
    (the socket connect is bounded by a finite timeout)."""
    monkeypatch.setattr(UnpairedImageDataModule, "url_template", "https://127.0.0.1/{name}.zip")
    monkeypatch.setattr(download, "download_and_extract", lambda *a, **k: pytest.fail("must not download"))
    timeouts = []
    real_connect = socket.create_connection

    def connect(address, timeout=None, *args, **kwargs):
        timeouts.append(timeout)
        return real_connect(address, timeout, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", connect)
    with pytest.raises(DataError, match="127.0.0.1 is unreachable"):
        unpaired(tmp_path / "horse2zebra", name="horse2zebra")
    assert timeouts and all(t is not None and 0 < t <= 10 for t in timeouts)


# -- Fashion-MNIST edges <-> items ------------------------------------------------------------------
