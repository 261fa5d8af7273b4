"""InMemoryImageDataModule: split, conform, uint8 <-> float, seeded training order, sharded evaluation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from gans.data import base
from gans.data.base import IndexBatches, InMemoryImageDataModule, TensorImages, held_out_count, to_float, to_uint8
from gans.errors import DataError


class RandomImages(InMemoryImageDataModule):
    """n random images; label i for image i, so a split can be traced back to the originals."""

    name = "random"

    def __init__(self, n: int = 50, shape=(3, 8, 8), n_test: int | None = None, **kwargs) -> None:
        kwargs = {"batch_size": 4, "eval_batch_size": 5, "val_size": 10, "on_device": False, **kwargs}
        super().__init__(**kwargs)
        self.n, self.shape, self.n_test = n, shape, n_test

    def load(self):
        generator = torch.Generator().manual_seed(123)
        images = torch.randint(0, 256, (self.n, *self.shape), generator=generator, dtype=torch.uint8)
        labels = torch.arange(self.n)
        if self.n_test is None:
            return images, labels, None, None
        test = torch.randint(0, 256, (self.n_test, *self.shape), generator=generator, dtype=torch.uint8)
        return images, labels, test, torch.arange(self.n_test)


def ready(**kwargs) -> RandomImages:
    dm = RandomImages(**kwargs)
    dm.setup("fit")
    return dm


def fake_trainer(rank: int, world: int) -> SimpleNamespace:
    return SimpleNamespace(global_rank=rank, world_size=world)


# -- split --------------------------------------------------------------------------------------
def test_split_deterministic_disjoint_and_independent_of_shuffle_seed():
    a, b = ready(shuffle_seed=0), ready(shuffle_seed=99)
    train, val, test = a.train_labels.tolist(), a.val_labels.tolist(), a.test_labels.tolist()
    assert len(train) == 30 and len(val) == 10 and len(test) == 10  # test_size=None: as many as val_size
    assert sorted(train + val + test) == list(range(50))  # each image in exactly one part
    assert train == sorted(train) and val == sorted(val) and test == sorted(test)  # original order kept
    assert torch.equal(a.val_labels, b.val_labels) and torch.equal(a.train_labels, b.train_labels)
    assert torch.equal(a.val_images, b.val_images) and torch.equal(a.test_labels, b.test_labels)
    loaded = a.load()[0]
    assert torch.equal(a.val_images, loaded[a.val_labels]) and torch.equal(a.train_images, loaded[a.train_labels])
    assert torch.equal(a.test_images, loaded[a.test_labels])
    assert not torch.equal(ready(split_seed=1).val_labels, a.val_labels)


def test_without_test_split_a_disjoint_test_part_is_held_out():
    # Defect 5 (issue 6): without a test split of its own, the held-out validation images used to
    # be the test set too, so the images that chose the best checkpoint also scored it.
    dm = ready()
    assert not set(dm.val_labels.tolist()) & set(dm.test_labels.tolist())
    assert not set(dm.train_labels.tolist()) & set(dm.test_labels.tolist())
    assert dm.eval_fingerprint("validate").split("-")[-1] != dm.eval_fingerprint("test").split("-")[-1]
    # the validation part is the same as with a test split of its own: adding the test part moves no image
    assert torch.equal(dm.val_labels, ready(n_test=7).val_labels)
    sized = ready(test_size=0.3)  # a fraction of the 50 images, like val_size
    assert (len(sized.train_images), len(sized.val_images), len(sized.test_images)) == (25, 10, 15)
    counted = ready(val_size=0.1, test_size=4)
    assert (len(counted.train_images), len(counted.val_images), len(counted.test_images)) == (41, 5, 4)


def test_with_a_test_split_it_is_kept_and_test_size_ignored():
    dm = ready(n_test=7, test_size=20)
    assert len(dm.test_images) == 7 and len(dm.val_images) == 10 and len(dm.train_images) == 40
    assert torch.equal(dm.test_images, dm.load()[2]) and not torch.equal(dm.test_images[:7], dm.val_images[:7])


def test_held_out_sizes_must_leave_training_images():
    with pytest.raises(DataError, match="data.val_size=25 and data.test_size=None hold out 25 \\+ 25 of the 50"):
        ready(val_size=25)
    with pytest.raises(DataError, match="data.val_size=50 hold out 50 of the 50 training images"):
        ready(val_size=50, n_test=3)
    with pytest.raises(DataError, match="data.test_size=-1 must be a count of images or a fraction"):
        ready(test_size=-1)
    assert len(ready(val_size=0).val_images) == len(ready(val_size=0).test_images) == 0
    assert [held_out_count(s, 20, "k") for s in (0.1, 0.01, 3, 3.0, 0)] == [2, 1, 3, 3, 0]
    for bad in (1.5, -2, True, "5"):
        with pytest.raises(DataError, match=f"k={bad} must be"):
            held_out_count(bad, 20, "k")


def test_setup_twice_keeps_the_data():
    dm = ready()
    images = dm.train_images
    dm.setup("test")
    assert dm.train_images is images


# -- conform ------------------------------------------------------------------------------------
def test_conform_resizes_to_image_size():
    dm = ready(shape=(3, 20, 20), image_size=32, n_test=3)
    assert dm.train_images.shape == (40, 3, 32, 32) and dm.test_images.shape == (3, 3, 32, 32)
    assert dm.train_images.dtype == torch.uint8 and dm.image_shape == (3, 32, 32)
    # a constant image stays exactly constant, in both directions
    flat = torch.full((2, 3, 20, 20), 77, dtype=torch.uint8)
    assert torch.equal(RandomImages(image_size=32).conform(flat), torch.full((2, 3, 32, 32), 77, dtype=torch.uint8))
    assert torch.equal(RandomImages(image_size=7).conform(flat), torch.full((2, 3, 7, 7), 77, dtype=torch.uint8))
    # the mean brightness is kept by the antialiased resize
    down = RandomImages(image_size=10).conform(dm.load()[0])
    assert abs(down.float().mean() - dm.load()[0].float().mean()) < 1.0


def test_fit_pad_centres_the_images_on_black_and_keeps_their_pixels():
    dm = ready(shape=(1, 28, 28), image_size=32, fit="pad", n_test=3)
    assert dm.train_images.shape == (40, 1, 32, 32) and dm.test_images.shape == (3, 1, 32, 32)
    originals = dm.load()[2]
    assert torch.equal(dm.test_images[..., 2:30, 2:30], originals)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (dm.test_images[..., border] == 0).all()
    # an odd difference puts the extra column at the end
    odd = base.pad_to(torch.full((1, 1, 2, 3), 9, dtype=torch.uint8), 6)
    assert odd[0, 0, 2:4, 1:4].eq(9).all() and odd.sum() == 9 * 6


def test_fit_pad_refuses_images_larger_than_the_side_and_unknown_fits():
    with pytest.raises(DataError, match="data.fit=pad cannot pad 28x28 images to data.image_size=16.*at least 28"):
        ready(shape=(1, 28, 28), image_size=16, fit="pad")
    with pytest.raises(DataError, match="data.fit='crop' is not one of resize, pad"):
        RandomImages(fit="crop")


def test_conform_gray_to_rgb():
    dm = ready(shape=(1, 8, 8), channels=3)
    assert dm.train_images.shape == (30, 3, 8, 8) and dm.train_images.is_contiguous()
    original = dm.load()[0][dm.train_labels]
    for c in range(3):
        assert torch.equal(dm.train_images[:, c : c + 1], original)


def test_conform_rgb_to_gray_matches_pil_luma():
    dm = ready(shape=(3, 8, 8), channels=1)
    assert dm.train_images.shape == (30, 1, 8, 8)
    original = dm.load()[0][dm.train_labels]
    for image, gray in zip(original[:5], dm.train_images[:5]):
        pil = np.asarray(Image.fromarray(image.permute(1, 2, 0).numpy()).convert("L")).astype(int)
        assert np.abs(gray[0].numpy().astype(int) - pil).max() <= 1
    red = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    red[:, 0] = 255
    assert RandomImages(channels=1).conform(red).unique().tolist() == [76]


def test_conform_rejects_other_channel_counts():
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        ready(channels=2)


# -- uint8 <-> float ------------------------------------------------------------------------------
def test_to_float_to_uint8_round_trip_all_values():
    values = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    floats = to_float(values)
    assert floats.dtype == torch.float32 and floats.min() == -1.0 and floats.max() == 1.0
    assert floats.flatten().diff().gt(0).all()  # strictly increasing: no two values collide
    assert torch.equal(to_uint8(floats), values)
    assert torch.equal(values, torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16))  # input untouched
    assert to_uint8(torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0])).tolist() == [0, 0, 128, 255, 255]
    grads = torch.zeros(3, requires_grad=True)
    assert to_uint8(grads).dtype == torch.uint8


# -- training order -------------------------------------------------------------------------------
def order(dm: InMemoryImageDataModule, epoch: int) -> list[int]:
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return torch.cat(list(loader.sampler)).tolist()


def test_training_order_seeded_per_epoch():
    a, b = ready(shuffle_seed=5), ready(shuffle_seed=5)
    assert order(a, 0) == order(b, 0) and order(a, 3) == order(b, 3)
    assert order(a, 0) != order(a, 1)
    assert order(a, 0) != order(ready(shuffle_seed=6), 0)
    drawn = order(a, 2)  # 30 training images, batches of 4: 28 of them, each once
    assert len(drawn) == len(set(drawn)) == 28 and set(drawn) <= set(range(30))


def test_train_loader_batches_follow_the_sampler():
    dm = ready(n=47, val_size=5, n_test=3)  # 42 training images, batch 4: 10 full batches, 2 dropped
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(4)
    batches = list(loader)
    assert len(batches) == len(loader) == 10 == dm.steps_per_epoch()
    indices = torch.cat([batch["index"] for batch in batches])
    assert indices.tolist() == torch.cat(list(loader.sampler)).tolist()
    for batch in batches:
        assert batch["image"].shape == (4, 3, 8, 8) and batch["image"].dtype == torch.float32
        assert torch.equal(batch["image"], to_float(dm.train_images[batch["index"]]))
        assert torch.equal(batch["label"], dm.train_labels[batch["index"]])


def test_a_batch_already_on_the_device_skips_lightning_s_transfer_and_others_move():
    dm, cpu = ready(n=20, val_size=2), torch.device("cpu")
    batch = next(iter(dm.train_dataloader()))
    assert dm.transfer_batch_to_device(batch, cpu, 0) is batch
    captioned = {**batch, "caption": ["a"] * 4}  # not all tensors: Lightning's walk, same contents
    moved = dm.transfer_batch_to_device(captioned, cpu, 0)
    assert moved is not captioned and moved["caption"] == ["a"] * 4 and torch.equal(moved["image"], batch["image"])


def test_train_order_sharded_over_ranks():
    dm = ready(n=51, val_size=10, n_test=3)  # 41 training images: 20 per rank, one dropped
    shards = []
    for rank in range(2):
        dm.trainer = fake_trainer(rank, 2)
        shards.append(order(dm, 1))
        assert dm.steps_per_epoch() == 5
    assert len(shards[0]) == len(shards[1]) == 20 and not set(shards[0]) & set(shards[1])


def test_train_loader_needs_one_batch():
    dm = ready(n=13, val_size=10, n_test=3, batch_size=4)
    with pytest.raises(DataError, match="3 training images cannot fill one batch of data.batch_size=4"):
        dm.train_dataloader()


# -- evaluation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("size", [0, 1, 7, 10, 11])
def test_eval_batches_cover_each_index_once(size, world):
    shards = [list(IndexBatches(size, 3, rank, world, shuffle=False)) for rank in range(world)]
    merged = sorted(i for shard in shards for batch in shard for i in batch.tolist())
    assert merged == list(range(size))  # no index twice, none padded, none missing
    assert [len(IndexBatches(size, 3, rank, world, shuffle=False)) for rank in range(world)] == [len(s) for s in shards]


def test_eval_loaders_over_two_ranks_see_each_image_once():
    dm = ready(n=50, val_size=11, n_test=9)
    seen = {"validate": [], "test": []}
    for rank in range(2):
        dm.trainer = fake_trainer(rank, 2)
        for stage, loader in (("validate", dm.val_dataloader()), ("test", dm.test_dataloader())):
            for batch in loader:
                assert torch.equal(batch["image"], to_float(dm.eval_images(stage)[batch["index"]]))
                seen[stage] += batch["index"].tolist()
    assert sorted(seen["validate"]) == list(range(11)) and sorted(seen["test"]) == list(range(9))


def test_max_eval_samples_caps_eval_images():
    dm = ready(val_size=10, max_eval_samples=4)
    assert torch.equal(dm.eval_images("validate"), dm.val_images[:4])
    assert sum(len(b["image"]) for b in dm.val_dataloader()) == 4
    assert len(ready(val_size=10, max_eval_samples=100).eval_images("validate")) == 10


@pytest.mark.parametrize("cap", [0, -5, 2.5])
def test_bad_evaluation_caps_are_refused(cap):
    for key in ("max_eval_samples", "max_val_samples"):
        with pytest.raises(DataError, match=rf"data.{key}={cap} must be a positive number of images, or null"):
            RandomImages(**{key: cap})


def test_max_val_samples_caps_validation_below_max_eval_samples():
    data = ready(n=200, val_size=64, max_eval_samples=40, max_val_samples=20)
    assert data.eval_size("validate") == 20 and data.eval_size("test") == 40
    data.max_val_samples = 100  # never above the shared cap
    assert data.eval_size("validate") == 40
    assert ready(val_size=10, max_val_samples=4).eval_size("test") == 10  # the test keeps its own


def test_eval_fingerprint_identifies_the_images():
    a, b = ready(), ready()
    assert a.eval_fingerprint("validate") == b.eval_fingerprint("validate")
    assert a.eval_fingerprint("validate").startswith("random-validate-10-3x8x8-")
    assert a.eval_fingerprint("validate") != a.eval_fingerprint("test")  # the stage is part of it
    changed = ready()
    changed.val_images[3, 1, 2, 2] ^= 1  # one pixel, one bit
    assert a.eval_fingerprint("validate") != changed.eval_fingerprint("validate")
    assert ready(max_eval_samples=5).eval_fingerprint("validate").startswith("random-validate-5-")


def test_eval_fingerprint_hashes_once_per_stage_until_the_data_are_reloaded(monkeypatch):
    # Defect 9 (issue 6): the model asks for the fingerprint on every evaluation batch of every
    # stream, and each answer copied the evaluation set to the host and hashed it again.
    calls = []
    sha1 = base.hashlib.sha1
    monkeypatch.setattr(base.hashlib, "sha1", lambda *args: calls.append(1) or sha1(*args))
    dm = ready()
    first = {stage: dm.eval_fingerprint(stage) for stage in ("validate", "test")}
    for _ in range(20):
        for stage in ("validate", "test"):
            assert dm.eval_fingerprint(stage) == first[stage]
    assert len(calls) == 2  # one hash per stage
    dm.max_eval_samples = 4  # another count of images is another set
    assert dm.eval_fingerprint("validate").startswith("random-validate-4-") and len(calls) == 3
    dm.max_eval_samples = None
    dm.train_images = None  # reload: the data may have changed on disk
    dm.setup("fit")
    assert dm.eval_fingerprint("validate") == first["validate"] and len(calls) == 4


def test_tensor_images_items_and_length_check():
    images, labels = torch.arange(2 * 3 * 2 * 2, dtype=torch.uint8).view(2, 3, 2, 2), torch.tensor([4, 5])
    item = TensorImages(images, labels)[1]
    assert item["image"].shape == (3, 2, 2) and item["label"] == 5 and item["index"] == 1
    assert torch.equal(item["image"], to_float(images[1]))
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        TensorImages(images, torch.arange(3))
