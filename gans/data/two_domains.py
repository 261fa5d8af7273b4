"""The base of the image-to-image data: two domains A and B, unpaired (CycleGAN) or paired (Pix2pix).

Every batch is `{"A": float [-1, 1] (N, C, H, W), "B": float [-1, 1] (N, C, H, W), "index": int64 (N,)}`
and the models map batch["A"] -> batch["B"] (and back, for CycleGAN). As everywhere here the images
are decoded once and held as uint8 tensors, on the GPU when training there; the per-epoch order,
crop offsets and flips are drawn on the host from (seed, epoch) and copied to the device once per
epoch, so a resumed run replays the same batches and a step is one gather on the device.

Training (`jitter=True`, the reference implementations' `resize_and_crop` + flip): images are
resized once, at load, to `load_size` x `load_size`; each batch takes a random `image_size` crop and
a random horizontal flip per image (for a pair, the same crop and flip for A and B). With
`jitter=False` they are resized straight to `image_size` and used whole. Evaluation images are
always resized straight to `image_size` (the whole image, deterministic; the reference's test
scripts crop at random). Unpaired training draws A and B independently (two permutations per
epoch, the smaller domain wrapping around); an epoch is max(len(A), len(B)) // batch_size // world
steps, and its batches also carry "index_B". Evaluation item i holds A[i] and B[i] for i <
max(len(A), len(B)) (`eval_size(stage)`), each item seen exactly once over the ranks; the batch's
"has_A" and "has_B" say which of the two exist (the smaller domain's slots past its end hold a
wrapped-around stand-in, never scored), so every image of both domains is scored, however
unequal their sizes. `aligned_eval` says whether B[i] is the true translation of A[i] (paired and
Fashion sets) or not (unpaired folders).

Validation never equals test (the best checkpoint is chosen on `val/fid` and scored on
`test/fid`): where a layout has no validation split, it is held out of the training images.

The families built on this base, one module each:
  - `gans.data.unpaired.UnpairedImageDataModule`: the CycleGAN layout `ROOT/{trainA,trainB,testA,testB}`.
  - `gans.data.paired.PairedImageDataModule`: the pix2pix layout `ROOT/{train,val,test}/*`, [A | B] files.
  - `gans.data.fashion_edges`: offline sets made from Fashion-MNIST, A = edge map, B = the item.
The authors' named sets are downloaded by `gans.data.download` when their host answers.
"""

from __future__ import annotations

import logging
import math
import os
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gans.data import download
from gans.data.base import DeviceDataModule, IndexBatches, held_out_count, to_float
from gans.data.image_folder import find_images
from gans.errors import DataError

log = logging.getLogger(__name__)

# Validation held out of each training domain when a layout has none: 10% of it, at least 2 (FID
# needs two images for a covariance) and at most 50. The CycleGAN and pix2pix sets have hundreds
# to tens of thousands of training images (horse2zebra 1,067 + 1,334, facades 400): 50 per domain
# ranks checkpoints by `val/fid` (FID's bias at a fixed sample count is the same for every
# checkpoint) while training keeps over 95% of its images (about 90% of a small folder).
DEFAULT_VAL_MIN, DEFAULT_VAL_MAX, DEFAULT_VAL_FRACTION = 2, 50, 0.1


# -- training batches: indices, crops and flips drawn from (seed, epoch) --------------------------
def _cover(size: int, length: int, generator: torch.Generator) -> Tensor:
    """`length` indices into `size` items: fresh permutations end to end (the smaller domain wraps)."""
    return torch.cat([torch.randperm(size, generator=generator) for _ in range(math.ceil(length / size))])[:length]


