"""The paired (pix2pix) layout: halves, direction, validation held out where the layout has no
separate validation folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gans.data.base import to_float, to_uint8
from gans.data.image_folder import find_images
from gans.data.paired import PairedImageDataModule, load_side_by_side
from gans.errors import DataError
from tests.data.folders import (
    noise,
    paired,
    paired_folder,
    placements,
    rows_of,
    save,
)  # fmt: skip

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_paired_splits_halves_and_jitters_a_and_b_alike(tmp_path):
    root = paired_folder(tmp_path / "pairs")
    save(root / "train" / "odd.png", noise(7, 21, 1, 5), "L")  # odd width, grayscale: loads
    dm = paired(root)
    assert dm.train_a.shape == dm.train_b.shape == (5, 3, 10, 10)
    assert torch.equal(dm.train_b[:4], 255 - dm.train_a[:4]) and dm.aligned_eval
    assert len(dm.eval_sets["validate"][0]) == 3 and len(dm.eval_sets["test"][0]) == 2
    loader = dm.train_dataloader()
    assert len(loader) == 5 // 2
    seen = set()
    for epoch in range(3):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            assert set(batch) == {"A", "B", "index"} and batch["A"].shape == (2, 3, 8, 8)
            for a, b, i in zip(batch["A"], batch["B"], batch["index"]):
                (where,) = placements(a, to_float(dm.train_a[i]))
                seen.add(where)
                if i < 4:
                    assert torch.equal(to_uint8(b), 255 - to_uint8(a))  # same crop and flip: B = 255 - A holds
    assert len({(y, x) for y, x, _ in seen}) > 1 and {f for _, _, f in seen} == {False, True}
    batch = next(iter(dm.val_dataloader()))
    assert batch["A"].shape == (2, 3, 8, 8) and batch["index"].tolist() == [0, 1]


def test_btoa_swaps_input_and_target(tmp_path):
    root = paired_folder(tmp_path / "pairs")
    forward, backward = paired(root), paired(root, direction="BtoA")
    assert torch.equal(backward.train_a, forward.train_b) and torch.equal(backward.train_b, forward.train_a)
    for stage in ("validate", "test"):
        fa, fb = forward.eval_images(stage)
        ba, bb = backward.eval_images(stage)
        assert torch.equal(ba, fb) and torch.equal(bb, fa)
        assert forward.eval_fingerprint(stage) != backward.eval_fingerprint(stage)
    batch = next(iter(backward.test_dataloader()))
    assert torch.equal(batch["A"], to_float(backward.eval_images("test")[0][:2]))
    with pytest.raises(DataError, match="direction=AB"):
        PairedImageDataModule(str(root), direction="AB")


def input_halves(folder: Path, size: int) -> list[torch.Tensor]:
    """The A half of every [A | B] file of a folder, as the data module loads it at `size`."""
    return [torch.tensor(load_side_by_side(path, size, 3)[0].transpose(2, 0, 1)) for path in find_images(folder)[0]]


@pytest.mark.parametrize("present", [("train", "val"), ("train", "test")])
def test_paired_without_separate_val_and_test_holds_validation_out_of_train(tmp_path, present):
    # Defect 5 (issue 6): with one evaluation folder, validation and test were the same pairs. The
    # folder is now the test set (cityscapes and maps publish their scores on val/) and validation
    # is held out of train/.
    root = paired_folder(tmp_path / "pairs", present, (20, 3))
    dm = paired(root)
    (val_a, val_b), (test_a, _) = dm.eval_sets["validate"], dm.eval_sets["test"]
    assert len(val_a) == 2 and len(dm.train_a) == 18 and dm.eval_size("test") == 3  # 10% of 20 held out
    held = rows_of(val_a, input_halves(root / "train", 8))  # validation: training files ...
    trained = rows_of(dm.train_a, input_halves(root / "train", 10))
    assert not set(held) & set(trained) and sorted(held + trained) == list(range(20))  # ... held out of training
    assert torch.equal(test_a, torch.stack(input_halves(root / present[1], 8)))  # test: the folder
    assert not any(torch.equal(v, t) for v in val_a for t in test_a)
    assert torch.equal(val_b, 255 - val_a)  # held-out pairs stay aligned
    assert [len(x) for x in paired(root, val_size=5).eval_sets["validate"]] == [5, 5]


def test_paired_with_val_and_test_folders_uses_both(tmp_path):
    root = paired_folder(tmp_path / "pairs")
    dm = paired(root)
    assert len(dm.train_a) == 4  # nothing held out
    assert torch.equal(dm.eval_sets["validate"][0], torch.stack(input_halves(root / "val", 8)))
    assert torch.equal(dm.eval_sets["test"][0], torch.stack(input_halves(root / "test", 8)))


def test_paired_missing_splits(tmp_path):
    root = paired_folder(tmp_path / "pairs", ("train",), (4,))
    with pytest.raises(DataError) as info:
        paired(root)
    assert str(root / "val") in str(info.value) and str(root / "test") in str(info.value)
    root = paired_folder(tmp_path / "other", ("val",), (4,))
    with pytest.raises(DataError) as info:
        paired(root)
    assert f"{root / 'train'} is missing" in str(info.value)
