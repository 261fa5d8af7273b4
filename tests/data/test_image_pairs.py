"""Image-to-image data: unpaired (CycleGAN) and paired (pix2pix) folders, their downloads and offline
errors, the device-side crop/flip, sharding, and the Fashion-MNIST edges sets."""

from __future__ import annotations

import io
import socket
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

import gans.data.image_pairs as ip
from gans.config import register_resolvers
from gans.data.base import to_float, to_uint8
from gans.data.fashion_mnist import read_idx
from gans.data.image_folder import find_images, load_image
from gans.data.image_pairs import (
    FashionEdgesDataModule,
    FashionEdgesUnpairedDataModule,
    JitterBatches,
    PairedImageDataModule,
    UnpairedImageDataModule,
    crop_flip,
    download_and_extract,
    edge_map,
)
from gans.errors import DataError

CONF = Path(__file__).resolve().parents[2] / "conf"


def fake_trainer(rank: int, world: int) -> SimpleNamespace:
    return SimpleNamespace(
        global_rank=rank, world_size=world, strategy=SimpleNamespace(root_device=torch.device("cpu"))
    )


def noise(height: int, width: int, channels: int, seed: int) -> np.ndarray:
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


# -- the unpaired (CycleGAN) layout -------------------------------------------------------------
SIZES = {"trainA": 3, "trainB": 5, "testA": 3, "testB": 4}


def unpaired_folder(root: Path) -> Path:
    """ROOT/{trainA,trainB,testA,testB}: odd sizes; RGB, grayscale and RGBA files; a nested folder."""
    for s, (split, n) in enumerate(SIZES.items()):
        for i in range(n):
            name = f"sub/{i:02d}.png" if i == 1 else f"{i:02d}.png"  # found recursively, sorted by path
            if i == 2:  # grayscale, odd size
                save(root / split / name, noise(13, 21, 1, 10 * s + i), "L")
            else:
                save(root / split / name, noise(17 + i, 11 + 2 * s, 3, 10 * s + i))
    rgba = noise(9, 9, 4, 99)
    rgba[..., 3] = 0  # fully transparent: composited onto white
    save(root / "testB" / "03.png", rgba, "RGBA")
    (root / "trainA" / "notes.txt").write_text("not an image")  # ignored
    return root


def unpaired(root: Path, **kwargs) -> UnpairedImageDataModule:
    kwargs = {"image_size": 8, "load_size": 10, "batch_size": 1, "eval_batch_size": 2, "on_device": False, **kwargs}
    dm = UnpairedImageDataModule(str(root), **kwargs)
    dm.setup("fit")
    return dm


@pytest.fixture
def unpaired_root(tmp_path) -> Path:
    return unpaired_folder(tmp_path / "zebras")


def windows(image: torch.Tensor, size: int) -> dict[tuple[int, int, bool], torch.Tensor]:
    """Every size x size crop of a CHW image and its mirror image, by (top, left, flipped)."""
    h, w = image.shape[-2:]
    crops = {
        (y, x, False): image[:, y : y + size, x : x + size] for y in range(h - size + 1) for x in range(w - size + 1)
    }
    return crops | {(y, x, True): crop.flip(-1) for (y, x, _), crop in crops.items()}


def placements(crop: torch.Tensor, image: torch.Tensor) -> set[tuple[int, int, bool]]:
    """Where in `image` the crop can come from: (top, left, flipped) of each matching window."""
    return {key for key, window in windows(image, crop.shape[-1]).items() if torch.equal(crop, window)}


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


def files_at(folder: Path, size: int) -> list[torch.Tensor]:
    """Every image of a folder as the data module loads it at `size`, in sorted file order."""
    return [torch.tensor(load_image(path, size, 3, "stretch").transpose(2, 0, 1)) for path in find_images(folder)[0]]


def rows_of(images: torch.Tensor, candidates: list[torch.Tensor]) -> list[int]:
    """For each image, the position of the equal candidate (noise images: each matches one)."""
    return [next(i for i, c in enumerate(candidates) if torch.equal(image, c)) for image in images]


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


def epoch_indices(dm, epoch: int) -> tuple[list[int], list[int]]:
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    rows = torch.cat(list(loader.sampler), dim=1)
    return rows[0].tolist(), rows[1].tolist()


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


