"""The LR/HR data: bicubic LR made on the device from the same crop, seeded crops, whole evaluation
images cropped to the scale, disjoint offline photographs, named sets (download and offline line),
and the one-line errors of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gans.data.super_resolution as sr
from gans.data import download
from gans.data.base import to_uint8
from gans.data.super_resolution import (
    CropBatches,
    SuperResolutionDataModule,
    bicubic_downscale,
    bicubic_upscale,
    offline_photos,
    tiles,
)
from gans.errors import DataError
from tests.data.test_download import make_zip


def photo(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random RGB image (noise blurred by upsampling), so bicubic is a fair test."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    return np.array(Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR))


def photo_folder(root: Path, sizes: list[tuple[int, int]], seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(photo(h, w, seed + i)).save(root / f"{i:02d}.png")
    return root


def module(tmp_path: Path, **kwargs) -> SuperResolutionDataModule:
    train = photo_folder(tmp_path / "train", [(40, 36), (33, 50), (48, 48), (36, 40), (44, 37)])
    test = photo_folder(tmp_path / "test", [(37, 45), (70, 90)], seed=50)
    kwargs = {"train": str(train), "test": str(test), "crop_size": 16, "batch_size": 4, "crops_per_image": 2,
              "on_device": False, "val_size": 1, **kwargs}  # fmt: skip
    dm = SuperResolutionDataModule(**kwargs)
    dm.setup("fit")
    return dm


def test_bicubic_lr_is_pils_antialiased_bicubic_of_the_hr():
    # torch's antialiased bicubic is PIL's BICUBIC reduce (Keys a = -0.5, support widened by the
    # factor): the same 8-bit LR up to rounding, at every pixel, borders included.
    hr = photo(64, 48, 3)
    ours = bicubic_downscale(torch.from_numpy(hr).permute(2, 0, 1)[None], 4)[0].permute(1, 2, 0).numpy()
    pil = np.asarray(Image.fromarray(hr).resize((12, 16), Image.Resampling.BICUBIC))
    assert ours.shape == pil.shape == (16, 12, 3) and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 1
    # Antialiased: a one-pixel checkerboard (above the LR's Nyquist) averages to flat grey.
    board = (torch.arange(32)[:, None] + torch.arange(32)[None]) % 2 * 255
    flat = bicubic_downscale(board.to(torch.uint8).expand(1, 3, -1, -1), 4)
    assert flat.float().sub(127.5).abs().max() <= 1
    up = bicubic_upscale(torch.zeros(1, 3, 5, 6), 4)
    assert up.shape == (1, 3, 20, 24)


def test_training_batches_are_crops_with_their_own_bicubic_lr(tmp_path):
    dm = module(tmp_path)
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader) == dm.steps_per_epoch() == 4 * 2 // 4
    for batch in batches:
        assert set(batch) == {"hr", "lr", "index"}
        assert batch["hr"].shape == (4, 3, 16, 16) and batch["lr"].shape == (4, 3, 4, 4)
        hr = to_uint8(batch["hr"])
        assert torch.equal(to_uint8(batch["lr"]), bicubic_downscale(hr, 4))  # the same crop for both
        for crop, i in zip(hr, batch["index"].tolist(), strict=True):
            image = dm.train_images[i]
            windows = image.unfold(1, 16, 1).unfold(2, 16, 1)  # every 16x16 window of the image
            assert (windows == crop[:, None, None]).flatten(3).all(-1).all(0).any()


def test_crops_are_seeded_per_epoch_sharded_and_in_range():
    sizes = [(20, 30), (16, 16), (40, 17)]
    rows = torch.cat(list(CropBatches(sizes, 16, 4, 2, seed=3)), dim=1)
    assert rows.shape == (3, 12) and sorted(rows[0].tolist()) == sorted([0, 1, 2] * 4)
    limits = torch.tensor(sizes)[rows[0]] - 16
    assert (rows[1:].T >= 0).all() and (rows[1:].T <= limits).all()
    assert torch.equal(rows, torch.cat(list(CropBatches(sizes, 16, 4, 2, seed=3)), dim=1))
    other = CropBatches(sizes, 16, 4, 2, seed=3)
    other.set_epoch(1)
    assert not torch.equal(rows, torch.cat(list(other), dim=1))
    shards = [torch.cat(list(CropBatches(sizes, 16, 4, 2, rank=r, world_size=2, seed=3)), dim=1) for r in range(2)]
    assert shards[0].shape == shards[1].shape == (3, 6)


def test_evaluation_is_whole_images_cropped_to_the_scale_one_per_batch(tmp_path):
    dm = module(tmp_path)
    assert [tuple(im.shape) for im in dm.eval_sets["test"]] == [(3, 36, 44), (3, 68, 88)]  # multiples of 4
    batches = list(dm.test_dataloader())
    assert [b["hr"].shape for b in batches] == [(1, 3, 36, 44), (1, 3, 68, 88)]
    assert batches[1]["lr"].shape == (1, 3, 17, 22) and batches[1]["index"].tolist() == [1]
    assert dm.eval_size("test") == 2 * 2 + 4 * 5 == len(dm.eval_images("test"))  # 16x16 FID tiles
    capped = module(tmp_path, eval_max_side=32)
    assert [tuple(im.shape) for im in capped.eval_sets["test"]] == [(3, 32, 32), (3, 32, 32)]
    middle = torch.from_numpy(np.array(Image.open(tmp_path / "test" / "01.png"))).permute(2, 0, 1)[:, 19:51, 29:61]
    assert torch.equal(capped.eval_sets["test"][1], middle)  # the centre
    assert capped.eval_fingerprint("test") != dm.eval_fingerprint("test")
    # validation: held out of the training folder, never a training image
    assert len(dm.eval_sets["validate"]) == 1 and len(dm.train_images) == 4
    assert not set(dm.files["validate"]) & set(dm.files["train"])
    # train_max_side: training (and held-out validation) images reduced once; the test left whole
    reduced = module(tmp_path, train_max_side=40)
    assert max(max(im.shape[-2:]) for im in reduced.train_images) == 40
    assert [tuple(im.shape) for im in reduced.train_images][:2] == [(3, 40, 36), (3, 26, 40)]  # 33x50 -> 26x40
    assert [tuple(im.shape) for im in reduced.eval_sets["test"]] == [(3, 36, 44), (3, 68, 88)]


def test_tiles_are_the_non_overlapping_windows_row_by_row():
    images = torch.arange(2 * 1 * 4 * 6).view(2, 1, 4, 6)
    out = tiles(images, 2)
    assert out.shape == (12, 1, 2, 2)
    assert torch.equal(out[1], images[0, :, 0:2, 2:4]) and torch.equal(out[6], images[1, :, 0:2, 0:2])


def test_offline_photographs_train_and_test_on_different_images():
    train, test = offline_photos("offline"), offline_photos("offline_test")
    assert len(test) >= 4 and len(train) >= 1
    assert not {p.resolve() for p in train} & {p.resolve() for p in test}
    assert not any("motorcycle_right" in p.name for p in train)  # the other view of a training photograph
    if sr.MATE_NATURE.is_dir():
        assert sum(p.parent == sr.MATE_NATURE for p in train) == 12


def test_an_hr_image_smaller_than_the_crop_is_one_line(tmp_path):
    train = photo_folder(tmp_path / "small", [(40, 40), (30, 90), (20, 20)])
    # the same folder for training and test is refused first: never the same image
    with pytest.raises(DataError, match="both a training and an evaluation image"):
        SuperResolutionDataModule(train=str(train), test=str(train), crop_size=32, on_device=False).setup()
    test, val = photo_folder(tmp_path / "test", [(40, 40)]), photo_folder(tmp_path / "val", [(40, 40)])
    with pytest.raises(DataError) as info:
        SuperResolutionDataModule(train=str(train), test=str(test), val=str(val), crop_size=32, on_device=False).setup()
    message = str(info.value)
    assert "\n" not in message and "is 90x30, smaller than data.crop_size=32 (1 more are too)" in message
    with pytest.raises(DataError, match="data.crop_size=18 must be a positive multiple of data.scale=4"):
        SuperResolutionDataModule(crop_size=18)


def test_named_set_downloads_into_data_dir_and_offline_names_url_and_folder(tmp_path, monkeypatch):
    members = {}
    for i in range(3):
        path = photo_folder(tmp_path / "src", [(24, 24)], seed=i) / "00.png"
        members[f"Set5/image_SRF_4/img_{i}_SRF_4_HR.png"] = path.read_bytes()
    url = make_zip(tmp_path / "server" / "Set5_HR.zip", members)
    monkeypatch.setitem(sr.NAMED_SETS, "set5", (url, None))
    train = photo_folder(tmp_path / "train", [(40, 40)] * 3)
    dm = SuperResolutionDataModule(train=str(train), test="set5", data_dir=str(tmp_path / "data"), crop_size=16,
                                   batch_size=2, val_size=1, on_device=False)  # fmt: skip
    dm.setup()
    assert len(dm.eval_sets["test"]) == 3 and (tmp_path / "data" / "set5").is_dir()
    asked = []
    monkeypatch.setattr(download, "host_reachable", lambda url, timeout=3.0: asked.append(url) or False)
    monkeypatch.setattr(download, "download_and_extract", lambda *a, **k: pytest.fail("must not download"))
    offline = SuperResolutionDataModule(train="div2k", test="set5", data_dir=str(tmp_path / "data"), on_device=False)
    with pytest.raises(DataError) as info:
        offline.setup()
    message, folder = str(info.value), tmp_path / "data" / "div2k"
    assert asked == ["http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip"] and "\n" not in message
    assert f"download {asked[0]} and unpack its images into {folder}" in message and "unreachable" in message
