"""`python -m gans.fid A B`: the FID between two image sets, like pytorch-fid.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium") is the Frechet distance between Gaussians fitted to the Inception pool3 features of
the two sets; KID (Binkowski et al. 2018) is the optional unbiased kernel alternative. Both come
from `gans.metrics.fid.FeatureDistances`, so the numbers equal those logged during training.

A and B are each a folder of images (searched recursively, in sorted order) or a `.npy`/`.npz`
file of uint8 images shaped (N, H, W) or (N, H, W, C) with C in 1, 3, 4. Images become RGB
(grayscale repeated, alpha dropped); sizes may differ, the Inception resize brings all to 299.

    python -m gans.fid real_images/ samples.npz --kid

shows the progress of the Inception passes over A and B on stderr (images done, images per
second), then a header, and prints the FID as the last line of stdout (KID on the line before it).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from gans.errors import DataError, GansError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npy", ".npz")
INCEPTION_NAME = "Inception 2015-12-05"

# A source is either the sorted image files of a folder or an (N, H, W[, C]) uint8 array.
Source = list[Path] | np.ndarray


# -- reading images ---------------------------------------------------------------------------
def find_image_files(folder: Path) -> list[Path]:
    """Every image file under `folder`, recursively, in sorted order."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(
            f"no images in {folder} (looked recursively for {', '.join(IMAGE_SUFFIXES)}); "
            "pass the folder that holds the images"
        )
    return files


def read_image(file: Path) -> Tensor:
    """One image file as RGB uint8 (3, H, W)."""
    try:
        with Image.open(file) as img:
            array = _rgb_array(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"cannot read image {file}: {err}; delete or re-save it") from None
    return torch.from_numpy(array).permute(2, 0, 1)


def _rgb_array(img: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8; 16-bit grayscale is scaled to 8 bits rather than clipped."""
    if img.mode.startswith("I"):
        gray = (np.asarray(img, dtype=np.float64) / 257).round().clip(0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    return np.array(img.convert("RGB"))


def read_array(file: Path) -> np.ndarray:
    """The images of a .npy file (memory-mapped) or .npz file (`images`, else its first array)."""
    try:
        if not _has_numpy_magic(file):
            raise DataError(f"{file} is not a NumPy .npy/.npz file; save the images with np.save or np.savez")
        loaded = np.load(file, mmap_mode="r", allow_pickle=False)
        array = _pick_array(loaded, file) if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot read {file}: {err}; save the images with np.save or np.savez") from None
    check_array(array, file)
    return array


def _has_numpy_magic(file: Path) -> bool:
    with open(file, "rb") as f:
        start = f.read(6)
    return start == b"\x93NUMPY" or start.startswith(b"PK\x03\x04")  # .npy, or the zip of a .npz


def _pick_array(archive: np.lib.npyio.NpzFile, file: Path) -> np.ndarray:
    with archive:
        if not archive.files:
            raise DataError(f"{file} holds no arrays; save the images with np.savez(path, images=x)")
        return archive["images" if "images" in archive.files else archive.files[0]]


def check_array(array: np.ndarray, file: Path) -> None:
    if array.dtype != np.uint8:
        raise DataError(
            f"{file} holds {array.dtype} images, expected uint8 in [0, 255]; "
            "convert with (x * 255).round().clip(0, 255).astype(np.uint8) for floats in [0, 1]"
        )
    if not (array.ndim == 3 or (array.ndim == 4 and array.shape[-1] in (1, 3, 4))):
        raise DataError(
            f"{file} holds an array shaped {array.shape}, expected (N, H, W) or (N, H, W, C) with C in 1, 3, 4; "
            "transpose (N, C, H, W) arrays with x.transpose(0, 2, 3, 1)"
        )


def array_to_rgb(array: np.ndarray) -> Tensor:
    """(N, H, W[, C]) uint8 to RGB uint8 (N, 3, H, W)."""
    images = torch.from_numpy(np.array(array))  # a writable copy of the (mapped) slice
    if images.dim() == 3:
        images = images.unsqueeze(-1)
    images = images.permute(0, 3, 1, 2)
    return images[:, :3] if images.shape[1] >= 3 else images.expand(-1, 3, -1, -1)


# -- sources and batches ----------------------------------------------------------------------
def open_source(path: str | Path) -> Source:
    """Check `path` and list its images (a folder) or map them (a .npy/.npz file)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; pass a folder of images or a .npy/.npz file")
    if path.is_dir():
        source = find_image_files(path)
    elif path.suffix.lower() in ARRAY_SUFFIXES:
        source = read_array(path)
    else:
        raise DataError(f"{path} is neither a folder nor a .npy/.npz file; pass a folder of images or an array file")
    if len(source) < 2:
        raise DataError(f"{path} holds {len(source)} image(s); FID needs at least 2 (50,000 is the standard)")
    return source


def image_batches(source: Source, batch_size: int) -> Iterator[Tensor]:
    """RGB uint8 (B, 3, H, W) batches; a folder's batches hold consecutive images of one size."""
    if isinstance(source, np.ndarray):
        for start in range(0, len(source), batch_size):
            yield array_to_rgb(source[start : start + batch_size])
        return
    batch: list[Tensor] = []
    for file in source:
        image = read_image(file)
        if batch and (len(batch) == batch_size or image.shape != batch[0].shape):
            yield torch.stack(batch)
            batch = []
        batch.append(image)
    if batch:
        yield torch.stack(batch)


def load_images(path: str | Path) -> Tensor:
    """All images at `path` (a folder or .npy/.npz file) as one RGB uint8 (N, 3, H, W) tensor.

    The images must share one size; `image_batches(open_source(path), n)` streams mixed sizes.
    """
    source = open_source(path)
    batches = list(image_batches(source, len(source)))
    if len(batches) > 1:
        sizes = sorted({tuple(b.shape[2:]) for b in batches})
        raise DataError(f"{path} mixes image sizes {sizes[:3]}; resize them to one size or use image_batches")
    return batches[0]


# -- the metric -------------------------------------------------------------------------------
def build_metric(antialias: bool, kid: bool, kid_subset_size: int, device: torch.device):
    """`FeatureDistances` on `device`; a missing Inception weights file becomes a `GansError`."""
    from gans.metrics.fid import FeatureDistances

    try:
        with warnings.catch_warnings():  # torchmetrics' and torch.jit's notes are noise here
            warnings.simplefilter("ignore")
            return FeatureDistances(antialias=antialias, kid=kid, kid_subset_size=kid_subset_size).to(device)
    except FileNotFoundError as err:
        raise GansError(str(err)) from None


def compute_scores(
    metric, real: Source, fake: Source, batch_size: int, device: torch.device, names: tuple[str, str] | None = None
) -> dict[str, float]:
    """Feed A as the real and B as the generated set (FID is symmetric); {"fid"[, "kid", "kid_std"]}.

    With `names`, each Inception pass shows a progress bar named after its set on stderr.
    """
    for index, (is_real, source) in enumerate(((True, real), (False, fake))):
        with progress_bar(len(source), names[index] if names else None) as bar:
            for batch in image_batches(source, batch_size):
                metric.update(batch.to(device), real=is_real)
                bar.update(len(batch))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: float(value) for name, value in metric.compute().items()}