class JitterBatches(IndexBatches):
    """Training batches of two domains for `DataLoader(batch_size=None)`: each a (5, batch) int64
    tensor on the data's device, rows = index into A, index into B, crop top, crop left, flip (0/1).

    An epoch covers max(sizes) positions: a permutation of A and, when unpaired, an independent one
    of B (the smaller domain wraps around with fresh permutations); paired, row B = row A. Crop
    offsets are uniform in [0, crop_range), flips fair coins (all zero without jitter). Sharded like
    `IndexBatches` (equal counts per rank, full batches only).
    """

    def __init__(
        self,
        sizes: tuple[int, int],
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        device: torch.device | str = "cpu",
        paired: bool = False,
        crop_range: int = 1,
        jitter: bool = True,
    ) -> None:
        if paired and sizes[0] != sizes[1]:
            raise ValueError(f"paired domains need equal sizes, got {sizes}")
        super().__init__(max(sizes), batch_size, rank, world_size, True, seed, device)
        self.sizes, self.paired, self.crop_range, self.jitter = sizes, paired, crop_range, jitter

    def _shard(self) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        n = self.size
        a = _cover(self.sizes[0], n, generator)
        b = a if self.paired else _cover(self.sizes[1], n, generator)
        if self.jitter:
            offsets = torch.randint(0, self.crop_range, (2, n), generator=generator)
            flips = torch.randint(0, 2, (1, n), generator=generator)
        else:
            offsets, flips = torch.full((2, n), (self.crop_range - 1) // 2), torch.zeros(1, n, dtype=torch.int64)
        rows = torch.cat([a[None], b[None], offsets, flips])
        per_rank = n // self.world_size
        return rows[:, self.rank : per_rank * self.world_size : self.world_size]

    def __iter__(self) -> Iterator[Tensor]:
        rows = self._shard().to(self.device)  # drawn at the first batch, as in IndexBatches
        for i in range(len(self)):
            yield rows[:, i * self.batch_size : (i + 1) * self.batch_size]


def crop_flip(images: Tensor, top: Tensor, left: Tensor, flip: Tensor, size: int) -> Tensor:
    """Per image n: the `size` x `size` window at (top[n], left[n]), mirrored left-right if flip[n]."""
    n = len(images)
    steps = torch.arange(size, device=images.device)
    rows = top[:, None] + steps
    cols = left[:, None] + torch.where(flip[:, None].bool(), size - 1 - steps, steps)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return images[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()  # (n, H, W, C) -> NCHW


def take(images: Tensor, index: Tensor) -> Tensor:
    """images[index] with indices past the end wrapped around (stand-ins, flagged by the caller);
    an empty domain gives zeros of its image shape."""
    if len(images) == 0:
        return images.new_zeros((len(index), *images.shape[1:]))
    return images[index % len(images)]


class DomainImages(Dataset):
    """Two uint8 domains indexed by whole batches: a 1-D index tensor (evaluation: item i is A[i]
    and B[i], flagged by "has_A"/"has_B" where the domain has an image i) or `JitterBatches`'
    (5, batch) rows (training: crop to `crop_size` and flip, the same for A and B)."""

    def __init__(self, a: Tensor, b: Tensor, crop_size: int | None = None, paired: bool = True) -> None:
        self.a, self.b, self.crop_size, self.paired = a, b, crop_size, paired

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, index: int | Tensor) -> dict[str, Tensor]:
        index = torch.as_tensor(index)
        if index.dim() < 2:
            return {
                "A": to_float(take(self.a, index)),
                "B": to_float(take(self.b, index)),
                "has_A": index < len(self.a),
                "has_B": index < len(self.b),
                "index": index,
            }
        index_a, index_b, top, left, flip = index
        a, b = self.a[index_a], self.b[index_b]
        if self.crop_size is not None:
            a, b = (crop_flip(x, top, left, flip, self.crop_size) for x in (a, b))
        batch = {"A": to_float(a), "B": to_float(b), "index": index_a}
        if not self.paired:
            batch["index_B"] = index_b
        return batch


# -- the shared base ------------------------------------------------------------------------------
class ImagePairsDataModule(DeviceDataModule):
    """Base of the two-domain data sets: subclasses return uint8 sets from `load_pairs`.

    Same evaluation interface as `InMemoryImageDataModule` (`eval_size`, `eval_fingerprint`,
    `val_dataloader`, `test_dataloader`, sharding, `on_device`); `eval_images(stage)` is (A, B),
    the two of any sizes: evaluation item i < max(len(A), len(B)) holds A[i] and B[i] where they
    exist ("has_A", "has_B" in the batch), so each domain is scored whole.

    Args:
        image_size: side of the square images the models see.
        load_size: side the training images are resized to at load, before the random crop
            (ignored without jitter).
        channels: 3 (RGB) or 1 (grayscale), converted once at load.
        jitter: random crop and horizontal flip of each training image (pair) on every step.
        batch_size: items per training step on each process.
        eval_batch_size: items per evaluation step.
        max_eval_samples: cap on the evaluation images of each domain (the FID sample count
            per direction).
        on_device: keep the tensors on the training device (GPU) rather than in host memory.
        shuffle_seed: seed of the per-epoch order, crops and flips (Hydra passes the run's `seed`).
    """

    name = "image_pairs"
    paired = True  # training draws A[i] with B[i]; else A and B independently
    aligned_eval = True  # evaluation B[i] is the true translation of A[i] (models may score the error)
    num_classes = 0

    def __init__(
        self,
        image_size: int = 256,
        load_size: int | None = 286,
        channels: int = 3,
        jitter: bool = True,
        batch_size: int = 1,
        eval_batch_size: int = 16,
        max_eval_samples: int | None = None,
        on_device: bool = True,
        shuffle_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, max_eval_samples, on_device, shuffle_seed)
        if channels not in (1, 3):
            raise DataError(f"data.channels={channels} must be 1 (grayscale) or 3 (RGB)")
        if not isinstance(image_size, int) or image_size < 1:
            raise DataError(f"data.image_size={image_size} must be a positive number of pixels")
        if jitter and (not isinstance(load_size, int) or load_size < image_size):
            raise DataError(f"data.load_size={load_size} must be at least data.image_size={image_size} with jitter")
        self.image_size, self.load_size, self.channels, self.jitter = image_size, load_size, channels, jitter
        self.train_a = self.train_b = None
        self.eval_sets: dict[str, tuple[Tensor, Tensor]] = {}

    @property
    def stored_size(self) -> int:
        """Side of the training images in memory: `load_size` with jitter, else `image_size`."""
        return self.load_size if self.jitter else self.image_size

    @abstractmethod
    def load_pairs(self) -> dict[str, tuple[Tensor, Tensor]]:
        """{"train": (A, B), "validate": (A, B), "test": (A, B)}, uint8 NCHW with `channels`;
        training images `stored_size` square, evaluation ones `image_size`. Paired sets have
        len(A) == len(B); an unpaired set's A and B may differ in size. Validate and test must be
        different images (the one chooses the checkpoint the other scores)."""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def setup(self, stage: str | None = None) -> None:
        if self.train_a is None:
            sets = self.load_pairs()
            self.train_a, self.train_b = sets["train"]
            self.eval_sets = {"validate": sets["validate"], "test": sets["test"]}
            self.forget_fingerprints()
        self.to_training_device()

    def tensor_names(self) -> tuple[str, ...]:
        return ("train_a", "train_b", "eval_sets")

    def eval_images(self, stage: str) -> tuple[Tensor, Tensor]:
        """(A, B) of an evaluation stage ("validate" or "test"), uint8, each capped at
        `max_eval_samples`; item i = (A[i], B[i]) where both exist."""
        cap = self.max_eval_samples or None
        a, b = self.eval_sets[stage]
        return a[:cap], b[:cap]

    def eval_size(self, stage: str) -> int:
        """How many items an evaluation stage has: max(len(A), len(B)) after the cap. Each
        direction scores the images its domains have (e.g. testA's 120 horses -> zebras, compared
        with testB's 140 zebras)."""
        return max(len(x) for x in self.eval_images(stage))

    def eval_tensors(self, stage: str) -> tuple[Tensor, ...]:
        """Both evaluation sets: the fingerprint identifies A and B."""
        return self.eval_images(stage)

    # -- loaders --------------------------------------------------------------------------------
    def train_count(self) -> int:
        return max(len(self.train_a), len(self.train_b))

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        sizes = (len(self.train_a), len(self.train_b))
        self.check_one_batch()
        crop_range = self.stored_size - self.image_size + 1
        batches = JitterBatches(
            sizes, self.batch_size, rank, world, self.shuffle_seed, self.train_a.device, self.paired, crop_range,
            self.jitter,
        )  # fmt: skip
        crop = self.image_size if self.stored_size != self.image_size or self.jitter else None
        return DataLoader(DomainImages(self.train_a, self.train_b, crop, self.paired), batch_size=None, sampler=batches)

    def _eval_dataloader(self, stage: str) -> DataLoader:
        a, b = self.eval_images(stage)
        # Items up to the larger domain, each on exactly one rank: every image of A and of B is scored once.
        batches = self.eval_batches(max(len(a), len(b)), a.device)
        return DataLoader(DomainImages(a, b), batch_size=None, sampler=batches)


# -- folders on disk, optionally downloaded -------------------------------------------------------
class FolderPairsDataModule(ImagePairsDataModule):
    """A data set in a folder `root` with split subfolders; a known `name` is downloaded when absent.

    Where the layout has no validation split, `val_size` training images (of each domain) are held
    out for it, seeded by `split_seed`: a count, a fraction (float in (0, 1)), or None for 10% of
    the domain's training images, at least 2 and at most 50 (`DEFAULT_VAL_*`).
    """

    url_template = ""  # "https://.../{name}.zip"
    known_names: tuple[str, ...] = ()
    unpack_hint = "unzip it"

    def __init__(
        self,
        root: str | None = None,
        name: str | None = None,
        download: bool = True,
        val_size: float | None = None,
        split_seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if root is None and name is None:
            raise DataError("set data.root (a folder) or data.name (a known data set)")
        self.root = Path(os.path.expanduser(str(root if root is not None else Path("data") / name)))
        self.dataset_name, self.download = name, download
        self.name = name or self.root.name or self.name
        self.val_size, self.split_seed = val_size, split_seed
        if val_size is not None:
            held_out_count(val_size, 1, "data.val_size")  # a bad setting fails at once, not after a download

    def hold_out(self, files: list[Path], folder: Path) -> tuple[list[Path], list[Path]]:
        """(training files, validation files) of one training folder: `val_size` files held out,
        chosen by a permutation seeded by `split_seed` (the same on every run and process)."""
        n = len(files)
        if self.val_size is None:
            count = min(DEFAULT_VAL_MAX, max(DEFAULT_VAL_MIN, round(DEFAULT_VAL_FRACTION * n)))
        else:
            count = held_out_count(self.val_size, n, "data.val_size")
        if count >= n:
            setting = "null (10%, at least 2)" if self.val_size is None else self.val_size
            raise DataError(
                f"{folder} has {n} images: data.val_size={setting} holds out {count} for validation, leaving "
                "none to train on: add images or lower data.val_size"
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        return [files[i] for i in sorted(order[count:])], [files[i] for i in sorted(order[:count])]

    @property
    def url(self) -> str | None:
        return self.url_template.format(name=self.dataset_name) if self.dataset_name in self.known_names else None

    @abstractmethod
    def layout(self) -> str:
        """How the split folders should look, for messages: "ROOT/trainA, ROOT/trainB, ..."."""

    @abstractmethod
    def _present(self) -> bool:
        """Whether any split folder exists (then nothing is downloaded)."""

    def _by_hand(self, url: str) -> str:
        return f"download {url} and {self.unpack_hint} so that {self.layout()} exist"

    def prepare_data(self) -> None:
        """Download a known set when none of its split folders exist (rank 0; `setup` calls it too)."""
        if self._present():
            return
        root, url = self.root, self.url
        if url is None:
            if not root.exists():
                raise DataError(f"data.root={root} does not exist: put the images in {self.layout()}")
            raise DataError(f"data.root={root} has none of the split folders: put the images in {self.layout()}")
        if not self.download:
            raise DataError(f"data.root={root} lacks the data: set data.download=true, or {self._by_hand(url)}")
        download.fetch_into(url, root, self.dataset_name, self._present, self._by_hand(url))

    def _images(self, folder: Path) -> list[Path]:
        files, others = find_images(folder)
        if not files:
            found = f" (it has {len(others)} other files)" if others else ""
            raise DataError(
                f"{folder} holds no images{found}: put .png, .jpg, .jpeg, .bmp, .webp, .tif or .tiff files in it"
            )
        return files
