"""Image-to-image data: two domains A and B, unpaired (CycleGAN) or paired (Pix2pix).

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

Data sets:
  - `UnpairedImageDataModule`: the CycleGAN layout `ROOT/{trainA,trainB,testA,testB}`; validation
    is `val_size` images of trainA and of trainB held out of training, test is testA/testB.
  - `PairedImageDataModule`: the pix2pix layout `ROOT/{train,val,test}/*`, each file [A | B] side
    by side; `direction="BtoA"` swaps the halves. Without a val/ and test/ folder each, validation
    is held out of train/.
  - `FashionEdgesDataModule` / `FashionEdgesUnpairedDataModule`: offline sets made from Fashion-MNIST,
    A = the item's edge map (`edge_map`), B = the item; evaluation batches are true pairs.

The authors' named sets (`name=horse2zebra`, `name=facades`, ...) are downloaded into ROOT on first
use when their host answers; offline, the error says where to put the files.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import lightning as L
import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gans.data import fashion_mnist
from gans.data.base import IndexBatches, held_out_count, to_float
from gans.data.image_folder import find_images, load_image, read_images, to_mode
from gans.errors import DataError

log = logging.getLogger(__name__)

CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
CYCLEGAN_SETS = (
    "horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo", "cezanne2photo", "ukiyoe2photo",
    "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower",
)  # fmt: skip
PIX2PIX_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
PIX2PIX_SETS = ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")
DOWNLOAD_TIMEOUT = 60.0  # seconds without a byte before a download fails (never hangs)
DIRECTIONS = ("AtoB", "BtoA")
# Validation held out of each training domain when a layout has none: 10% of it, at least 2 (FID
# needs two images for a covariance) and at most 50. The CycleGAN and pix2pix sets have hundreds
# to tens of thousands of training images (horse2zebra 1,067 + 1,334, facades 400): 50 per domain
# ranks checkpoints by `val/fid` (FID's bias at a fixed sample count is the same for every
# checkpoint) while training keeps over 95% of its images (about 90% of a small folder).
DEFAULT_VAL_MIN, DEFAULT_VAL_MAX, DEFAULT_VAL_FRACTION = 2, 50, 0.1


# -- download -------------------------------------------------------------------------------------
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
class ImagePairsDataModule(L.LightningDataModule, ABC):
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
        super().__init__()
        if channels not in (1, 3):
            raise DataError(f"data.channels={channels} must be 1 (grayscale) or 3 (RGB)")
        if not isinstance(image_size, int) or image_size < 1:
            raise DataError(f"data.image_size={image_size} must be a positive number of pixels")
        if jitter and (not isinstance(load_size, int) or load_size < image_size):
            raise DataError(f"data.load_size={load_size} must be at least data.image_size={image_size} with jitter")
        self.image_size, self.load_size, self.channels, self.jitter = image_size, load_size, channels, jitter
        self.batch_size, self.eval_batch_size, self.max_eval_samples = batch_size, eval_batch_size, max_eval_samples
        self.on_device, self.shuffle_seed = on_device, shuffle_seed
        self.train_a = self.train_b = None
        self.eval_sets: dict[str, tuple[Tensor, Tensor]] = {}
        self._fingerprints: dict[tuple[str, int, int], str] = {}  # (stage, |A|, |B|) -> eval_fingerprint

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
            self._fingerprints.clear()  # new data, new fingerprints
        if self.on_device and self.trainer is not None:
            device = self.trainer.strategy.root_device
            self.train_a, self.train_b = self.train_a.to(device), self.train_b.to(device)
            for stage_name, pair in self.eval_sets.items():
                self.eval_sets[stage_name] = tuple(x.to(device) for x in pair)

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

    def eval_fingerprint(self, stage: str) -> str:
        """Identifies both evaluation sets, so cached Inception statistics match the data.

        Hashing copies the images to the host, so it is done once per stage and count and kept
        until the data are loaded again (the model asks on every evaluation batch and stream)."""
        a, b = self.eval_images(stage)
        key = (stage, len(a), len(b))
        if key not in self._fingerprints:
            digest = hashlib.sha1()
            for images in (a, b):
                digest.update(images.cpu().contiguous().numpy().tobytes())
            shape = "x".join(map(str, a.shape[1:]))
            self._fingerprints[key] = f"{self.name}-{stage}-{len(a)}+{len(b)}-{shape}-{digest.hexdigest()[:16]}"
        return self._fingerprints[key]

    # -- loaders --------------------------------------------------------------------------------
    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        sizes = (len(self.train_a), len(self.train_b))
        if max(sizes) < self.batch_size * world:
            raise DataError(
                f"{max(sizes)} training images cannot fill one batch of data.batch_size={self.batch_size} "
                f"on {world} process(es): add images or lower data.batch_size"
            )
        crop_range = self.stored_size - self.image_size + 1
        batches = JitterBatches(
            sizes, self.batch_size, rank, world, self.shuffle_seed, self.train_a.device, self.paired, crop_range,
            self.jitter,
        )  # fmt: skip
        crop = self.image_size if self.stored_size != self.image_size or self.jitter else None
        return DataLoader(DomainImages(self.train_a, self.train_b, crop, self.paired), batch_size=None, sampler=batches)

    def _eval_dataloader(self, stage: str) -> DataLoader:
        rank, world = self._rank_world()
        a, b = self.eval_images(stage)
        # Items up to the larger domain, each on exactly one rank: every image of A and of B is scored once.
        batches = IndexBatches(max(len(a), len(b)), self.eval_batch_size, rank, world, shuffle=False, device=a.device)
        return DataLoader(DomainImages(a, b), batch_size=None, sampler=batches)

    def val_dataloader(self) -> DataLoader:
        return self._eval_dataloader("validate")

    def test_dataloader(self) -> DataLoader:
        return self._eval_dataloader("test")

    def steps_per_epoch(self) -> int:
        _, world = self._rank_world()
        return max(len(self.train_a), len(self.train_b)) // (self.batch_size * world)


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
        val_size: int | float | None = None,
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
        if urlparse(url).scheme != "file" and not fashion_mnist.host_reachable(url):
            raise DataError(
                f"data.root={root} lacks the data and {urlparse(url).hostname} is unreachable: {self._by_hand(url)}"
            )
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.download-"))
        try:
            download_and_extract(url, staging)
            source = staging / self.dataset_name  # the archives hold one folder, named like the set
            if not source.is_dir():
                source = staging
            for child in list(source.iterdir()):
                root.mkdir(parents=True, exist_ok=True)
                _merge(child, root / child.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if not self._present():
            raise DataError(f"the archive {url} does not hold the expected folders: {self._by_hand(url)}")

    def _images(self, folder: Path) -> list[Path]:
        files, others = find_images(folder)
        if not files:
            found = f" (it has {len(others)} other files)" if others else ""
            raise DataError(
                f"{folder} holds no images{found}: put .png, .jpg, .jpeg, .bmp, .webp, .tif or .tiff files in it"
            )
        return files


class UnpairedImageDataModule(FolderPairsDataModule):
    """Two unpaired domains in the CycleGAN authors' layout `ROOT/{trainA,trainB,testA,testB}`.

    Images are found recursively, any size and mode (grayscale, RGBA, palette, 16-bit), and
    stretched to a square (`load_size` for training with jitter, else `image_size`). The layout
    has no validation split, and selecting the best checkpoint on testA/testB and then reporting
    its score on them would be optimistic: validation is `val_size` images of trainA and of trainB
    held out of training (seeded by `split_seed`); the test is testA/testB. Evaluation item i =
    (A[i], B[i]) in sorted file order for i < max(len(A), len(B)), each image of each domain
    scored once (not true pairs: FID is per direction).

    Args:
        root: the folder (default `data/<name>`).
        name: one of `CYCLEGAN_SETS` to download it into `root` when its folders are absent; any
            other value (or None: the folder's name) only names the set in FID cache keys.
        download: allow that download.
        val_size: images of each training domain held out for validation: a count, a fraction,
            or None (10% of each, at least 2, at most 50: horse2zebra validates on 50 + 50).
        split_seed: seed of that hold-out.
        **kwargs: see `ImagePairsDataModule`.
    """

    paired = False
    aligned_eval = False  # testA[i] and testB[i] are unrelated images
    url_template = CYCLEGAN_URL
    known_names = CYCLEGAN_SETS
    splits = ("trainA", "trainB", "testA", "testB")

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 256,
        load_size: int = 286,
        channels: int = 3,
        jitter: bool = True,
        batch_size: int = 1,
        eval_batch_size: int = 16,
        max_eval_samples: int | None = None,
        on_device: bool = True,
        shuffle_seed: int = 0,
        name: str | None = None,
        download: bool = True,
        val_size: int | float | None = None,
        split_seed: int = 0,
    ) -> None:
        super().__init__(
            root=root, name=name, download=download, image_size=image_size, load_size=load_size, channels=channels,
            jitter=jitter, batch_size=batch_size, eval_batch_size=eval_batch_size,
            max_eval_samples=max_eval_samples, on_device=on_device, shuffle_seed=shuffle_seed, val_size=val_size,
            split_seed=split_seed,
        )  # fmt: skip

    def layout(self) -> str:
        return ", ".join(str(self.root / split) for split in self.splits)

    def _present(self) -> bool:
        return any((self.root / split).is_dir() for split in self.splits)

    def load_pairs(self) -> dict[str, tuple[Tensor, Tensor]]:
        self.prepare_data()
        missing = [split for split in self.splits if not (self.root / split).is_dir()]
        if missing:
            raise DataError(
                f"{self.root / missing[0]} is missing{' (and ' + ', '.join(missing[1:]) + ')' if missing[1:] else ''}: "
                f"the unpaired layout is {self.layout()}"
            )
        files = {split: self._images(self.root / split) for split in self.splits}
        for domain in "AB":  # validation: held out of each training domain, never the test images
            files[f"train{domain}"], files[f"val{domain}"] = self.hold_out(
                files[f"train{domain}"], self.root / f"train{domain}"
            )
        loaded = {}
        for split, paths in files.items():
            size = self.stored_size if split.startswith("train") else self.image_size
            loaded[split] = read_images(
                paths, lambda path, size=size: (load_image(path, size, self.channels, "stretch"),),
                [(self.channels, size, size)],
            )[0]  # fmt: skip
        log.info(
            "%s: %d + %d training images, %d + %d held out of them for validation, %d + %d test images",
            self.root, *(len(loaded[split]) for split in ("trainA", "trainB", "valA", "valB", "testA", "testB")),
        )  # fmt: skip
        return {
            "train": (loaded["trainA"], loaded["trainB"]),
            "validate": (loaded["valA"], loaded["valB"]),
            "test": (loaded["testA"], loaded["testB"]),
        }


def load_side_by_side(path: Path, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """One [A | B] file -> two uint8 (size, size, channels) arrays, each half stretched to a square."""
    with Image.open(path) as image:
        image.load()
        image = to_mode(ImageOps.exif_transpose(image), channels)
    width, height = image.size
    if width < 2:
        raise ValueError(f"{width} px wide, cannot hold A and B side by side")
    half = width // 2
    halves = (image.crop((0, 0, half, height)), image.crop((half, 0, width, height)))
    arrays = [np.asarray(h.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8) for h in halves]
    return tuple(a[:, :, None] if a.ndim == 2 else a for a in arrays)


class PairedImageDataModule(FolderPairsDataModule):
    """Aligned pairs in the pix2pix authors' layout `ROOT/{train,val,test}/*`: each file holds A and B
    side by side ([A | B], split at width // 2), found recursively, any size and mode.

    The test is ROOT/test, or ROOT/<val_split> where there is no test folder (cityscapes, maps and
    edges2shoes ship train/ and val/ only, and their published scores are on val/). Validation is
    ROOT/<val_split> when the test is ROOT/test; otherwise `val_size` pairs held out of ROOT/train
    (seeded by `split_seed`), so validation is never the test set. With jitter, A and B of a pair
    get the same crop and flip.

    Args:
        root: the folder (default `data/<name>`).
        direction: "AtoB" (input = left half) or "BtoA" (input = right half): batch["A"] is always
            the input and batch["B"] the target.
        name: one of `PIX2PIX_SETS` to download it into `root` when its folders are absent; any
            other value (or None: the folder's name) only names the set in FID cache keys.
        download: allow that download.
        val_split: the validation folder (the test folder when there is no ROOT/test).
        val_size: pairs held out of ROOT/train for validation when the layout has no separate
            validation folder: a count, a fraction, or None (10%, at least 2, at most 50).
        split_seed: seed of that hold-out.
        **kwargs: see `ImagePairsDataModule`.
    """

    paired = True
    url_template = PIX2PIX_URL
    known_names = PIX2PIX_SETS
    unpack_hint = "extract it (tar -xzf)"

    def __init__(
        self,
        root: str | None = None,
        direction: str = "AtoB",
        image_size: int = 256,
        load_size: int = 286,
        channels: int = 3,
        jitter: bool = True,
        batch_size: int = 1,
        eval_batch_size: int = 16,
        max_eval_samples: int | None = None,
        on_device: bool = True,
        shuffle_seed: int = 0,
        name: str | None = None,
        download: bool = True,
        val_split: str = "val",
        val_size: int | float | None = None,
        split_seed: int = 0,
    ) -> None:
        if direction not in DIRECTIONS:
            raise DataError(f"data.direction={direction} must be AtoB or BtoA")
        super().__init__(
            root=root, name=name, download=download, image_size=image_size, load_size=load_size, channels=channels,
            jitter=jitter, batch_size=batch_size, eval_batch_size=eval_batch_size,
            max_eval_samples=max_eval_samples, on_device=on_device, shuffle_seed=shuffle_seed, val_size=val_size,
            split_seed=split_seed,
        )  # fmt: skip
        self.direction, self.val_split = direction, val_split

    def layout(self) -> str:
        return f"{self.root / 'train'} and {self.root / self.val_split} or {self.root / 'test'}"

    def _present(self) -> bool:
        return any((self.root / split).is_dir() for split in ("train", self.val_split, "test"))

    def _read(self, files: list[Path], size: int) -> tuple[Tensor, Tensor]:
        shape = (self.channels, size, size)
        a, b = read_images(files, lambda path: load_side_by_side(path, size, self.channels), [shape] * 2)
        return (b, a) if self.direction == "BtoA" else (a, b)

    def load_pairs(self) -> dict[str, tuple[Tensor, Tensor]]:
        self.prepare_data()
        root = self.root
        if not (root / "train").is_dir():
            raise DataError(f"{root / 'train'} is missing: the paired layout is {self.layout()}")
        test_dir = next((root / s for s in ("test", self.val_split) if (root / s).is_dir()), None)
        if test_dir is None:
            raise DataError(f"{root / self.val_split} and {root / 'test'} are both missing: one holds the test pairs")
        val_dir = root / self.val_split
        train_files = self._images(root / "train")
        if val_dir.is_dir() and val_dir.resolve() != test_dir.resolve():
            val_files, held_out = self._images(val_dir), ""
        else:  # the only evaluation folder is the test set: validate on pairs held out of train/
            train_files, val_files = self.hold_out(train_files, root / "train")
            held_out = f" (held out of {root / 'train'})"
        train = self._read(train_files, self.stored_size)
        validate = self._read(val_files, self.image_size)
        test = self._read(self._images(test_dir), self.image_size)
        log.info(
            "%s: %d training, %d validation%s, %d test pairs (%s)",
            root, len(train[0]), len(validate[0]), held_out, len(test[0]), test_dir.name,
        )  # fmt: skip
        return {"train": train, "validate": validate, "test": test}


# -- offline sets from Fashion-MNIST: edge maps <-> items -----------------------------------------
def edge_map(images: Tensor, threshold: int = 192) -> Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, 1, H, W) black edges (0) on white (255), like edges2shoes.

    Edge = integer Sobel gradient magnitude of the luma (ITU-R 601 for RGB; borders replicated)
    above `threshold` (0..255 scale: a step of 48 gray levels is 192). All integer arithmetic, so
    the maps are exactly the same on every machine.
    """
    if images.shape[1] == 3:
        weights = torch.tensor([299, 587, 114], dtype=torch.int64).view(1, 3, 1, 1)
        images = ((images.to(torch.int64) * weights).sum(1, keepdim=True) + 500) // 1000
    height, width = images.shape[-2:]
    rows, cols = torch.arange(-1, height + 1).clamp(0, height - 1), torch.arange(-1, width + 1).clamp(0, width - 1)
    p = images.to(torch.int32)[..., rows, :][..., cols]

    def shifted(dy: int, dx: int) -> Tensor:  # the neighbour at (dy - 1, dx - 1) of every pixel
        return p[..., dy : dy + height, dx : dx + width]

    gx = shifted(0, 2) + 2 * shifted(1, 2) + shifted(2, 2) - shifted(0, 0) - 2 * shifted(1, 0) - shifted(2, 0)
    gy = shifted(2, 0) + 2 * shifted(2, 1) + shifted(2, 2) - shifted(0, 0) - 2 * shifted(0, 1) - shifted(0, 2)
    edges = gx * gx + gy * gy > threshold * threshold
    return torch.where(edges, 0, 255).to(torch.uint8)


class FashionEdgesDataModule(ImagePairsDataModule):
    """Fashion-MNIST as an image-to-image task, offline: A = the item's edge map, B = the item.

    B is the Fashion-MNIST image resized (antialiased bilinear) to `image_size`; A = `edge_map(B)`,
    computed at the stored size, so A is a deterministic function of B everywhere. Training uses
    the 60,000 training items less `val_size` held out (the same seeded split as `fashion_mnist`),
    capped at `train_size`; validation the held-out pairs; test the 10,000 test pairs. Evaluation
    batches are true pairs (A[i] is the edge map of B[i]), so models can also score against ground
    truth. No jitter by default (28 -> 32 resize only); with jitter, A and B are held at
    `load_size` and cropped and flipped alike.

    Args:
        root, system_dir, download: where the IDX files are (see `FashionMNISTDataModule`).
        train_size: cap on the training items (None: all).
        val_size: held-out training items for validation.
        split_seed: seed of that split (and, unpaired, of the halves).
        edge_threshold: Sobel magnitude threshold of `edge_map`.
        **kwargs: see `ImagePairsDataModule`.
    """

    name = "fashion_edges"
    paired = True

    def __init__(
        self,
        root: str = "data",
        system_dir: str | None = "/usr/share/datasets/fashion-mnist",
        download: bool = True,
        image_size: int = 32,
        load_size: int | None = 36,
        channels: int = 1,
        jitter: bool = False,
        batch_size: int = 64,
        eval_batch_size: int = 250,
        max_eval_samples: int | None = None,
        on_device: bool = True,
        shuffle_seed: int = 0,
        train_size: int | None = None,
        val_size: int = 1000,
        split_seed: int = 0,
        edge_threshold: int = 192,
    ) -> None:
        super().__init__(
            image_size=image_size, load_size=load_size, channels=channels, jitter=jitter, batch_size=batch_size,
            eval_batch_size=eval_batch_size, max_eval_samples=max_eval_samples, on_device=on_device,
            shuffle_seed=shuffle_seed,
        )  # fmt: skip
        self.source = fashion_mnist.FashionMNISTDataModule(
            root=root, system_dir=system_dir, download=download, val_size=val_size, split_seed=split_seed,
            on_device=False, image_size=None, channels=1,
        )  # fmt: skip
        self.train_size, self.edge_threshold = train_size, edge_threshold
        self.train_indices: tuple[Tensor, Tensor] | None = None  # (A, B) rows of the training items used

    def prepare_data(self) -> None:
        self.source.prepare_data()

    def _pairs(self, items: Tensor, size: int) -> tuple[Tensor, Tensor]:
        """28x28 items -> (edge maps, items) at `size`, with `channels`."""
        self.source.image_size = size
        b = self.source.conform(items)
        a = torch.cat([edge_map(chunk, self.edge_threshold) for chunk in b.split(4096)])  # bounded int32 temporaries
        if self.channels == 3:
            a, b = a.expand(-1, 3, -1, -1).contiguous(), b.expand(-1, 3, -1, -1).contiguous()
        return a, b

    def training_indices(self, n: int) -> tuple[Tensor, Tensor]:
        """Which of the `n` training items give A and which give B: all of them to both, paired."""
        return torch.arange(n), torch.arange(n)

    def load_pairs(self) -> dict[str, tuple[Tensor, Tensor]]:
        self.source.setup()
        items = self.source.train_images[: self.train_size]
        self.train_indices = self.training_indices(len(items))
        if self.paired:
            train = self._pairs(items, self.stored_size)
        else:  # edge maps of one half, items of the other
            index_a, index_b = self.train_indices
            train = (self._pairs(items[index_a], self.stored_size)[0], self._pairs(items[index_b], self.stored_size)[1])
        validate = self._pairs(self.source.val_images, self.image_size)
        test = self._pairs(self.source.test_images, self.image_size)
        self.source.train_images = self.source.val_images = self.source.test_images = None  # keep one copy
        return {"train": train, "validate": validate, "test": test}


class FashionEdgesUnpairedDataModule(FashionEdgesDataModule):
    """`FashionEdgesDataModule` for unpaired training: trainA = edge maps of one half of the training
    items, trainB = the other half's items (disjoint, so no true pairs to learn from). Evaluation is
    the same as the paired module's: true pairs, A[i] the edge map of B[i]. `train_size` caps the
    items before the halving (seeded by `split_seed`)."""

    paired = False  # same name and evaluation sets as the paired module: cached FID statistics are shared

    def __init__(self, batch_size: int = 16, **kwargs) -> None:
        super().__init__(batch_size=batch_size, **kwargs)

    def training_indices(self, n: int) -> tuple[Tensor, Tensor]:
        """Two disjoint halves of the `n` training items (seeded by `split_seed`), each sorted."""
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.source.split_seed))
        return order[: n // 2].sort().values, order[n // 2 :].sort().values
