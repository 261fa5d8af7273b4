"""The in-memory image data module every data set here derives from.

Images are stored once as uint8 tensors (N, C, H, W) and, when training on a GPU, moved there,
so a batch is one indexing operation on the device and loading never limits speed. The data
module also owns the sharding across processes (trainer `use_distributed_sampler=False`): the
training order is seeded per epoch, so a resumed run sees the same batches, and evaluation sets
are split without padding, so a metric synced over ranks sees each image exactly once.

Validation never equals test: the best checkpoint is chosen on `val/fid` and then scored on
`test/fid`, and a test score measured on the images that chose the checkpoint is optimistic. A
data set without a test split of its own is therefore split three ways (train, validation, test),
each image in exactly one part.
"""

from __future__ import annotations

import hashlib
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from gans.errors import DataError

log = logging.getLogger(__name__)

FITS = ("resize", "pad")


def held_out_count(setting: int | float, n: int, key: str) -> int:
    """A held-out size given as a count (int >= 0) or a fraction of the `n` images (float in (0, 1),
    rounded, at least one image) -> a count. `key` names the setting in the error ("data.val_size")."""
    if isinstance(setting, float) and 0.0 < setting < 1.0:
        return max(1, round(setting * n))
    if isinstance(setting, (int, float)) and not isinstance(setting, bool) and float(setting).is_integer():
        if setting >= 0:
            return int(setting)
    raise DataError(f"{key}={setting} must be a count of images or a fraction in (0, 1)")


def sample_cap(setting: int | None, key: str) -> int | None:
    """An evaluation sample cap: a positive count of images, or None (every image). `key` names
    the setting in the error ("data.max_eval_samples")."""
    if setting is None:
        return None
    if isinstance(setting, (int, float)) and not isinstance(setting, bool) and float(setting).is_integer():
        if setting >= 1:
            return int(setting)
    raise DataError(f"{key}={setting} must be a positive number of images, or null for all of them")


