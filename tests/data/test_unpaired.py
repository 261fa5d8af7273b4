"""The unpaired (CycleGAN) layout: every image mode, validation held out of training, the training
batches' crops, flips and independent orders, and the one-line errors of bad folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gans.data.base import to_float
from gans.data.unpaired import UnpairedImageDataModule
from gans.errors import DataError
from tests.data.folders import (
    SIZES,
    epoch_indices,
    files_at,
    placements,
    rows_of,
    unpaired,
)  # fmt: skip

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_unpaired_loads_every_mode_at_its_size(unpaired_root):
    dm = unpaired(unpaired_root, val_size=0)
    assert dm.train_a.shape == (3, 3, 10, 10) and dm.train_b.shape == (5, 3, 10, 10)  # load_size for training
    a, b = dm.eval_images("test")
    assert a.shape == (3, 3, 8, 8) and b.shape == (4, 3, 8, 8) and a.dtype == torch.uint8  # image_size, all of both
    assert dm.eval_size("test") == 4 and dm.image_shape == (3, 8, 8)
    gray = dm.train_a[1]  # sorted by path: 00.png, 02.png (grayscale: R = G = B), sub/01.png
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2]) and gray.float().std() > 10
    assert dm.eval_sets["test"][1][2].unique().tolist() == [255]  # 03.png, transparent RGBA -> white
    assert dm.name == "zebras" and not dm.aligned_eval  # testA[i], testB[i]: not true pairs
    one = unpaired(unpaired_root, channels=1)
    assert one.train_a.shape == (1, 1, 10, 10) and one.eval_sets["test"][1].shape == (4, 1, 8, 8)


def test_unpaired_validation_is_held_out_of_training_never_the_test_set(unpaired_root):
    # Defect 5 (issue 6): validation and test both used testA/testB, so the images that chose the
    # best checkpoint also scored it. Validation is now held out of trainA and trainB.
    dm = unpaired(unpaired_root, split_seed=3)
    for index, domain in enumerate("AB"):
        val, test = dm.eval_sets["validate"][index], dm.eval_sets["test"][index]
        assert len(val) == 2  # the default: 10% of 3 or 5 images, but at least the 2 FID needs
        held = rows_of(val, files_at(unpaired_root / f"train{domain}", 8))  # validation: training files ...
        trained = rows_of((dm.train_a, dm.train_b)[index], files_at(unpaired_root / f"train{domain}", 10))
        assert not set(held) & set(trained) and sorted(held + trained) == list(range(SIZES[f"train{domain}"]))
        assert torch.equal(test, torch.stack(files_at(unpaired_root / f"test{domain}", 8)))  # test: the test folder
        assert not any(torch.equal(v, t) for v in val for t in test)
    again = unpaired(unpaired_root, split_seed=3)  # seeded: the same on every run and process
    assert all(torch.equal(x, y) for x, y in zip(again.eval_sets["validate"], dm.eval_sets["validate"]))
    one = unpaired(unpaired_root, val_size=1)
    assert [len(x) for x in one.eval_sets["validate"]] == [1, 1] and (len(one.train_a), len(one.train_b)) == (2, 4)
    assert [len(x) for x in unpaired(unpaired_root, val_size=0.5).eval_sets["validate"]] == [2, 2]
    with pytest.raises(DataError, match="trainA has 3 images: data.val_size=3 holds out 3"):
        unpaired(unpaired_root, val_size=3)
    with pytest.raises(DataError, match="data.val_size=1.5 must be"):
        UnpairedImageDataModule(str(unpaired_root), val_size=1.5)


def test_unpaired_training_batches_crop_flip_and_range(unpaired_root):
    dm = unpaired(unpaired_root, batch_size=2, val_size=0)
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader) == dm.steps_per_epoch() == 5 // 2  # max(|A|, |B|) // batch
    seen = set()
    for batch in batches:
        assert set(batch) == {"A", "B", "index", "index_B"}
        for key in ("A", "B"):
            assert batch[key].shape == (2, 3, 8, 8) and batch[key].dtype == torch.float32
            assert batch[key].min() >= -1 and batch[key].max() <= 1 and batch[key].is_contiguous()
        assert batch["index"].dtype == torch.int64
        for crop, i in zip(batch["A"], batch["index"]):
            assert placements(crop, to_float(dm.train_a[i]))
        for crop, i in zip(batch["B"], batch["index_B"]):
            (where,) = placements(crop, to_float(dm.train_b[i]))  # noise images: one window matches
            seen.add(where)
    # jitter happens: several offsets, flipped and not (for this seed: checked, not assumed)
    assert len({(y, x) for y, x, _ in seen}) > 1 and {f for _, _, f in seen} == {False, True}


def test_unpaired_orders_independent_seeded_and_wrapping(unpaired_root):
    dm = unpaired(unpaired_root, shuffle_seed=3, val_size=0)
    a0, b0 = epoch_indices(dm, 0)
    assert len(a0) == len(b0) == 5 and sorted(b0) == list(range(5))  # B: a permutation
    assert set(a0) == {0, 1, 2}  # A (3 images) wraps around to 5 steps, every image seen
    orders = [epoch_indices(dm, e) for e in range(6)]
    assert any(a[:3] != b[:3] for a, b in orders)  # not one shared order
    assert len({tuple(a) for a, _ in orders}) > 1 and len({tuple(b) for _, b in orders}) > 1  # new per epoch
    assert epoch_indices(unpaired(unpaired_root, shuffle_seed=3, val_size=0), 4) == orders[4]  # (seed, epoch) fixes it
    batch = next(iter(dm.train_dataloader()))
    assert batch["index"].tolist() == a0[:1] and batch["index_B"].tolist() == b0[:1]


def test_corrupt_image_names_the_file(unpaired_root):
    bad = unpaired_root / "testB" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError) as info:
        unpaired(unpaired_root)
    message = str(info.value)
    assert str(bad) in message and "delete or replace it" in message and "\n" not in message


def test_missing_or_empty_split_is_named(unpaired_root):
    (unpaired_root / "testB").rename(unpaired_root / "other")
    with pytest.raises(DataError) as info:
        unpaired(unpaired_root)
    assert f"{unpaired_root / 'testB'} is missing" in str(info.value)
    (unpaired_root / "testB").mkdir()
    with pytest.raises(DataError, match="holds no images") as info:
        unpaired(unpaired_root)
    assert str(unpaired_root / "testB") in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        unpaired(unpaired_root.parent / "nowhere")
