"""Downloads of the named data sets: an archive fetched with a timeout and unpacked safely, or a
folder merged into `data/<name>`. A machine without the internet fails at once, with one line naming
the URL and the folder to put the files in (`host_reachable` asks the host first, for seconds).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from gans.errors import DataError

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT = 60.0  # seconds without a byte before a download fails (never hangs)


def host_reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether the URL's host accepts a TCP connection on port 443 within `timeout` seconds."""
    host = urlparse(url).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def download_and_extract(url: str, target_dir: str | Path, timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Fetch a .zip or .tar(.gz) archive (http(s) or file:// URL) and unpack it into `target_dir`.

    The file is written to a temporary name beside its destination and renamed when complete, the
    archive is checked before it is unpacked (tar members with the safe "data" filter: no absolute
    paths, links or files outside `target_dir`), and it is deleted afterwards. A stalled connection
    fails after `timeout` seconds. Raises DataError with the URL for any failure.
    """
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    name = Path(urlparse(url).path).name or "download"
    fd, part = tempfile.mkstemp(dir=target, prefix=f".{name}.", suffix=".part")
    archive = target / name
    try:
        log.info("downloading %s to %s", url, target)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        os.replace(part, archive)
    except OSError as err:  # URLError, HTTPError, socket timeouts are OSErrors
        Path(part).unlink(missing_ok=True)
        raise DataError(f"cannot download {url} ({type(err).__name__}: {err}); try again or fetch it by hand") from None
    try:
        _extract(archive, target, url)
    finally:
        archive.unlink(missing_ok=True)
    return target


def _extract(archive: Path, target: Path, url: str) -> None:
    corrupt = f"{url} is not a valid archive (corrupt or incomplete download); try again or fetch it by hand"
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()  # CRC of every member, before anything is written
                if bad is not None:
                    raise DataError(f"{url}: member {bad} is corrupt; try again or fetch it by hand")
                zf.extractall(target)  # zipfile drops absolute paths and ".." components
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as tf:
                tf.extractall(target, filter="data")
        else:
            raise DataError(corrupt)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise DataError(f"{corrupt} [{type(err).__name__}: {err}]".replace("\n", " ")) from None


def _merge(src: Path, dst: Path) -> None:
    """Move `src` to `dst`, merging into folders that already exist."""
    if dst.is_dir() and src.is_dir():
        for child in src.iterdir():
            _merge(child, dst / child.name)
        src.rmdir()
    else:
        os.replace(src, dst)


def fetch_into(url: str, root: Path, folder_in_archive: str | None, present: Callable[[], bool], by_hand: str) -> None:
    """Download the archive `url` and merge its content into `root` (rank 0 of a run calls this).

    The archive is unpacked into a staging folder beside `root` and its top folder (named
    `folder_in_archive`, when the archive has one) merged into `root`, so an interrupted download
    leaves `root` as it was. `present()` says whether the expected folders exist afterwards;
    `by_hand` is the instruction for users without the internet ("download URL and unzip it so
    that ROOT/train exists"). Raises one DataError line when the host is unreachable.
    """
    if urlparse(url).scheme != "file" and not host_reachable(url):
        raise DataError(f"data.root={root} lacks the data and {urlparse(url).hostname} is unreachable: {by_hand}")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.download-"))
    try:
        download_and_extract(url, staging)
        source = staging / folder_in_archive if folder_in_archive else staging
        if not source.is_dir():
            source = staging
        for child in list(source.iterdir()):
            root.mkdir(parents=True, exist_ok=True)
            _merge(child, root / child.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not present():
        raise DataError(f"the archive {url} does not hold the expected folders: {by_hand}")
