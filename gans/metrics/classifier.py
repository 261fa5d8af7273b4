"""A classifier of the real data, and the class-aware metrics built on it.

A generator can score a good FID while dropping whole classes, and a conditional generator can
draw sharp images of the wrong class; FID sees neither directly. So the project trains a small
CNN on a data set's training images once (`real_classifier`, cached on disk under `cache_dir()`
like the FID reference features, keyed by a fingerprint of the images, the labels and the
recipe; never shipped as a file) and evaluates generated images with it:

- `ClassStatistics`: the class histogram of generated images and its overlap with the real
  evaluation images' histogram (`class_coverage`, the mode-collapse signal of unconditional
  models), and, for class-conditional models, the accuracy on generated images against the
  labels they were requested with (`class_acc`, as in the AC-GAN evaluation of Odena et al. 2017
  and the CGAN tables of Miyato & Koyama 2018). The classifier's accuracy on the real images is
  the ceiling `class_acc` is read against.
- `classification_accuracy_score`: CAS (Ravuri & Vinyals 2019): a fresh classifier trained on
  generated images only, with the recipe and image count of the real one, tested on the real
  test images. Close to the real classifier's accuracy means the conditional distributions are
  right, not only recognisable.

Intra-FID (Miyato & Koyama 2018) is in `gans.metrics.intra_fid`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric

from gans.data.base import to_float, to_uint8
from gans.metrics.inception import cache_dir, exact_float32

log = logging.getLogger(__name__)

# Bump when ClassifierNet or `fit_classifier` changes: cached classifiers of older versions are
# then retrained rather than loaded into a network they no longer describe.
ARCHITECTURE_VERSION = 1


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _conv(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    # Stride-2 convolutions rather than pooling: a quarter of the arithmetic of a stride-1 layer,
    # which is what keeps the one-time training within a minute or two on a 2-core CPU.
    return [nn.Conv2d(cin, cout, kernel, 2, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ClassifierNet(nn.Module):
    """Three conv blocks (32, 64, 128 channels, each halving the side), pooled to 4x4, dropout and
    a linear layer: images in [-1, 1], any channel count and size, logits (N, num_classes)."""

    def __init__(self, channels: int, num_classes: int, width: int = 32, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv(channels, width, 5), *_conv(width, 2 * width, 3), *_conv(2 * width, 4 * width, 3)
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * width * 16, num_classes)
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))


@dataclass(frozen=True)
class Recipe:
    """How the classifier is trained (part of the cache key): `epochs` of AdamW with a one-cycle
    learning rate (Smith & Topin 2019) on at most `max_images` training images (None: all)."""

    epochs: int = 4
    max_images: int | None = None
    batch_size: int = 128
    lr: float = 4e-3
    weight_decay: float = 1e-4
    seed: int = 0


@torch.no_grad()
def predict(net: nn.Module, images: Tensor, batch_size: int = 1000) -> Tensor:
    """Class indices (N,) of images: uint8 [0, 255] or float [-1, 1] (quantised to uint8 first,
    so generated images are judged as they would be saved), in float32 under every precision."""
    out = []
    for chunk in images.split(batch_size):
        x = to_float(chunk if chunk.dtype == torch.uint8 else to_uint8(chunk))
        with exact_float32(x.device):
            out.append(net(x).argmax(1))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=images.device)


def accuracy(net: nn.Module, images: Tensor, labels: Tensor) -> float:
    if len(images) == 0:
        return float("nan")
    return float((predict(net, images) == labels.to(images.device)).float().mean())


def fit_classifier(
    images: Tensor, labels: Tensor, num_classes: int, recipe: Recipe = Recipe(), device: torch.device | str = "cpu"
) -> ClassifierNet:
    """A `ClassifierNet` trained on uint8 images (N, C, H, W) and their int labels, returned in
    eval mode. Deterministic on a CPU for a given recipe (its seed fixes the initialisation, the
    order and the dropout), and the caller's random state is left as it was: evaluation must not
    change a training run's noise."""
    device = torch.device(device)
    fork = [device] if device.type == "cuda" else []
    # Evaluation hooks run under inference mode and maybe autocast: train in plain float32 autograd.
    with torch.random.fork_rng(devices=fork), torch.inference_mode(False), torch.enable_grad(), exact_float32(device):
        torch.manual_seed(recipe.seed)
        net = ClassifierNet(images.shape[1], num_classes).to(device)
        optimizer = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        batches = max(1, len(images) // recipe.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.lr, total_steps=recipe.epochs * batches, pct_start=0.2
        )
        order_rng = torch.Generator().manual_seed(recipe.seed)
        net.train()
        for _ in range(recipe.epochs):
            order = torch.randperm(len(images), generator=order_rng)
            for i in range(batches):
                idx = order[i * recipe.batch_size : (i + 1) * recipe.batch_size].to(images.device)
                x = to_float(images[idx].to(device))
                loss = F.cross_entropy(net(x), labels[idx].to(device).long())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    net.eval().requires_grad_(False)
    return net


