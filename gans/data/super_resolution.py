"""Low-/high-resolution pairs for single-image super-resolution (SRResNet, SRGAN: Ledig et al. 2017,
"Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network").

Only high-resolution (HR) images are stored; the low-resolution (LR) input is made from them on
the device, batch by batch, so any folder of photographs is a training set. Every batch is

    {"hr": float [-1, 1] (N, 3, H, W), "lr": float [-1, 1] (N, 3, H / scale, W / scale), "index": int64 (N,)}

Training: random `crop_size` x `crop_size` HR crops (96 in the paper, sec. 3.2), drawn per (seed,
epoch) on the host like every order here, so a resumed run replays the same crops; the LR input
is the same crop downscaled. Evaluation: each whole image, cropped (centred) to a multiple of
`scale` and, with `eval_max_side`, to at most that side (whole 2560x1920 photographs would not
fit a CPU's evaluation budget); one image per batch, since images differ in size.

LR = bicubic downscaling by `scale`, antialiased (`bicubic_downscale`): torch's
`interpolate(mode="bicubic", antialias=True)`, the Keys cubic (a = -0.5) widened by the scale
factor, the kernel of PIL's BICUBIC resize and of MATLAB's `imresize`, the tool the published
LR sets (Set5, Set14, BSD100 at x4) were made with. They differ only at the image borders: MATLAB
extends the image by mirroring before filtering, torch and PIL renormalise the truncated kernel;
inside, they agree to float rounding. The LR input is rounded to 8 bits, as stored LR files are.

Sources (`train`, `val`, `test`): a folder of HR images (any size and mode, found recursively), a
named set downloaded into `<data_dir>/<name>` (`NAMED_SETS`: DIV2K for training, Set5, Set14
and BSD100 for evaluation), or the offline photographs (`offline`, `offline_test`): the nature
photographs of Debian's `mate-backgrounds` (`make install` installs it) and scikit-image's
bundled photographs train; other scikit-image photographs (and scikit-learn's two sample
photographs, where it is installed) test. No image is in two parts: validation is held out of
the training images when no `val` source is given.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gans.data import download
from gans.data.base import DeviceDataModule, IndexBatches, held_out_count, to_float
from gans.data.image_folder import find_images, to_mode
from gans.errors import DataError

log = logging.getLogger(__name__)

HF = "https://huggingface.co/datasets/eugenesiow/{0}/resolve/main/data/{0}_HR.tar.gz"
# name -> (URL of the HR archive, folder inside the archive or None)
NAMED_SETS = {
    "div2k": (
        "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
        "DIV2K_train_HR",
    ),  # Agustsson & Timofte 2017
    "div2k_valid": ("http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip", "DIV2K_valid_HR"),
    "set5": (HF.format("Set5"), None),  # Bevilacqua et al. 2012
    "set14": (HF.format("Set14"), None),  # Zeyde et al. 2010
    "bsd100": (HF.format("BSD100"), None),  # Martin et al. 2001, the BSD300 test images
}
OFFLINE = ("offline", "offline_test")
MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
# scikit-image's bundled photographs (files shipped in its wheel). motorcycle_right is the other
# view of the stereo pair: it would be nearly the same image as motorcycle_left, so it is unused.
SKIMAGE_TRAIN = ("motorcycle_left.png",)
SKIMAGE_TEST = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
SKLEARN_TEST = ("china.jpg", "flower.jpg")


def bicubic_downscale(images: Tensor, scale: int) -> Tensor:
    """uint8 (N, C, H, W) with H, W multiples of `scale` -> uint8 (N, C, H / scale, W / scale):
    antialiased bicubic (Keys a = -0.5, widened by the factor), rounded to 8 bits. On the images'
    device; float32 arithmetic."""
    height, width = images.shape[-2:]
    small = F.interpolate(
        images.float(), size=(height // scale, width // scale), mode="bicubic", antialias=True, align_corners=False
    )
    return small.round_().clamp_(0, 255).to(torch.uint8)


def bicubic_upscale(images: Tensor, scale: int) -> Tensor:
    """The bicubic baseline: float [-1, 1] (N, C, h, w) -> float [-1, 1] (N, C, h * scale, w * scale),
    clamped to the image range (the cubic kernel overshoots at edges)."""
    big = F.interpolate(images.float(), scale_factor=scale, mode="bicubic", align_corners=False)
    return big.clamp_(-1.0, 1.0)


def read_photo(path: Path, max_side: int | None = None) -> np.ndarray:
    """One file as uint8 RGB (H, W, 3): EXIF orientation applied, any mode converted; whole, or
    with `max_side`, reduced (PIL's antialiased bicubic) so that its longer side is at most that."""
    with Image.open(path) as image:
        image.load()
        image = to_mode(ImageOps.exif_transpose(image), 3)
        if max_side is not None and max(image.size) > max_side:
            factor = max_side / max(image.size)
            size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
            image = image.resize(size, Image.Resampling.BICUBIC)
        return np.array(image, dtype=np.uint8)  # a writable copy for torch.from_numpy


def _package_dir(name: str) -> Path | None:
    # The file's location without importing the package (scikit-learn is not a dependency).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0])


def offline_photos(part: str) -> list[Path]:
    """The offline photographs of `part` ("offline": training, "offline_test": test); disjoint."""
    skimage = _package_dir("skimage")
    skimage_files = (
        []
        if skimage is None
        else [skimage / "data" / name for name in (SKIMAGE_TRAIN if part == "offline" else SKIMAGE_TEST)]
    )
    if part == "offline":
        mate = find_images(MATE_NATURE)[0] if MATE_NATURE.is_dir() else []
        if not mate:
            log.warning(f"{MATE_NATURE} is missing (apt-get install mate-backgrounds, or `make install`): training "
                        "on scikit-image's photographs alone")  # fmt: skip
        files = mate + skimage_files
    else:
        sklearn = _package_dir("sklearn")
        files = skimage_files + ([] if sklearn is None else [sklearn / "datasets" / "images" / n for n in SKLEARN_TEST])
    files = [f for f in files if f.is_file()]
    if not files:
        key = "train" if part == "offline" else "test"
        raise DataError(f"no offline photographs for data.{key}={part}: pip install scikit-image and apt-get install "
                        "mate-backgrounds (`make install` does both)")  # fmt: skip
    return files


def centre_crop(image: Tensor, scale: int, max_side: int | None) -> Tensor:
    """CHW -> its centred crop with both sides multiples of `scale` (and at most `max_side`)."""
    height, width = image.shape[-2:]
    limit = (lambda n: n) if max_side is None else (lambda n: min(n, max_side))
    new_h, new_w = limit(height) // scale * scale, limit(width) // scale * scale
    top, left = (height - new_h) // 2, (width - new_w) // 2
    return image[:, top : top + new_h, left : left + new_w]


class CropBatches(IndexBatches):
    """Training batches of random crops for `DataLoader(batch_size=None)`: each a (3, batch) int64
    tensor, rows = image index, crop top, crop left. An epoch is `crops_per_image` passes over the
    images (each a fresh permutation), offsets uniform over each image's valid positions; drawn
    from (seed, epoch) and sharded like `IndexBatches`."""

    def __init__(self, sizes: list[tuple[int, int]], crop: int, crops_per_image: int, batch_size: int, rank: int = 0,
                 world_size: int = 1, seed: int = 0) -> None:  # fmt: skip
        super().__init__(len(sizes) * crops_per_image, batch_size, rank, world_size, True, seed, "cpu")
        self.sizes, self.crop, self.crops_per_image = torch.tensor(sizes), crop, crops_per_image

    def _shard(self) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        n_images = len(self.sizes)
        index = torch.cat([torch.randperm(n_images, generator=generator) for _ in range(self.crops_per_image)])
        room = self.sizes[index] - self.crop + 1  # valid offsets per image: 0 .. side - crop
        offsets = (torch.rand(len(index), 2, generator=generator, dtype=torch.float64) * room).long()
        rows = torch.cat([index[None], offsets.T])
        per_rank = self.size // self.world_size
        return rows[:, self.rank : per_rank * self.world_size : self.world_size]

    def __iter__(self):
        rows = self._shard()
        for i in range(len(self)):
            yield rows[:, i * self.batch_size : (i + 1) * self.batch_size]


class LowHighResolution(Dataset):
    """HR images (a list of uint8 CHW tensors) indexed by whole batches: `CropBatches` rows (training
    crops) or a 1-D index tensor (evaluation: one whole image). LR made here, on the images' device."""

    def __init__(self, images: list[Tensor], scale: int, crop: int | None = None) -> None:
        self.images, self.scale, self.crop = images, scale, crop

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: Tensor) -> dict[str, Tensor]:
        index = torch.as_tensor(index)
        if index.dim() == 2:
            c = self.crop
            hr = torch.stack([self.images[i][:, t : t + c, left : left + c] for i, t, left in index.T.tolist()])
            index = index[0]
        else:
            if len(index) != 1:
                raise ValueError("evaluation batches hold one whole image each")
            hr = self.images[int(index[0])][None]
        return {"hr": to_float(hr), "lr": to_float(bicubic_downscale(hr, self.scale)), "index": index.to(hr.device)}


