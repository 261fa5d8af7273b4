"""`python -m gans.fid`: the score on folders and .npy files, and one-line errors for bad input."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gans.errors import DataError
from gans.tools.fid import image_batches, load_images, open_source


def run_cli(*args) -> subprocess.CompletedProcess:
    # Decoded here rather than with text=True, whose universal newlines would turn the progress
    # bars' carriage returns into line breaks.
    result = subprocess.run(
        [sys.executable, "-m", "gans.fid", *map(str, args)], capture_output=True, timeout=600, check=False
    )
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def screen_lines(text: str) -> list[str]:
    """The non-blank lines a terminal shows for `text`: a carriage return (a progress bar's
    redraw) moves back to the start of the line, and what follows overwrites it."""
    lines = []
    for line in text.split("\n"):
        cells: list[str] = []
        column = 0
        for char in line:
            if char == "\r":
                column = 0
                continue
            cells[column : column + 1] = [char]
            column += 1
        if "".join(cells).strip():
            lines.append("".join(cells).rstrip())
    return lines


def test_folders_give_the_feature_distances_fid(fid_image_dirs, fid_reference):
    result = run_cli(*fid_image_dirs)
    assert result.returncode == 0, result.stderr
    assert float(last_line(result.stdout)) == pytest.approx(fid_reference[1]["fid"], rel=1e-3)
    assert "FID of 40 vs 40 images" in result.stderr and "tf-bilinear resize" in result.stderr


def test_npy_files_give_the_same_fid_and_kid(fid_image_sets, fid_reference, tmp_path):
    real, fake = (images.permute(0, 2, 3, 1).numpy() for images in fid_image_sets)
    alpha = np.random.default_rng(0).integers(0, 256, fake.shape[:3] + (1,), dtype=np.uint8)
    np.save(tmp_path / "real.npy", real[..., 0])  # grayscale (N, H, W)
    np.save(tmp_path / "fake.npy", np.concatenate([fake, alpha], axis=3))  # RGBA: alpha is dropped
    result = run_cli(tmp_path / "real.npy", tmp_path / "fake.npy", "--kid", "--kid-subset-size", "10")
    assert result.returncode == 0, result.stderr
    *_, kid_line, fid_line = result.stdout.strip().splitlines()
    assert float(fid_line) == pytest.approx(fid_reference[1]["fid"], rel=1e-3)
    kid, kid_std = (float(word) for word in kid_line.split()[1::2])  # "KID 0.123 +- 0.004"
    assert kid_line.startswith("KID") and math.isfinite(kid) and kid > 0 and kid_std >= 0


def test_progress_of_both_passes_on_stderr(fid_image_sets, tmp_path):
    """Issue 6, defect 13: 2,500 vs 2,500 images printed nothing for 23 minutes on a 2-core CPU."""
    for name, images in zip(("real", "fake"), fid_image_sets):
        np.save(tmp_path / f"{name}.npy", images[:2].permute(0, 2, 3, 1).numpy())
    result = run_cli(tmp_path / "real.npy", tmp_path / "fake.npy", "--batch-size", "1")
    assert result.returncode == 0, result.stderr
    assert math.isfinite(float(last_line(result.stdout)))  # stdout's last line is still the FID
    screen = screen_lines(result.stderr)
    for name in ("A real.npy", "B fake.npy"):
        assert f"{name}:   0%" in result.stderr  # shown when the pass starts, not only at its end
        bar = next((line for line in screen if line.startswith(name)), "")
        assert re.search(r"\| 2/2 \[.*\d(img/s|s/img)\]", bar), screen  # images done, and the rate
    assert screen[-1].startswith("FID of 2 vs 2 images")


# Each returns (the argument to pass, the path the message must name).
def _missing(tmp_path, good):
    return tmp_path / "no-such-folder", tmp_path / "no-such-folder"


def _empty(tmp_path, good):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    return tmp_path / "empty", tmp_path / "empty"


def _corrupt_png(tmp_path, good):
    folder = tmp_path / "corrupt"
    folder.mkdir()
    for source in sorted(good.glob("*.png"))[:3]:
        (folder / source.name).write_bytes(source.read_bytes())
    (folder / "000.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # header only, no image data
    return folder, folder / "000.png"


def _float_npy(tmp_path, good):
    np.save(tmp_path / "float.npy", np.random.default_rng(0).random((4, 28, 28)).astype(np.float32))
    return tmp_path / "float.npy", tmp_path / "float.npy"


@pytest.mark.parametrize("make_input", [_missing, _empty, _corrupt_png, _float_npy])
def test_bad_input_exits_1_with_one_line_naming_it(make_input, fid_image_dirs, tmp_path):
    good = fid_image_dirs[1]
    arg, named = make_input(tmp_path, good)
    result = run_cli(arg, good)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    screen = screen_lines(result.stderr)  # a failed pass clears its progress bar
    assert len(screen) == 1, screen
    assert str(named) in screen[0]


# -- the loaders, without Inception ---------------------------------------------------------------
def test_load_images_converts_arrays_to_rgb_nchw(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (3, 5, 6, 4), dtype=np.uint8)
    np.savez(tmp_path / "set.npz", labels=np.zeros(3, np.uint8), images=rgba)  # `images`, not the first
    np.save(tmp_path / "gray.npy", rgba[..., 0])
    rgb = load_images(tmp_path / "set.npz")
    assert rgb.dtype == torch.uint8 and rgb.shape == (3, 3, 5, 6)
    assert torch.equal(rgb, torch.from_numpy(rgba[..., :3]).permute(0, 3, 1, 2))  # alpha dropped
    gray = load_images(tmp_path / "gray.npy")
    assert torch.equal(gray, torch.from_numpy(rgba[..., 0])[:, None].expand(-1, 3, -1, -1))


def test_folder_batches_group_consecutive_images_of_one_size(tmp_path):
    sizes = [(8, 8), (8, 8), (12, 10), (8, 8), (8, 8), (8, 8)]
    for i, (w, h) in enumerate(sizes):
        folder = tmp_path / ("b" if i >= 3 else "a")  # recursive search, sorted paths
        folder.mkdir(exist_ok=True)
        Image.new("L" if i % 2 else "RGBA", (w, h), color=i * 40 if i % 2 else (i * 40, 0, 0, 7)).save(
            folder / f"{i}.png"
        )
    batches = list(image_batches(open_source(tmp_path), batch_size=2))
    assert [tuple(b.shape) for b in batches] == [(2, 3, 8, 8), (1, 3, 10, 12), (2, 3, 8, 8), (1, 3, 8, 8)]
    assert batches[0][1].unique().tolist() == [40]  # grayscale repeated to three channels
    assert batches[0][0].tolist() == torch.tensor([0, 0, 0]).view(3, 1, 1).expand(3, 8, 8).tolist()
    with pytest.raises(DataError, match="mixes image sizes"):
        load_images(tmp_path)