def test_jitter_batches_draws_are_seeded_and_within_range():
    sampler = JitterBatches((7, 4), 2, seed=1, crop_range=5)
    rows = torch.cat(list(sampler), dim=1)
    assert rows.shape == (5, 6) and len(sampler) == 3
    assert rows[2:4].min() >= 0 and rows[2:4].max() <= 4 and set(rows[4].tolist()) <= {0, 1}
    assert torch.equal(rows, torch.cat(list(JitterBatches((7, 4), 2, seed=1, crop_range=5)), dim=1))
    paired = torch.cat(list(JitterBatches((6, 6), 3, seed=1, paired=True, crop_range=3)), dim=1)
    assert torch.equal(paired[0], paired[1]) and sorted(paired[0].tolist()) == list(range(6))
    still = torch.cat(list(JitterBatches((6, 6), 3, paired=True, crop_range=1, jitter=False)), dim=1)
    assert still[2:].abs().sum() == 0
    with pytest.raises(ValueError, match="equal sizes"):
        JitterBatches((6, 5), 1, paired=True)


def test_crop_flip_matches_slicing():
    images = torch.arange(2 * 3 * 5 * 6).view(2, 3, 5, 6)
    out = crop_flip(images, torch.tensor([1, 0]), torch.tensor([2, 3]), torch.tensor([0, 1]), 3)
    assert torch.equal(out[0], images[0, :, 1:4, 2:5]) and torch.equal(out[1], images[1, :, 0:3, 3:6].flip(-1))


def test_without_jitter_training_images_are_whole(unpaired_root):
    dm = unpaired(unpaired_root, jitter=False, val_size=0)
    assert dm.train_a.shape == (3, 3, 8, 8)  # resized straight to image_size
    for batch in dm.train_dataloader():
        assert torch.equal(batch["A"], to_float(dm.train_a[batch["index"]]))
        assert torch.equal(batch["B"], to_float(dm.train_b[batch["index_B"]]))


def test_train_sharded_over_two_ranks(unpaired_root):
    dm = unpaired(unpaired_root, val_size=0)
    seen = []
    for rank in range(2):
        dm.trainer = fake_trainer(rank, 2)
        assert len(dm.train_dataloader()) == dm.steps_per_epoch() == 5 // 1 // 2
        seen.append(epoch_indices(dm, 1)[1])
    assert len(seen[0]) == len(seen[1]) == 2 and not set(seen[0]) & set(seen[1])
    with pytest.raises(DataError, match="cannot fill one batch"):
        unpaired(unpaired_root, batch_size=6, val_size=0).train_dataloader()


@pytest.mark.parametrize("world", [1, 2, 3])
def test_eval_sharded_over_ranks_scores_every_image_of_both_domains_once(unpaired_root, world):
    # Defect 6 (issue 6): evaluation stopped at min(|testA|, |testB|) = 3 items, so testB's fourth
    # image was never scored. Items now run to max(|A|, |B|), flagged per domain.
    dm = unpaired(unpaired_root, on_device=True, val_size=2)
    seen = {(stage, domain): [] for stage in ("validate", "test") for domain in "AB"}
    for rank in range(world):
        dm.trainer = fake_trainer(rank, world)
        dm.setup("validate")  # moves to the (fake) device
        for stage, loader in (("validate", dm.val_dataloader()), ("test", dm.test_dataloader())):
            a, b = dm.eval_images(stage)
            for batch in loader:
                assert set(batch) == {"A", "B", "has_A", "has_B", "index"} and batch["A"].shape[1:] == (3, 8, 8)
                for domain, images in (("A", a), ("B", b)):
                    present = batch[f"has_{domain}"]
                    assert present.dtype == torch.bool and present.tolist() == (batch["index"] < len(images)).tolist()
                    index = batch["index"][present]
                    assert torch.equal(batch[domain][present], to_float(images[index]))
                    seen[stage, domain] += index.tolist()
    assert sorted(seen["test", "A"]) == [0, 1, 2] and sorted(seen["test", "B"]) == [0, 1, 2, 3]
    assert sorted(seen["validate", "A"]) == sorted(seen["validate", "B"]) == [0, 1]
    assert dm.eval_size("test") == 4 and dm.eval_size("validate") == 2


def test_max_eval_samples_caps_each_domain(unpaired_root):
    dm = unpaired(unpaired_root, max_eval_samples=2)
    a, b = dm.eval_images("test")
    assert dm.eval_size("test") == 2 and len(a) == len(b) == 2
    assert sum(int(batch["has_B"].sum()) for batch in dm.test_dataloader()) == 2
    assert dm.eval_fingerprint("test").startswith("zebras-test-2+2-3x8x8-")
    dm.max_eval_samples = 3  # testA has 3, testB 4: B is capped, A whole
    assert [len(x) for x in dm.eval_images("test")] == [3, 3]
    assert dm.eval_fingerprint("test").startswith("zebras-test-3+3-")
    dm.max_eval_samples = None
    assert [len(x) for x in dm.eval_images("test")] == [3, 4]
    assert dm.eval_fingerprint("test").startswith("zebras-test-3+4-")