# -- the classifier of a data set, trained once and cached ---------------------------------------
def training_subset(datamodule, recipe: Recipe) -> tuple[Tensor, Tensor]:
    """The training images and labels the classifier learns from: the data module's training split
    (never validation or test), or a seeded random `recipe.max_images` of it."""
    images, labels = datamodule.train_images, datamodule.train_labels
    if recipe.max_images is not None and recipe.max_images < len(images):
        keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(recipe.seed))[: recipe.max_images]
        keep = keep.sort().values.to(images.device)
        images, labels = images[keep], labels[keep]
    return images, labels


def fingerprint(images: Tensor, labels: Tensor, num_classes: int, recipe: Recipe) -> str:
    digest = hashlib.sha1()
    digest.update(repr((ARCHITECTURE_VERSION, num_classes, tuple(images.shape), asdict(recipe))).encode())
    digest.update(images.cpu().contiguous().numpy().tobytes())
    digest.update(labels.cpu().to(torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def classifier_path(name: str, key: str) -> Path:
    return cache_dir() / "classifiers" / f"{name}-{key}.pt"


def _read(path: Path) -> dict | None:
    # An unreadable file counts as missing and is retrained (and rewritten); raising here, on rank
    # 0 alone, would leave the other ranks waiting in the broadcast.
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        log.warning("ignoring the unreadable classifier %s (%s); it will be retrained", path, err)
        return None


def _train_and_save(datamodule, recipe: Recipe, path: Path, device: torch.device) -> dict:
    images, labels = training_subset(datamodule, recipe)
    num_classes = int(datamodule.num_classes)
    start = time.perf_counter()
    net = fit_classifier(images, labels, num_classes, recipe, device)
    seconds = time.perf_counter() - start
    test_images = datamodule.test_images
    test_accuracy = accuracy(net, test_images.to(device), datamodule.test_labels.to(device))
    log.info(
        "trained the class-aware evaluation classifier on %d %s training images (%d classes, %d epochs) in %.0f s: "
        "test accuracy %.2f%% on %d test images; cached in %s",
        len(images), datamodule.name, num_classes, recipe.epochs, seconds, 100 * test_accuracy, len(test_images), path,
    )  # fmt: skip
    state = {
        "state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
        "channels": int(images.shape[1]),
        "num_classes": num_classes,
        "train_images": len(images),
        "test_accuracy": test_accuracy,
        "train_seconds": seconds,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: parallel sweep jobs never read half a file
    return state


def real_classifier(
    datamodule, recipe: Recipe = Recipe(), device: torch.device | str = "cpu"
) -> tuple[nn.Module, dict]:
    """The data module's classifier in eval mode on `device`, and its record (`test_accuracy`,
    `train_images`, ...): loaded from the cache, or trained on the training split and cached.

    Collective under torch.distributed, so every rank must call it: rank 0 alone reads the cache
    or trains and writes it, then broadcasts the weights (a few hundred kB), so every rank holds
    the same classifier even where the cache is local to a node. Without torch.distributed it is a
    plain load-or-train.
    """
    device = torch.device(device)
    state = None
    if not _distributed() or dist.get_rank() == 0:
        images, labels = training_subset(datamodule, recipe)
        path = classifier_path(datamodule.name, fingerprint(images, labels, int(datamodule.num_classes), recipe))
        state = _read(path)
        if state is None:
            state = _train_and_save(datamodule, recipe, path, device)
        else:
            log.info(
                "loaded the class-aware evaluation classifier of %s (%d training images, test accuracy %.2f%%) from %s",
                datamodule.name, state["train_images"], 100 * state["test_accuracy"], path,
            )  # fmt: skip
    if _distributed():
        # Ranks other than 0 wait here while rank 0 trains (a minute or two on a CPU, within the
        # process group's timeout).
        shared = [state]
        dist.broadcast_object_list(shared, src=0)
        state = shared[0]
    with torch.random.fork_rng(devices=[]):  # the initialisation, overwritten below, draws no run's noise
        net = ClassifierNet(state["channels"], state["num_classes"])
    net.load_state_dict(state["state_dict"])
    net = net.to(device).eval().requires_grad_(False)
    return net, {k: v for k, v in state.items() if k != "state_dict"}


# -- metrics ---------------------------------------------------------------------------------------
def class_coverage(generated: Tensor, reference: Tensor) -> Tensor:
    """The histogram intersection sum_k min(p_k, q_k) of two class histograms (counts or
    fractions), i.e. 1 - their total-variation distance: 1 when generated images fall into the
    classes in the reference proportions, 1/K when a generator of a K-class uniform data set
    draws a single class, 0 when the two have no class in common."""
    p, q = generated.float() / generated.sum(), reference.float() / reference.sum()
    return torch.minimum(p, q).sum()


class ClassStatistics(Metric):
    """Class-aware statistics of an evaluation set, summed over processes (torchmetrics states).

    `update(generated, real, real_labels, requested)` takes the classifier's predictions on the
    generated and the real evaluation images, the real images' labels and, for class-conditional
    models, the labels the generated images were requested with. `compute()` returns:

    - `generated_hist`, `real_hist`: the fractions of generated and real images per predicted class;
    - `coverage`: `class_coverage(generated_hist, real_hist)`. The reference is the classifier's
      histogram of the real images, not their labels: the classifier's own confusions (shirt vs
      T-shirt) then shift both sides alike, and a generator drawing the real distribution scores
      1 (up to sampling noise) rather than 1 minus the classifier's bias. It is the real data's
      class mix, uniform on Fashion-MNIST, not "uniform" as such: on an unbalanced folder a
      generator that matches the data is the right one;
    - `real_acc`: the classifier's accuracy on the real images, the ceiling of `class_acc`;
    - `class_acc` (when `requested` was given): the fraction of generated images classified as the
      class they were requested with.
    """

    full_state_update = False

    def __init__(self, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("generated", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("real", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("real_correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("requested_correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("requested_total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, generated: Tensor, real: Tensor, real_labels: Tensor, requested: Tensor | None = None) -> None:
        self.generated += torch.bincount(generated, minlength=self.num_classes)
        self.real += torch.bincount(real, minlength=self.num_classes)
        self.real_correct += (real == real_labels).sum()
        if requested is not None:
            self.requested_correct += (generated == requested).sum()
            self.requested_total += len(requested)

    def compute(self) -> dict[str, Tensor]:
        scores = {
            "generated_hist": self.generated.float() / self.generated.sum().clamp(min=1),
            "real_hist": self.real.float() / self.real.sum().clamp(min=1),
            "coverage": class_coverage(self.generated, self.real),
            "real_acc": self.real_correct.float() / self.real.sum(),
            "generated_total": self.generated.sum(),
        }
        if self.requested_total > 0:
            scores["class_acc"] = self.requested_correct.float() / self.requested_total
        return scores


@torch.no_grad()
def generate_per_class(model, counts: Sequence[int], batch_size: int = 500, seed: int = 0) -> tuple[Tensor, Tensor]:
    """counts[k] images of class k from a class-conditional model, uint8 on the CPU, and their
    labels; latents drawn from `seed`, so the set is the same on every call."""
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.as_tensor(list(counts)))
    z = torch.randn(len(labels), model.latent_dim, generator=torch.Generator().manual_seed(seed))
    images = [
        to_uint8(model.generate_from(z[i : i + batch_size], labels[i : i + batch_size])).cpu()
        for i in range(0, len(labels), batch_size)
    ]
    return torch.cat(images), labels


def classification_accuracy_score(
    model,
    datamodule,
    n_per_class: int | Sequence[int],
    recipe: Recipe = Recipe(),
    device: torch.device | str | None = None,
    seed: int = 0,
) -> float:
    """CAS (Ravuri & Vinyals 2019): the test accuracy on the data module's real test images of a
    fresh classifier trained only on images the class-conditional `model` generated,
    `n_per_class` of each class (an int, or one count per class). Compare it with the accuracy of
    the classifier trained on real images with the same recipe and counts (`real_classifier`'s
    `test_accuracy`): a generator whose class-conditionals match the data's scores the same."""
    num_classes = int(datamodule.num_classes)
    counts = [n_per_class] * num_classes if isinstance(n_per_class, int) else list(n_per_class)
    if len(counts) != num_classes:
        raise ValueError(f"n_per_class has {len(counts)} counts for {num_classes} classes")
    device = torch.device(device) if device is not None else model.device
    # Generated outside inference mode: the new classifier's first layer saves its input for backward.
    with torch.inference_mode(False):
        images, labels = generate_per_class(model, counts, seed=seed)
        net = fit_classifier(images, labels, num_classes, recipe, device)
    return accuracy(net, datamodule.test_images.to(device), datamodule.test_labels.to(device))