@contextlib.contextmanager
def progress_bar(total: int, name: str | None) -> Iterator[tqdm]:
    """A bar of images done and images per second on stderr (none when `name` is None).

    Inception costs ~0.15-0.4 s per image on a CPU core, so 2,500 images take minutes. The bar stays
    after a pass; a pass that fails clears it, so the error is the one line left on stderr.
    """
    bar = tqdm(total=total, desc=name, unit="img", file=sys.stderr, disable=name is None, dynamic_ncols=True)
    try:
        yield bar
    except BaseException:
        bar.leave = False
        raise
    finally:
        bar.close()


def resolve_device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GansError("CUDA is not available on this machine; pass --device cpu")
    return torch.device(name)


def header(num_a: int, num_b: int, kid: bool, protocol: str) -> str:
    """E.g. "FID of 60 vs 60 images, Inception 2015-12-05, tf-bilinear resize"."""
    return f"{'FID and KID' if kid else 'FID'} of {num_a} vs {num_b} images, {INCEPTION_NAME}, {protocol} resize"


# -- command line -----------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gans.fid",
        description="FID (Heusel et al. 2017) between two image folders or .npy/.npz files of uint8 images.",
    )
    parser.add_argument("path_a", help="folder of images, or .npy/.npz of uint8 (N, H, W[, C]) images")
    parser.add_argument("path_b", help="the second set, in either form")
    parser.add_argument("--batch-size", type=int, default=50, help="images per Inception batch (default 50)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--antialias", action="store_true", help="torch's antialiased resize instead of the TF-compatible one"
    )
    parser.add_argument("--kid", action="store_true", help="also print KID (Binkowski et al. 2018)")
    parser.add_argument("--kid-subset-size", type=int, default=1000, help="KID subset size (capped by the set sizes)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.kid_subset_size < 2:
        parser.error("--batch-size must be >= 1 and --kid-subset-size >= 2")
    return args


def run(args: argparse.Namespace) -> dict[str, float]:
    """Check both inputs before loading Inception, then score; the header goes to stderr."""
    real, fake = open_source(args.path_a), open_source(args.path_b)
    device = resolve_device(args.device)
    metric = build_metric(args.antialias, args.kid, args.kid_subset_size, device)
    names = tuple(f"{label} {Path(path).name}" for label, path in (("A", args.path_a), ("B", args.path_b)))
    scores = compute_scores(metric, real, fake, args.batch_size, device, names)
    # Printed after the passes, so that a failure leaves exactly one line on stderr.
    print(header(len(real), len(fake), args.kid, metric.protocol), file=sys.stderr)
    return scores


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        scores = run(args)
    except GansError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.kid:
        print(f"KID {scores['kid']:.6f} +- {scores['kid_std']:.6f}")
    print(f"{scores['fid']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