def test_eval_fingerprint_hashes_once_per_stage_until_the_data_are_reloaded(unpaired_root, monkeypatch):
    # Defect 9 (issue 6): the model asks on every evaluation batch of every stream, and each answer
    # copied both evaluation sets to the host and hashed them again.
    calls = []
    sha1 = ip.hashlib.sha1
    monkeypatch.setattr(ip.hashlib, "sha1", lambda *args: calls.append(1) or sha1(*args))
    dm = unpaired(unpaired_root)
    first = {stage: dm.eval_fingerprint(stage) for stage in ("validate", "test")}
    for _ in range(20):
        for stage in ("validate", "test"):
            assert dm.eval_fingerprint(stage) == first[stage]
    assert len(calls) == 2
    dm.train_a = None  # reloaded: the folder may have changed
    dm.setup("fit")
    assert dm.eval_fingerprint("test") == first["test"] and len(calls) == 3


def test_fingerprint_identifies_both_sets(unpaired_root):
    first = unpaired(unpaired_root).eval_fingerprint("test")
    assert unpaired(unpaired_root).eval_fingerprint("test") == first
    assert unpaired(unpaired_root).eval_fingerprint("validate") != first  # the stage is part of it
    save(unpaired_root / "testB" / "00.png", noise(17, 17, 3, 1234))  # one B image changes
    assert unpaired(unpaired_root).eval_fingerprint("test") != first


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


# -- the paired (pix2pix) layout ----------------------------------------------------------------
def paired_folder(root: Path, splits=("train", "val", "test"), counts=(4, 3, 2)) -> Path:
    """[A | B] files with B = 255 - A exactly (halves 10x10, so load_size=10 keeps them unresampled)."""
    for s, (split, n) in enumerate(zip(splits, counts)):
        for i in range(n):
            a = noise(10, 10, 3, 100 * s + i)
            save(root / split / f"{i}.png", np.concatenate([a, 255 - a], 1))
    return root


def paired(root: Path, **kwargs) -> PairedImageDataModule:
    kwargs = {"image_size": 8, "load_size": 10, "batch_size": 2, "eval_batch_size": 2, "on_device": False, **kwargs}
    dm = PairedImageDataModule(str(root), **kwargs)
    dm.setup("fit")
    return dm


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
    return [torch.tensor(ip.load_side_by_side(path, size, 3)[0].transpose(2, 0, 1)) for path in find_images(folder)[0]]


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
    monkeypatch.setattr(ip.fashion_mnist, "host_reachable", lambda *a, **k: pytest.fail("file:// needs no check"))
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
    monkeypatch.setattr(ip.fashion_mnist, "host_reachable", lambda url, timeout=3.0: asked.append(url) or False)
    monkeypatch.setattr(ip, "download_and_extract", lambda *a, **k: pytest.fail("must not download"))
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
    monkeypatch.setattr(ip, "download_and_extract", lambda *a, **k: pytest.fail("must not download"))
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
def test_edge_map_is_integer_sobel():
    image = torch.zeros(1, 1, 6, 6, dtype=torch.uint8)
    image[..., :, 3:] = 100  # a vertical step of 100: Sobel magnitude 400 beside it, 0 elsewhere
    edges = edge_map(image)
    assert edges.dtype == torch.uint8 and set(edges.unique().tolist()) == {0, 255}
    assert (edges[0, 0] == 0).nonzero()[:, 1].unique().tolist() == [2, 3]
    assert edge_map(image, threshold=400).unique().tolist() == [255]  # strictly above the threshold
    rgb = image.expand(-1, 3, -1, -1)
    assert torch.equal(edge_map(rgb), edges)


@pytest.fixture(scope="module")
def fashion_edges(tmp_path_factory) -> FashionEdgesDataModule:
    root = tmp_path_factory.mktemp("fm")
    dm = FashionEdgesDataModule(root=str(root), download=False, train_size=300, val_size=40, max_eval_samples=30)
    dm.on_device = False
    dm.setup("fit")
    return dm


