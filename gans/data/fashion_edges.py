"""Offline image-to-image sets made from Fashion-MNIST: A = the item's edge map, B = the item,
paired (pix2pix) or from disjoint halves (CycleGAN); evaluation batches are true pairs."""

from __future__ import annotations

import torch
from torch import Tensor

from gans.data import fashion_mnist
from gans.data.two_domains import ImagePairsDataModule


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


# Grey 32x32 images (36 stored when jittered) in batches of 64, unless the config says otherwise.
IMAGE_DEFAULTS = {
    "image_size": 32,
    "load_size": 36,
    "channels": 1,
    "jitter": False,
    "batch_size": 64,
    "eval_batch_size": 250,
}


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
        train_size: int | None = None,
        val_size: int = 1000,
        split_seed: int = 0,
        edge_threshold: int = 192,
        **kwargs,
    ) -> None:
        super().__init__(**{**IMAGE_DEFAULTS, **kwargs})
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