class SuperResolutionDataModule(DeviceDataModule):
    """HR images from any folder (or a named or offline set), LR made on the device by bicubic
    downscaling; see the module's docstring.

    Args:
        train: the training images: a folder, a name of `NAMED_SETS`, or "offline".
        test: the test images: a folder, a name, or "offline_test".
        val: the validation images (they pick the best checkpoint): a folder or a name; None holds
            `val_size` images out of the training images (seeded by `split_seed`).
        scale: the upscaling factor (4 in the paper; 2 also).
        crop_size: side of the HR training crops (96 in the paper); the LR crops are crop_size / scale.
        crops_per_image: random crops of each training image per epoch (an epoch of a few large
            photographs would otherwise be less than one batch).
        val_size: images held out of the training images for validation (count or fraction).
        eval_max_side: evaluation images are centre-cropped to at most this side (None: whole).
        train_max_side: training images (and the validation images held out of them) whose longer
            side exceeds this are reduced to it once, at load (antialiased bicubic); None: as they
            are. Large photographs of a shallow depth of field are mostly blur at full resolution;
            reduced, their crops hold detail, as the test photographs do.
        fid_patch: FID compares non-overlapping `fid_patch` x `fid_patch` tiles of the SR outputs with
            the same tiles of the HR images (None: `crop_size`), so a few images give many samples.
        data_dir: where named sets are downloaded (`<data_dir>/<name>`).
        download: allow that download.
        batch_size: crops per training step on each process (16 in the paper).
        max_eval_samples: cap on the evaluation images of each stage.
        on_device, shuffle_seed, split_seed: as everywhere here.
    """

    name = "super_resolution"
    channels = 3

    def __init__(
        self,
        train: str = "offline",
        test: str = "offline_test",
        val: str | None = None,
        scale: int = 4,
        crop_size: int = 96,
        crops_per_image: int = 1,
        val_size: float = 2,
        eval_max_side: int | None = None,
        train_max_side: int | None = None,
        fid_patch: int | None = None,
        data_dir: str = "data",
        download: bool = True,
        batch_size: int = 16,
        max_eval_samples: int | None = None,
        on_device: bool = True,
        shuffle_seed: int = 0,
        split_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, 1, max_eval_samples, on_device, shuffle_seed)
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
            raise DataError(f"data.scale={scale} must be an integer upscaling factor of at least 2, e.g. 4")
        if not isinstance(crop_size, int) or crop_size < scale or crop_size % scale:
            raise DataError(f"data.crop_size={crop_size} must be a positive multiple of data.scale={scale}, e.g. 96")
        if not isinstance(crops_per_image, int) or crops_per_image < 1:
            raise DataError(f"data.crops_per_image={crops_per_image} must be a positive integer")
        self.sources = {"train": train, "validate": val, "test": test}
        self.scale, self.crop_size, self.crops_per_image = scale, crop_size, crops_per_image
        self.val_size, self.eval_max_side, self.split_seed = val_size, eval_max_side, split_seed
        self.train_max_side = train_max_side
        self.fid_patch = fid_patch or crop_size
        self.data_dir, self.download = Path(os.path.expanduser(str(data_dir))), download
        self.train_images: list[Tensor] | None = None
        self.eval_sets: dict[str, list[Tensor]] = {}
        self.files: dict[str, list[str]] = {}  # stage -> the images' names, in order

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.crop_size, self.crop_size)

    # -- sources -----------------------------------------------------------------------------
    def _folder(self, source: str) -> Path:
        return self.data_dir / source if source in NAMED_SETS else Path(os.path.expanduser(source))

    def prepare_data(self) -> None:
        """Download the named sets whose folders hold no images (rank 0; `setup` calls it too)."""
        for source in self.sources.values():
            if source is None or source in OFFLINE or source not in NAMED_SETS:
                continue
            root = self._folder(source)
            if root.is_dir() and find_images(root)[0]:
                continue
            url, inner = NAMED_SETS[source]
            by_hand = f"download {url} and unpack its images into {root}"
            if not self.download:
                raise DataError(f"{source} is not in {root}: set data.download=true, or {by_hand}")
            download.fetch_into(url, root, inner, lambda root=root: bool(find_images(root)[0]), by_hand)

    def _files(self, key: str, source: str) -> list[Path]:
        if source in OFFLINE:
            return offline_photos(source)
        root = self._folder(source)
        if not root.is_dir():
            raise DataError(f"data.{key}={source}: {root} is not a folder of images (or one of the named sets "
                            f"{', '.join(NAMED_SETS)}, or offline / offline_test)")  # fmt: skip
        files = find_images(root)[0]
        if not files:
            raise DataError(
                f"data.{key}={source}: {root} holds no images (.png, .jpg, .jpeg, .bmp, .webp, .tif, .tiff)"
            )
        return files

    def _read(self, files: list[Path], max_side: int | None = None) -> list[Tensor]:
        def one(path: Path) -> Tensor | str:
            try:
                return torch.from_numpy(read_photo(path, max_side)).permute(2, 0, 1).contiguous()
            except Exception as err:  # noqa: BLE001 - a corrupt file can fail anywhere in a PIL plugin
                return f"cannot read image {path} ({type(err).__name__}: {err}): delete or replace it".replace(
                    "\n", " "
                )

        with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 1) + 4)) as pool:
            images = list(pool.map(one, files))  # PIL decodes without the GIL
        bad = next((image for image in images if isinstance(image, str)), None)
        if bad is not None:
            raise DataError(bad)
        return images

    def setup(self, stage: str | None = None) -> None:
        if self.train_images is None:
            self.prepare_data()
            train_files = self._files("train", self.sources["train"])
            test_files = self._files("test", self.sources["test"])
            if self.sources["validate"] is not None:
                val_files = self._files("val", self.sources["validate"])
            else:  # held out of the training images, seeded: the same on every run and process
                n = len(train_files)
                count = held_out_count(self.val_size, n, "data.val_size")
                if count < 1 or count >= n:
                    raise DataError(f"data.train={self.sources['train']} has {n} images: data.val_size={self.val_size} "
                                    "must hold out at least one and leave one to train on")  # fmt: skip
                order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed)).tolist()
                val_files = [train_files[i] for i in sorted(order[:count])]
                train_files = [train_files[i] for i in sorted(order[count:])]
            shared = {p.resolve() for p in train_files} & {p.resolve() for p in test_files + val_files}
            if shared:
                raise DataError(f"{min(shared)} is both a training and an evaluation image: give data.train, "
                                "data.val and data.test disjoint folders")  # fmt: skip
            train = self._read(train_files, self.train_max_side)
            small = [(f, im.shape[-2:]) for f, im in zip(train_files, train) if min(im.shape[-2:]) < self.crop_size]
            if small:
                path, (h, w) = small[0]
                more = f" ({len(small) - 1} more are too)" if len(small) > 1 else ""
                raise DataError(f"HR image {path} is {w}x{h}, smaller than data.crop_size={self.crop_size}{more}: "
                                "remove it or lower data.crop_size")  # fmt: skip
            self.train_images = train
            held_out = self.sources["validate"] is None  # validation from the training pool: reduced alike
            for part, files in (("validate", val_files), ("test", test_files)):
                reduce = self.train_max_side if part == "validate" and held_out else None
                images = [centre_crop(im, self.scale, self.eval_max_side) for im in self._read(files, reduce)]
                tiny = next((f for f, im in zip(files, images) if min(im.shape[-2:]) < self.scale), None)
                if tiny is not None:
                    raise DataError(f"evaluation image {tiny} is smaller than data.scale={self.scale}: remove it")
                self.eval_sets[part] = [im.contiguous() for im in images]
                self.files[part] = [str(f) for f in files]
            self.files["train"] = [str(f) for f in train_files]
            self.forget_fingerprints()
            log.info(
                "super-resolution x%d: %d training images (%s), %d validation, %d test images (%s)%s",
                self.scale, len(train), self.sources["train"], len(val_files), len(test_files), self.sources["test"],
                f", evaluation centre-cropped to at most {self.eval_max_side}" if self.eval_max_side else "",
            )  # fmt: skip
        self.to_training_device()

    def tensor_names(self) -> tuple[str, ...]:
        return ("train_images", "eval_sets")

    # -- evaluation ---------------------------------------------------------------------------
    def eval_hr(self, stage: str) -> list[Tensor]:
        """The whole HR images of an evaluation stage (capped at `max_eval_samples`)."""
        return self.eval_sets[stage][: self.max_eval_samples]

    def eval_images(self, stage: str) -> Tensor:
        """The HR tiles FID compares with (`tiles`), uint8 (N, 3, fid_patch, fid_patch)."""
        return torch.cat([tiles(im[None], self.fid_patch) for im in self.eval_hr(stage)])

    def eval_size(self, stage: str) -> int:
        """FID's sample count: the tiles of every evaluation image."""
        return sum(
            (h // self.fid_patch) * (w // self.fid_patch) for h, w in (im.shape[-2:] for im in self.eval_hr(stage))
        )

    def eval_tensors(self, stage: str) -> tuple[Tensor, ...]:
        return tuple(self.eval_hr(stage))

    def eval_fingerprint(self, stage: str) -> str:
        """Identifies the evaluation images and the tiling of FID's reference set."""
        images = self.eval_hr(stage)
        key = (stage, len(images), self.fid_patch)
        if key not in self._fingerprints:
            digest = hashlib.sha1()
            for image in images:
                digest.update(str(tuple(image.shape)).encode())
                digest.update(image.cpu().contiguous().numpy().tobytes())
            self._fingerprints[key] = f"{self.name}-x{self.scale}-{stage}-{len(images)}-tiles{self.fid_patch}-" \
                                      f"{digest.hexdigest()[:16]}"  # fmt: skip
        return self._fingerprints[key]

    # -- loaders ------------------------------------------------------------------------------
    def train_count(self) -> int:
        return len(self.train_images) * self.crops_per_image

    def train_dataloader(self) -> DataLoader:
        self.check_one_batch("training crops (data.crops_per_image per image)")
        rank, world = self._rank_world()
        sizes = [tuple(im.shape[-2:]) for im in self.train_images]
        batches = CropBatches(
            sizes, self.crop_size, self.crops_per_image, self.batch_size, rank, world, self.shuffle_seed
        )
        return DataLoader(
            LowHighResolution(self.train_images, self.scale, self.crop_size), batch_size=None, sampler=batches
        )

    def _eval_dataloader(self, stage: str) -> DataLoader:
        images = self.eval_hr(stage)
        _, world = self._rank_world()
        if len(images) < world:  # whole images, one per batch: a process without one has no loader
            part = "validation" if stage == "validate" else "test"
            raise DataError(f"{len(images)} {part} image(s) cannot be shared by {world} processes (each evaluates "
                            f"whole images): give at least {world}, e.g. data.val_size={world}")  # fmt: skip
        device = images[0].device if images else torch.device("cpu")
        return DataLoader(
            LowHighResolution(images, self.scale), batch_size=None, sampler=self.eval_batches(len(images), device)
        )


def tiles(images: Tensor, size: int) -> Tensor:
    """(N, C, H, W) -> (N * (H // size) * (W // size), C, size, size): the non-overlapping tiles,
    row by row (the remainder at the right and bottom is left out)."""
    n, c, height, width = images.shape
    rows, cols = height // size, width // size
    cut = images[..., : rows * size, : cols * size].reshape(n, c, rows, size, cols, size)
    return cut.permute(0, 2, 4, 1, 3, 5).reshape(n * rows * cols, c, size, size)