def to_float(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range of a tanh generator."""
    return images.to(torch.float32).div(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] -> uint8 [0, 255]; exact inverse of `to_float` on its outputs."""
    return images.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def to_unit(images: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 [0, 255] or float [-1, 1] (the two forms images take here) -> float [0, 1], the
    pixel scale on which reconstruction errors and pixel distances are reported (x / 255)."""
    if images.dtype == torch.uint8:
        return images.to(dtype).div_(255.0)
    return images.detach().to(dtype).add(1.0).mul_(0.5)


def pad_to(images: Tensor, side: int) -> Tensor:
    """uint8 images centred on black squares of `side` (the extra row or column, if odd, at the end)."""
    height, width = images.shape[-2:]
    if height > side or width > side:
        raise DataError(f"data.fit=pad cannot pad {height}x{width} images to data.image_size={side}: "
                        f"set data.image_size to at least {max(height, width)} or data.fit=resize")  # fmt: skip
    top, left = (side - height) // 2, (side - width) // 2
    return F.pad(images, (left, side - width - left, top, side - height - top), value=0)


class TensorImages(Dataset):
    """Images and labels in memory, indexed by a whole batch of indices at once."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int | Tensor) -> dict[str, Tensor]:
        """One item for an int; a batch for a tensor of indices (on the images' device)."""
        return {"image": to_float(self.images[index]), "label": self.labels[index], "index": torch.as_tensor(index)}


class IndexBatches(Sampler[Tensor]):
    """Batches of indices as tensors on the data's device, for `DataLoader(batch_size=None)`.

    The order of an epoch is drawn once from (seed, epoch) and copied to the device once: a
    batch is then a slice, so no step pays a host-to-device copy from pageable memory (which
    would wait for the GPU and expose every microsecond of Python overhead). Shuffled orders
    are sharded like `DistributedSampler` (equal counts per rank, the tail dropped); evaluation
    orders (`shuffle=False`) give rank r the indices r, r + world, ... with no padding, so a
    metric summed over ranks sees each item exactly once.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.size, self.batch_size, self.rank, self.world_size = size, batch_size, rank, world_size
        self.shuffle, self.seed, self.device, self.epoch = shuffle, seed, torch.device(device), 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def _shard(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.size)[self.rank :: self.world_size]
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        per_rank = self.size // self.world_size
        return order[self.rank : per_rank * self.world_size : self.world_size]

    def __iter__(self) -> Iterator[Tensor]:
        # A generator: the order is drawn at the first batch, not when Lightning builds the
        # iterator (which, resuming a run, it does before the epoch counter is restored).
        order = self._shard().to(self.device)
        for i in range(len(self)):
            yield order[i * self.batch_size : (i + 1) * self.batch_size]

    def __len__(self) -> int:
        if self.shuffle:  # full batches only: batch norm and the step count stay even
            return self.size // self.world_size // self.batch_size
        return math.ceil(len(range(self.rank, self.size, self.world_size)) / self.batch_size)


class DeviceDataModule(L.LightningDataModule, ABC):
    """The loader plumbing every data module here shares (in-memory, paired, unpaired, LR/HR):
    uint8 tensors held once (on the training device with `on_device`), batches drawn as index
    tensors (`DataLoader(batch_size=None)` over a sampler of this module), training shuffled per
    (seed, epoch) and sharded over processes, evaluation sharded without padding, and the
    fingerprint that keys cached FID statistics to the evaluation images.

    A family states its tensors (`tensor_names`), its evaluation tensors per stage
    (`eval_tensors`), and its loaders (`train_dataloader`, `_eval_dataloader`).

    Args:
        batch_size: items per training step on each process.
        eval_batch_size: items per evaluation step.
        max_eval_samples: cap on the evaluation items of a stage.
        on_device: keep the tensors on the training device (GPU) rather than in host memory.
        shuffle_seed: seed of the per-epoch training order (Hydra passes the run's `seed`).
    """

    name = "images"
    num_classes = 0  # 0: unlabelled

    def __init__(
        self,
        batch_size: int,
        eval_batch_size: int,
        max_eval_samples: int | None,
        on_device: bool,
        shuffle_seed: int,
    ) -> None:
        super().__init__()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.max_eval_samples = sample_cap(max_eval_samples, "data.max_eval_samples")
        self.on_device, self.shuffle_seed = on_device, shuffle_seed
        self._fingerprints: dict[tuple, str] = {}  # (stage, counts) -> eval_fingerprint

    def find_classes(self) -> int:
        """The number of classes (0 for unlabelled data), known before the images load: the model's
        config reads it as `data.num_classes`. A data set that must look at its files overrides this."""
        return self.num_classes

    # -- where the tensors live -------------------------------------------------------------
    def tensor_names(self) -> tuple[str, ...]:
        """Attributes holding tensors (or tuples or lists of tensors, or dicts of those) to move to the device."""
        return ()

    def to_training_device(self) -> None:
        """Move every tensor of `tensor_names` to the trainer's device (with `on_device`)."""
        if not (self.on_device and self.trainer is not None):
            return
        device = self.trainer.strategy.root_device

        def moved(value):
            if isinstance(value, Tensor):
                return value.to(device)
            if isinstance(value, (tuple, list)):
                return type(value)(moved(v) for v in value)
            if isinstance(value, dict):
                return {k: moved(v) for k, v in value.items()}
            return value

        for name in self.tensor_names():
            setattr(self, name, moved(getattr(self, name)))

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        # With `on_device` the batches are indexed on the training device already; Lightning's
        # walk over the batch would find nothing to move, at Python cost every iteration.
        if isinstance(batch, dict) and all(isinstance(v, Tensor) and v.device == device for v in batch.values()):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def forget_fingerprints(self) -> None:
        """New data, new fingerprints."""
        self._fingerprints.clear()

    # -- evaluation -------------------------------------------------------------------------
    @abstractmethod
    def eval_tensors(self, stage: str) -> tuple[Tensor, ...]:
        """The uint8 image tensors an evaluation stage ("validate" or "test") compares against."""

    def eval_fingerprint(self, stage: str) -> str:
        """Identifies the evaluation images, so cached Inception statistics match the data:
        `<name>-<stage>-<counts joined by +>-<C>x<H>x<W>-<sha1 of the images>`.

        Hashing copies the images to the host, so it is done once per stage and count and kept
        until the data are loaded again (the model asks on every evaluation batch and stream)."""
        tensors = self.eval_tensors(stage)
        key = (stage, *(len(t) for t in tensors))
        if key not in self._fingerprints:
            digest = hashlib.sha1()
            for images in tensors:
                digest.update(images.cpu().contiguous().numpy().tobytes())
            counts = "+".join(str(len(t)) for t in tensors)
            shape = "x".join(map(str, tensors[0].shape[1:]))
            self._fingerprints[key] = f"{self.name}-{stage}-{counts}-{shape}-{digest.hexdigest()[:16]}"
        return self._fingerprints[key]

    # -- loaders ----------------------------------------------------------------------------
    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    @abstractmethod
    def train_count(self) -> int:
        """Training items per epoch (over all processes, before sharding)."""

    def check_one_batch(self, what: str = "training images") -> None:
        """One DataError line when the training items cannot fill one batch on every process."""
        _, world = self._rank_world()
        n = self.train_count()
        if n < self.batch_size * world:
            raise DataError(
                f"{n} {what} cannot fill one batch of data.batch_size={self.batch_size} on {world} process(es): "
                "add images or lower data.batch_size"
            )

    def eval_batches(self, size: int, device: torch.device) -> IndexBatches:
        """Evaluation items 0..size-1 in order, each on exactly one process (no padding)."""
        rank, world = self._rank_world()
        return IndexBatches(size, self.eval_batch_size, rank, world, shuffle=False, device=device)

    @abstractmethod
    def _eval_dataloader(self, stage: str) -> DataLoader:
        """The loader of an evaluation stage ("validate" or "test")."""

    def val_dataloader(self) -> DataLoader:
        return self._eval_dataloader("validate")

    def test_dataloader(self) -> DataLoader:
        return self._eval_dataloader("test")

    def steps_per_epoch(self) -> int:
        _, world = self._rank_world()
        return self.train_count() // (self.batch_size * world)


class InMemoryImageDataModule(DeviceDataModule):
    """Base for image data sets: subclasses `load` the images; `setup` splits and stores them as
    `train_images/labels`, `val_*` and `test_*`.

    Validation is `val_size` images held out from the training images. A data set with a test
    split of its own (Fashion-MNIST's 10,000) is tested on it; one without (a folder of images)
    also holds out `test_size` training images for the test, disjoint from validation, so the set
    that chose the best checkpoint (`val/fid`) never scores it (`test/fid`).

    Args:
        batch_size: images per training step on each process.
        eval_batch_size: images per evaluation step (FID feature extraction).
        val_size: training images held out for validation (the `val/fid` reference): a count, or
            a fraction of the images (float in (0, 1), at least one image).
        test_size: images held out for the test when `load` returns no test split: a count or a
            fraction, as `val_size`; None holds out as many as `val_size`, so `test/fid` and
            `val/fid` use the same sample count. Ignored for data sets with a test split.
        max_eval_samples: cap on the val and test images used for evaluation (FID sample count).
        max_val_samples: a further cap on the validation images alone (a cheap `val/fid` that picks
            the checkpoint, a larger test set that scores it); None = `max_eval_samples` only.
        on_device: keep the tensors on the training device (GPU) rather than in host memory.
        split_seed: seed of the train/val(/test) split, fixed so the parts agree across runs and seeds.
        shuffle_seed: seed of the per-epoch training order (Hydra passes the run's `seed`).
        image_size: bring every image to this side once, at load (e.g. 64 for the 64x64 DCGAN).
        fit: how a side other than `image_size` gets there: "resize" (antialiased bilinear) or
            "pad" (centred on a black square, for images no larger than it: Fashion-MNIST's 28
            padded to 32, as LeNet-5 padded MNIST, so the items keep their pixels).
        channels: 1 (grayscale) or 3 (RGB); images are converted once, at load.
    """

    class_names: tuple[str, ...] = ()

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int = 250,
        val_size: int | float = 5000,
        test_size: int | float | None = None,
        max_eval_samples: int | None = None,
        max_val_samples: int | None = None,
        on_device: bool = True,
        split_seed: int = 0,
        shuffle_seed: int = 0,
        image_size: int | None = None,
        channels: int | None = None,
        fit: str = "resize",
    ) -> None:
        super().__init__(batch_size, eval_batch_size, max_eval_samples, on_device, shuffle_seed)
        if fit not in FITS:
            raise DataError(f"data.fit={fit!r} is not one of {', '.join(FITS)}")
        self.image_size, self.channels, self.fit = image_size, channels, fit
        self.val_size, self.test_size = val_size, test_size
        self.max_val_samples = sample_cap(max_val_samples, "data.max_val_samples")
        self.split_seed = split_seed
        self.train_images = self.val_images = self.test_images = None
        self.train_labels = self.val_labels = self.test_labels = None

    @abstractmethod
    def load(self) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(train images, train labels, test images or None, test labels or None), uint8 NCHW.
        None: the data set has no test split; `setup` holds one out of the training images."""

    # -- shape of the data, for the model config --------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    def setup(self, stage: str | None = None) -> None:
        if self.train_images is None:
            images, labels, test_images, test_labels = self.load()
            images = self.conform(images)
            train_idx, val_idx, test_idx = self._split(len(images), has_test=test_images is not None)
            self.train_images, self.train_labels = images[train_idx], labels[train_idx]
            self.val_images, self.val_labels = images[val_idx], labels[val_idx]
            if test_images is None:  # no test split of its own: the third, disjoint part
                test_images, test_labels = images[test_idx], labels[test_idx]
            else:
                test_images = self.conform(test_images)
            self.test_images, self.test_labels = test_images, test_labels
            self.forget_fingerprints()
            source = "its own test split" if test_idx is None else "held out too"
            log.info(
                "%s: %d training, %d validation (held out) and %d test images (%s)", self.name,
                len(self.train_images), len(self.val_images), len(self.test_images), source,
            )  # fmt: skip
        self.to_training_device()

    def tensor_names(self) -> tuple[str, ...]:
        return ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")

    def conform(self, images: Tensor) -> Tensor:
        """Convert channels and bring the side to the configured shape (`fit`), once."""
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.channels == 3 and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        elif self.channels == 1 and images.shape[1] == 3:  # ITU-R 601 luma, as PIL's "L"
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)
        if self.image_size and self.fit == "pad":
            images = pad_to(images, self.image_size)
        elif self.image_size and tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            resized = [
                F.interpolate(chunk.float(), size=(self.image_size,) * 2, mode="bilinear", antialias=True)
                for chunk in images.split(4096)
            ]
            images = torch.cat(resized).round().clamp(0, 255).to(torch.uint8)
        return images.contiguous()

    def held_out_sizes(self, n: int, has_test: bool) -> tuple[int, int]:
        """(validation, test) counts held out of `n` training images; test is 0 when the data set
        has a test split of its own. Raises DataError when no training image would be left."""
        val = held_out_count(self.val_size, n, "data.val_size")
        if has_test:
            test = 0
        elif self.test_size is None:
            test = val
        else:
            test = held_out_count(self.test_size, n, "data.test_size")
        if val + test >= n:
            held = f"data.val_size={self.val_size}" + ("" if has_test else f" and data.test_size={self.test_size}")
            raise DataError(
                f"{held} hold out {val}{'' if has_test else f' + {test}'} of the {n} training images, leaving none "
                "to train on: lower them"
            )
        return val, test

    def _split(self, n: int, has_test: bool) -> tuple[Tensor, Tensor, Tensor | None]:
        """(train, validation, test or None) indices into the `n` loaded training images, each sorted.

        One seeded permutation: validation is its first `val` entries (so adding a test part leaves
        the validation images as they were), the test part the next `test`, training the rest."""
        val, test = self.held_out_sizes(n, has_test)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        parts = order[val + test :], order[:val], None if has_test else order[val : val + test]
        return tuple(None if part is None else part.sort().values for part in parts)

    def eval_images(self, stage: str) -> Tensor:
        """The real images an evaluation stage ("validate" or "test") compares against."""
        images = self.val_images if stage == "validate" else self.test_images
        caps = [self.max_eval_samples] + ([self.max_val_samples] if stage == "validate" else [])
        caps = [cap for cap in caps if cap is not None]
        return images[: min(caps)] if caps else images

    def eval_size(self, stage: str) -> int:
        """How many items an evaluation stage scores (the FID sample count)."""
        return len(self.eval_images(stage))

    def eval_tensors(self, stage: str) -> tuple[Tensor, ...]:
        return (self.eval_images(stage),)

    # -- loaders ------------------------------------------------------------------------------
    def train_count(self) -> int:
        return len(self.train_images)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        dataset = TensorImages(self.train_images, self.train_labels)
        self.check_one_batch()
        # The order depends only on (seed, epoch), which Lightning sets each epoch, so a run resumed
        # from a checkpoint replays the same batches.
        device = self.train_images.device
        batches = IndexBatches(len(dataset), self.batch_size, rank, world, True, self.shuffle_seed, device)
        return DataLoader(dataset, batch_size=None, sampler=batches)

    def _eval_dataloader(self, stage: str) -> DataLoader:
        images = self.eval_images(stage)
        labels = (self.val_labels if stage == "validate" else self.test_labels)[: len(images)]
        batches = self.eval_batches(len(images), images.device)
        return DataLoader(TensorImages(images, labels), batch_size=None, sampler=batches)
