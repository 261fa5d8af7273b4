"""Unpaired image domains (CycleGAN, Zhu et al. 2017): the authors' layout
`ROOT/{trainA,trainB,testA,testB}`, and their named sets, downloaded into `data/<name>`."""

from __future__ import annotations

import logging

from torch import Tensor

from gans.data.image_folder import load_image, read_images
from gans.data.two_domains import FolderPairsDataModule
from gans.errors import DataError

log = logging.getLogger(__name__)

CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
CYCLEGAN_SETS = (
    "horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo", "cezanne2photo", "ukiyoe2photo",
    "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower",
)  # fmt: skip


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