def test_fashion_edges_pairs(fashion_edges):
    dm = fashion_edges
    assert dm.train_a.shape == dm.train_b.shape == (300, 1, 32, 32) and dm.train_a.dtype == torch.uint8
    assert torch.equal(dm.train_a, edge_map(dm.train_b))  # A is a function of B
    assert dm.aligned_eval and FashionEdgesUnpairedDataModule.aligned_eval
    assert dm.eval_size("validate") == dm.eval_size("test") == 30
    assert len(dm.eval_sets["validate"][0]) == 40 and len(dm.eval_sets["test"][0]) == 10000
    for stage in ("validate", "test"):
        a, b = dm.eval_images(stage)
        assert torch.equal(a, edge_map(b))  # evaluation batches are true pairs
    items = torch.from_numpy(read_idx(Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"))[:30].copy())
    resized = torch.nn.functional.interpolate(items[:, None].float(), size=(32, 32), mode="bilinear", antialias=True)
    assert torch.equal(dm.eval_images("test")[1], resized.round().clamp(0, 255).to(torch.uint8))  # B: the items
    edge_share = (dm.train_a == 0).float().mean()
    assert 0.05 < edge_share < 0.4  # outlines, neither empty nor solid
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"A", "B", "index"} and batch["A"].shape == (64, 1, 32, 32)
    assert torch.equal(batch["A"], to_float(dm.train_a[batch["index"]]))
    assert torch.equal(batch["B"], to_float(dm.train_b[batch["index"]]))
    assert dm.steps_per_epoch() == 300 // 64


def test_fashion_edges_deterministic_and_unpaired_halves_disjoint(fashion_edges, tmp_path):
    kwargs = {"root": str(tmp_path), "download": False, "train_size": 300, "val_size": 40, "on_device": False}
    dm = FashionEdgesUnpairedDataModule(max_eval_samples=30, **kwargs)
    dm.setup("fit")
    index_a, index_b = dm.train_indices
    assert len(index_a) == len(index_b) == 150 and not set(index_a.tolist()) & set(index_b.tolist())
    assert sorted(index_a.tolist() + index_b.tolist()) == list(range(300))
    # the same items as the paired module's (same split), divided: edges of one half, items of the other
    assert torch.equal(dm.train_a, fashion_edges.train_a[index_a]) and torch.equal(
        dm.train_b, fashion_edges.train_b[index_b]
    )
    assert dm.eval_fingerprint("test") == fashion_edges.eval_fingerprint("test")  # same evaluation pairs
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"A", "B", "index", "index_B"} and batch["A"].shape == (16, 1, 32, 32)
    assert dm.steps_per_epoch() == 150 // 16
    jittered = FashionEdgesDataModule(jitter=True, channels=3, max_eval_samples=30, **kwargs)
    jittered.setup()
    assert jittered.train_a.shape == (300, 3, 36, 36) and jittered.eval_images("test")[0].shape == (30, 3, 32, 32)
    assert torch.equal(jittered.train_a[:, :1], edge_map(jittered.train_b[:, :1]))
    batch = next(iter(jittered.train_dataloader()))
    assert batch["A"].shape == (64, 3, 32, 32) and batch["B"].shape == (64, 3, 32, 32)


# -- configs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, target, overrides",
    [
        ("horse2zebra", UnpairedImageDataModule, []),
        ("unpaired_folder", UnpairedImageDataModule, ["data.root=/x/mine"]),
        ("facades", PairedImageDataModule, []),
        ("paired_folder", PairedImageDataModule, ["data.root=/x/mine"]),
        ("fashion_edges", FashionEdgesDataModule, []),
        ("fashion_edges_unpaired", FashionEdgesUnpairedDataModule, []),
    ],
)
def test_configs_instantiate(name, target, overrides):
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"data={name}", "paths.root_dir=/r", *overrides])
    dm = instantiate(cfg.data)  # builds only: nothing is read until setup
    assert type(dm) is target and dm.shuffle_seed == cfg.seed
    if name == "facades":
        assert dm.direction == "BtoA" and dm.root == Path("/r/data/facades") and dm.dataset_name == "facades"
    if name == "horse2zebra":
        assert dm.root == Path("/r/data/horse2zebra") and (dm.image_size, dm.load_size, dm.batch_size) == (256, 286, 1)
    if "folder" in name:
        assert dm.root == Path("/x/mine") and dm.dataset_name is None and dm.url is None
    if "fashion" in name:
        assert dm.image_shape == (1, 32, 32) and dm.batch_size == (64 if name == "fashion_edges" else 16)
