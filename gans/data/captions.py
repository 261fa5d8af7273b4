"""Images with captions, the data of text-to-image models (StackGAN, Zhang et al. 2017).

Every image has one or more captions; the batch of an image carries its caption ids and their
frozen text embeddings (`gans.data.text_embeddings`): `caption` and `embedding` (the first
caption's, what evaluation conditions on, so the held-out captions are the same at every
evaluation) and `caption_embeddings` (N, K, D) with `caption_count` (N,), from which a model draws
one caption per image at each training step, as the authors' code draws one of an image's ten.

`CaptionedMixin` adds captions to any in-memory image data module: the module's `caption_texts`
gives each loaded image its captions, and the caption ids follow the train/val/test split of the
images. `CaptionedFolderDataModule` reads the layout people already use::

    root/0001.jpg  root/0001.txt   (one caption per line, several allowed)
    root/birds/0002.png  root/birds/0002.txt  ...  (class subfolders, as data=image_folder)
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from gans.data.base import TensorImages
from gans.data.image_folder import ImageFolderDataModule
from gans.data.text_embeddings import MINILM, embed, embedding_dim
from gans.errors import DataError

log = logging.getLogger(__name__)


def read_captions(image: Path, caption_dir: Path | None = None, root: Path | None = None) -> list[str]:
    """The captions of an image: the non-empty lines of its same-named .txt (beside it, or at the
    same relative place under `caption_dir`). One DataError line when the file is missing or empty."""
    text = image.with_suffix(".txt")
    if caption_dir is not None and root is not None:
        text = caption_dir / image.relative_to(root).with_suffix(".txt")
    if not text.is_file():
        raise DataError(f"image {image} has no captions: add {text} with one caption per line")
    captions = [line.strip() for line in text.read_text(encoding="utf-8", errors="replace").splitlines()]
    captions = [c for c in captions if c]
    if not captions:
        raise DataError(f"caption file {text} is empty: write one caption per line for {image.name}")
    return captions


class CaptionedImages(TensorImages):
    """Images, labels and caption ids (N, K; -1 pads images with fewer than K captions) over one
    embedding table (U, D), indexed by a batch of indices at once."""

    def __init__(self, images: Tensor, labels: Tensor, caption_ids: Tensor, table: Tensor) -> None:
        super().__init__(images, labels)
        self.caption_ids, self.table = caption_ids, table

    def __getitem__(self, index: int | Tensor) -> dict[str, Tensor]:
        item = super().__getitem__(index)
        ids = self.caption_ids[index]
        first = ids[..., 0]
        item.update(
            caption=first,
            embedding=self.table[first],
            caption_embeddings=self.table[ids.clamp(min=0)],
            caption_count=(ids >= 0).sum(-1),
        )
        return item


class CaptionedMixin:
    """Captions for an `InMemoryImageDataModule`: put it first among the bases and state
    `caption_texts(images, labels, split)`.

    Args:
        text_encoder: "minilm" (the frozen all-MiniLM-L6-v2) or a .npz of precomputed embeddings.
        embedding_dim: the size the model config expects (`data.embedding_dim`), checked.
        max_captions: keep at most this many captions per image (None: all).
    """

    def __init__(
        self,
        *args,
        text_encoder: str = MINILM,
        embedding_dim: int | None = None,
        max_captions: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.text_encoder, self.max_captions = text_encoder, max_captions
        if embedding_dim is not None and embedding_dim != self.embedding_dim:
            raise DataError(f"data.embedding_dim={embedding_dim} but data.text_encoder={text_encoder} gives "
                            f"{self.embedding_dim}-d vectors: set data.embedding_dim={self.embedding_dim}")  # fmt: skip
        self.captions: list[str] = []  # caption id -> text
        self.caption_embeddings: Tensor | None = None
        self.train_caption_ids = self.val_caption_ids = self.test_caption_ids = None
        self._loaded_captions: dict[str, list[list[str]]] = {}

    @property
    def embedding_dim(self) -> int:
        return embedding_dim(self.text_encoder)

    def caption_texts(self, images: Tensor, labels: Tensor, split: str) -> list[list[str]]:
        """The captions of each loaded image of a split ("train": the images `load` returned first,
        "test": its test split)."""
        raise NotImplementedError

    def load(self):
        images, labels, test_images, test_labels = super().load()
        self._loaded_captions = {"train": self.caption_texts(images, labels, "train")}
        if test_images is not None:
            self._loaded_captions["test"] = self.caption_texts(test_images, test_labels, "test")
        return images, labels, test_images, test_labels

    def setup(self, stage: str | None = None) -> None:
        first = self.train_images is None
        super().setup(stage)
        if not first:
            return
        loaded = self._loaded_captions
        texts = sorted({c for split in loaded.values() for item in split for c in item[: self.max_captions]})
        self.captions, row = texts, {c: i for i, c in enumerate(texts)}
        width = max(min(len(item), self.max_captions or len(item)) for split in loaded.values() for item in split)

        def ids(items: list[list[str]]) -> Tensor:
            out = torch.full((len(items), width), -1, dtype=torch.int64)
            for i, item in enumerate(items):
                kept = [row[c] for c in item[: self.max_captions]]
                out[i, : len(kept)] = torch.tensor(kept)
            return out

        train_ids = ids(loaded["train"])
        # The images' own split (`_split`, seeded): the caption ids follow it.
        train_idx, val_idx, test_idx = self._split(len(train_ids), has_test="test" in loaded)
        self.train_caption_ids, self.val_caption_ids = train_ids[train_idx], train_ids[val_idx]
        self.test_caption_ids = ids(loaded["test"]) if test_idx is None else train_ids[test_idx]
        self.caption_embeddings = embed(self.captions, self.text_encoder)
        self._loaded_captions = {}
        log.info("%s: %d unique captions, %s embeddings (%d-d)", self.name, len(self.captions), self.text_encoder,
                 self.caption_embeddings.shape[1])  # fmt: skip
        self.to_training_device()

    def tensor_names(self) -> tuple[str, ...]:
        names = ("train_caption_ids", "val_caption_ids", "test_caption_ids", "caption_embeddings")
        return super().tensor_names() + names

    def caption_ids_of(self, stage: str) -> Tensor:
        return {"fit": self.train_caption_ids, "validate": self.val_caption_ids, "test": self.test_caption_ids}[stage]

    def train_dataloader(self) -> DataLoader:
        loader = super().train_dataloader()
        dataset = CaptionedImages(self.train_images, self.train_labels, self.train_caption_ids, self.caption_embeddings)
        return DataLoader(dataset, batch_size=None, sampler=loader.sampler)

    def _eval_dataloader(self, stage: str) -> DataLoader:
        loader = super()._eval_dataloader(stage)
        images = self.eval_images(stage)
        labels = (self.val_labels if stage == "validate" else self.test_labels)[: len(images)]
        ids = self.caption_ids_of(stage)[: len(images)]
        return DataLoader(CaptionedImages(images, labels, ids, self.caption_embeddings), batch_size=None,
                          sampler=loader.sampler)  # fmt: skip

    def held_out_captions(self, n: int, stage: str = "validate") -> tuple[list[str], Tensor, Tensor]:
        """The first captions of the first n held-out images: (texts, embeddings (n, D), labels (n,)),
        the fixed captions of the sample grids and of the text-image consistency scores."""
        ids = self.caption_ids_of(stage)[:n, 0].cpu()
        labels = (self.val_labels if stage == "validate" else self.test_labels)[:n].cpu()
        return [self.captions[i] for i in ids], self.caption_embeddings.cpu()[ids], labels


class CaptionedFolderDataModule(CaptionedMixin, ImageFolderDataModule):
    """`data=captioned_folder`: a folder of images (flat or one subfolder per class, as
    `data=image_folder`), each with a same-named .txt of captions, one per line.

    Args (besides `ImageFolderDataModule`'s and `CaptionedMixin`'s):
        caption_root: where the .txt files are, mirroring the image folder's layout (None: beside
            the images).
    """

    name = "captioned_folder"

    def __init__(self, *args, caption_root: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.caption_root = None if caption_root is None else Path(caption_root).expanduser()

    def scan(self) -> None:
        super().scan()
        # Every image's captions are read up front: a missing or empty file fails before any decoding.
        self._file_captions = [read_captions(f, self.caption_root, self.root) for f in self.files]

    def caption_texts(self, images: Tensor, labels: Tensor, split: str) -> list[list[str]]:
        return self._file_captions
