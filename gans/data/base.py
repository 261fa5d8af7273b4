"""The in-memory image data module every data set here derives from.

Images are stored once as uint8 tensors (N, C, H, W) and, when training on a GPU, moved there,
so a batch is one indexing operation on the device and loading never limits speed. The data
module also owns the sharding across processes (trainer `use_distributed_sampler=False`): the
training order is seeded per epoch, so a resumed run sees the same batches, and evaluation sets
are split without padding, so a metric synced over ranks sees each image exactly once.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


def to_float(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range of a tanh generator."""
    return images.to(torch.float32).div(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] -> uint8 [0, 255]; exact inverse of `to_float` on its outputs."""
    return images.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


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


class InMemoryImageDataModule(L.LightningDataModule, ABC):
    """Base for image data sets: subclasses fill `train_images/labels`, `val_*` and `test_*`.

    Args:
        batch_size: images per training step on each process.
        eval_batch_size: images per evaluation step (FID feature extraction).
        val_size: training images held out for validation (the `val/fid` reference).
        max_eval_samples: cap on the val and test images used for evaluation (FID sample count).
        on_device: keep the tensors on the training device (GPU) rather than in host memory.
        split_seed: seed of the train/val split, fixed so val sets agree across runs and seeds.
        shuffle_seed: seed of the per-epoch training order (Hydra passes the run's `seed`).
        image_size: resize every image to this side once, at load (e.g. 64 for the 64x64 DCGAN).
        channels: 1 (grayscale) or 3 (RGB); images are converted once, at load.
    """

    name = "images"
    num_classes = 0

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int = 250,
        val_size: int = 5000,
        max_eval_samples: int | None = None,
        on_device: bool = True,
        split_seed: int = 0,
        shuffle_seed: int = 0,
        image_size: int | None = None,
        channels: int | None = None,
    ) -> None:
        super().__init__()
        self.image_size, self.channels = image_size, channels
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.max_eval_samples = val_size, max_eval_samples
        self.on_device, self.split_seed, self.shuffle_seed = on_device, split_seed, shuffle_seed
        self.train_images = self.val_images = self.test_images = None
        self.train_labels = self.val_labels = self.test_labels = None

    @abstractmethod
    def load(self) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(train images, train labels, test images or None, test labels or None), uint8 NCHW."""

    # -- shape of the data, for the model config --------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    def setup(self, stage: str | None = None) -> None:
        if self.train_images is None:
            images, labels, test_images, test_labels = self.load()
            images = self.conform(images)
            test_images = None if test_images is None else self.conform(test_images)
            train_idx, val_idx = self._split(len(images))
            self.train_images, self.train_labels = images[train_idx], labels[train_idx]
            self.val_images, self.val_labels = images[val_idx], labels[val_idx]
            if test_images is None:  # no official test split: evaluate on the held-out images
                test_images, test_labels = self.val_images, self.val_labels
            self.test_images, self.test_labels = test_images, test_labels
        if self.on_device and self.trainer is not None:
            device = self.trainer.strategy.root_device
            test_is_val = self.test_images is self.val_images
            for name in ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels"):
                setattr(self, name, getattr(self, name).to(device))
            if test_is_val:  # one copy on the device, not two
                self.test_images, self.test_labels = self.val_images, self.val_labels

    def conform(self, images: Tensor) -> Tensor:
        """Resize (antialiased bilinear) and convert channels to the configured shape, once."""
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.channels == 3 and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        elif self.channels == 1 and images.shape[1] == 3:  # ITU-R 601 luma, as PIL's "L"
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)
        if self.image_size and tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            resized = [
                F.interpolate(chunk.float(), size=(self.image_size,) * 2, mode="bilinear", antialias=True)
                for chunk in images.split(4096)
            ]
            images = torch.cat(resized).round().clamp(0, 255).to(torch.uint8)
        return images.contiguous()

    def _split(self, n: int) -> tuple[Tensor, Tensor]:
        if not 0 <= self.val_size < n:
            raise ValueError(f"val_size={self.val_size} must be smaller than the {n} training images")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        return order[self.val_size :].sort().values, order[: self.val_size].sort().values

    def eval_images(self, stage: str) -> Tensor:
        """The real images an evaluation stage ("validate" or "test") compares against."""
        images = self.val_images if stage == "validate" else self.test_images
        return images[: self.max_eval_samples] if self.max_eval_samples else images

    def eval_size(self, stage: str) -> int:
        """How many items an evaluation stage scores (the FID sample count)."""
        return len(self.eval_images(stage))

    def eval_fingerprint(self, stage: str) -> str:
        """Identifies the evaluation images, so cached Inception statistics match the data."""
        images = self.eval_images(stage)
        digest = hashlib.sha1(images.cpu().contiguous().numpy().tobytes()).hexdigest()[:16]
        return f"{self.name}-{stage}-{len(images)}-{'x'.join(map(str, images.shape[1:]))}-{digest}"

    # -- loaders ------------------------------------------------------------------------------
    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        dataset = TensorImages(self.train_images, self.train_labels)
        if len(dataset) < self.batch_size * world:
            raise ValueError(
                f"{len(dataset)} training images cannot fill one batch of {self.batch_size} on {world} process(es)"
            )
        # The order depends only on (seed, epoch), which Lightning sets each epoch, so a run resumed
        # from a checkpoint replays the same batches.
        device = self.train_images.device
        batches = IndexBatches(len(dataset), self.batch_size, rank, world, True, self.shuffle_seed, device)
        return DataLoader(dataset, batch_size=None, sampler=batches)

    def _eval_dataloader(self, stage: str) -> DataLoader:
        rank, world = self._rank_world()
        images = self.eval_images(stage)
        labels = (self.val_labels if stage == "validate" else self.test_labels)[: len(images)]
        batches = IndexBatches(len(images), self.eval_batch_size, rank, world, shuffle=False, device=images.device)
        return DataLoader(TensorImages(images, labels), batch_size=None, sampler=batches)

    def val_dataloader(self) -> DataLoader:
        return self._eval_dataloader("validate")

    def test_dataloader(self) -> DataLoader:
        return self._eval_dataloader("test")

    def steps_per_epoch(self) -> int:
        _, world = self._rank_world()
        return len(self.train_images) // (self.batch_size * world)
