"""`data=fashion_captions`: Fashion-MNIST items with captions generated from their class and two
measured attributes, so whether an image matches its caption can itself be measured.

The attributes are measured on the item's foreground (pixels above `FOREGROUND` of 255):

- tone: the foreground's mean intensity, in three buckets ("dark", "grey", "light") split at the
  tertiles over all training items;
- size: the foreground's share of the image, in three buckets ("small", "mid-size", "large")
  split at the tertiles of the item's class (a "large trouser" is a wide pair of trousers; the
  classes differ too much in area for one scale).

Each item gets three captions from templates ("a small dark ankle boot", "a dark ankle boot,
small", "an ankle boot: dark, small"); 10 classes x 3 x 3 buckets give 90 combinations. The
thresholds are computed from the training images at load (`thresholds`), and `measure` applies
the same functions to generated images: attribute accuracy is the fraction of generated images
whose measured buckets equal their caption's. On the real images it is 1 by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gans.data.captions import CaptionedMixin
from gans.data.fashion_mnist import FashionMNISTDataModule

FOREGROUND = 25  # of 255: the background of Fashion-MNIST is 0, the items' soft edges reach ~20
TONES = ("dark", "grey", "light")
SIZES = ("small", "mid-size", "large")
NOUNS = ("t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
TEMPLATES = ("a {size} {tone} {noun}", "a {tone} {noun}, {size}", "{article} {noun}: {tone}, {size}")


@dataclass(frozen=True)
class Thresholds:
    """Bucket edges: tone (2,) over all items, size (num_classes, 2) per class."""

    tone: Tensor
    size: Tensor


def foreground_stats(images: Tensor) -> tuple[Tensor, Tensor]:
    """(mean foreground intensity in [0, 255], foreground share of the image in [0, 1]) of uint8
    (N, 1, H, W) images; an image with no foreground has intensity 0."""
    pixels = images.flatten(1).float()
    mask = pixels > FOREGROUND
    count = mask.sum(1)
    tone = (pixels * mask).sum(1) / count.clamp(min=1)
    return tone, count.float() / pixels.shape[1]


def bucket(values: Tensor, edges: Tensor) -> Tensor:
    """0, 1 or 2: below the first edge, between, above the second."""
    return (values[:, None] > edges).sum(-1)


def fit_thresholds(images: Tensor, labels: Tensor, num_classes: int) -> Thresholds:
    tone, size = foreground_stats(images)
    q = torch.tensor([1 / 3, 2 / 3])
    per_class = torch.stack([torch.quantile(size[labels == k], q) for k in range(num_classes)])
    return Thresholds(tone=torch.quantile(tone, q), size=per_class)


def measure(images: Tensor, labels: Tensor, thresholds: Thresholds) -> tuple[Tensor, Tensor]:
    """(tone bucket, size bucket) of uint8 images of the classes `labels` (the size buckets are
    the class's)."""
    tone, size = foreground_stats(images.cpu())
    labels = labels.cpu()
    return bucket(tone, thresholds.tone), (size[:, None] > thresholds.size[labels]).sum(-1)


def caption(label: int, tone: int, size: int, template: int) -> str:
    noun = NOUNS[label]
    article = "an" if noun[0] in "aeiou" else "a"
    return TEMPLATES[template].format(size=SIZES[size], tone=TONES[tone], noun=noun, article=article)


def parse(text: str) -> tuple[int, int, int] | None:
    """(class, tone, size) of a caption written by `caption`, or None."""
    for label in range(len(NOUNS)):
        for tone in range(3):
            for size in range(3):
                if any(caption(label, tone, size, t) == text for t in range(len(TEMPLATES))):
                    return label, tone, size
    return None


class FashionCaptionsDataModule(CaptionedMixin, FashionMNISTDataModule):
    """Fashion-MNIST (its 60k/10k split, `val_size` held out) with generated captions; see the
    module docstring. Args: those of `FashionMNISTDataModule` and `CaptionedMixin`."""

    name = "fashion_captions"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.thresholds: Thresholds | None = None

    def caption_texts(self, images: Tensor, labels: Tensor, split: str) -> list[list[str]]:
        images = self.conform(images)  # measured at the size the model sees (e.g. 28 padded to 32)
        if split == "train":
            self.thresholds = fit_thresholds(images, labels, self.num_classes)
        tones, sizes = measure(images, labels, self.thresholds)
        return [
            [caption(int(y), int(t), int(s), k) for k in range(len(TEMPLATES))]
            for y, t, s in zip(labels.tolist(), tones.tolist(), sizes.tolist())
        ]

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if getattr(self, "caption_tone", None) is None:
            parsed = [parse(text) for text in self.captions]
            self.caption_tone = torch.tensor([p[1] for p in parsed])
            self.caption_size = torch.tensor([p[2] for p in parsed])

    def caption_attributes(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """(tone bucket, size bucket) that captions (by id) ask for."""
        ids = ids.cpu()
        return self.caption_tone[ids], self.caption_size[ids]

    def attribute_hits(self, images: Tensor, labels: Tensor, tones: Tensor, sizes: Tensor) -> tuple[Tensor, Tensor]:
        """Whether each generated image (uint8, any side: brought to the data's) shows its caption's
        tone and size bucket."""
        side = self.train_images.shape[-1]
        if images.shape[-1] < side:  # nearest: a stage-I image keeps its tone and foreground share exactly
            images = F.interpolate(images, size=(side, side), mode="nearest")
        elif images.shape[-1] > side:
            images = F.interpolate(images.float(), size=(side, side), mode="bilinear", antialias=True)
            images = images.round().clamp(0, 255).to(torch.uint8)
        tone, size = measure(images, labels, self.thresholds)
        return tone == tones.cpu(), size == sizes.cpu()
