"""Intra-FID (Miyato & Koyama 2018, "cGANs with Projection Discriminator", sec. 5): the FID of
each class's generated images against that class's real images, averaged over classes.

FID over the whole set cannot tell a conditional generator that draws good images of the wrong
class (or one class's style for every class) from a right one; intra-FID can. It reuses the
Inception features the FID stream computes (one network pass per image), and the real side's
features with their labels are cached on disk next to the FID reference statistics.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor

log = logging.getLogger(__name__)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _factor(centred: Tensor) -> Tensor:
    # X X^T keeps its singular values when X (n x d, n > d) is replaced by R of X = QR (d x d).
    return torch.linalg.qr(centred, mode="r").R if len(centred) > centred.shape[1] else centred


def frechet_distance(real: Tensor, fake: Tensor) -> Tensor:
    """FID between two feature sets (rows), in float64 (Heusel et al. 2017):
    ||mu_r - mu_f||^2 + Tr(S_r) + Tr(S_f) - 2 Tr((S_r S_f)^(1/2)), unbiased covariances.

    Tr((S_r S_f)^(1/2)) is computed as the nuclear norm of X_r X_f^T / sqrt((n_r - 1)(n_f - 1))
    (X: centred features): the nonzero eigenvalues of S_r S_f are those of B B^T for that B, so
    their square roots are B's singular values. B's side is the sample count (a class of 1,000
    images: a 1,000 x 1,000 SVD), not the feature count (a 2,048 x 2,048 non-symmetric
    eigenproblem per class), and it is exact for the rank-deficient covariances of small classes.
    """
    x, y = real.double(), fake.double()
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"FID needs at least two samples a side, got {n} and {m}")
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    trace_x = xc.pow(2).sum() / (n - 1)
    trace_y = yc.pow(2).sum() / (m - 1)
    trace_sqrt = torch.linalg.svdvals(_factor(xc) @ _factor(yc).T).sum() / math.sqrt((n - 1) * (m - 1))
    return (mx - my).pow(2).sum() + trace_x + trace_y - 2 * trace_sqrt


class IntraFID:
    """Per-class FID of generated against real features, averaged over classes.

    `update(features, labels, real)` adds (N, 2048) Inception features with their classes (real
    labels, or the labels generated images were requested with); `compute()` gathers every
    process's features (collective under torch.distributed) and returns the mean over the classes
    with at least two images on each side, and the per-class FIDs (NaN for the others). Features
    are kept on the CPU: a 10,000-image test set is 80 MB a side.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self._features: dict[bool, list[Tensor]] = {True: [], False: []}
        self._labels: dict[bool, list[Tensor]] = {True: [], False: []}

    def update(self, features: Tensor, labels: Tensor, real: bool) -> None:
        self._features[real].append(features.detach().float().cpu())
        self._labels[real].append(labels.detach().long().cpu())

    def _local(self, real: bool) -> tuple[Tensor, Tensor]:
        features, labels = self._features[real], self._labels[real]
        if not features:
            return torch.empty(0, 0), torch.empty(0, dtype=torch.long)
        return torch.cat(features), torch.cat(labels)

    def _gathered(self, real: bool) -> tuple[Tensor, Tensor]:
        local = self._local(real)
        if not _distributed():
            return local
        shards = [None] * dist.get_world_size()
        dist.all_gather_object(shards, local)
        shards = [s for s in shards if len(s[0])]
        return torch.cat([s[0] for s in shards]), torch.cat([s[1] for s in shards])

    @property
    def num_real(self) -> int:
        return sum(len(x) for x in self._labels[True])

    def compute(self) -> tuple[Tensor, Tensor]:
        """(mean intra-FID, per-class FIDs (K,)), float32, the same on every process."""
        real, real_labels = self._gathered(True)
        fake, fake_labels = self._gathered(False)
        per_class = torch.full((self.num_classes,), float("nan"), dtype=torch.float64)
        for k in range(self.num_classes):
            r, f = real[real_labels == k], fake[fake_labels == k]
            if len(r) >= 2 and len(f) >= 2:
                per_class[k] = frechet_distance(r, f)
        valid = per_class[~per_class.isnan()]
        mean = valid.mean() if len(valid) else torch.tensor(float("nan"), dtype=torch.float64)
        return mean.float(), per_class.float()

    def reset_generated(self) -> None:
        self._features[False], self._labels[False] = [], []

    def discard_real(self) -> None:
        self._features[True], self._labels[True] = [], []

    # -- the real side, cached on disk -------------------------------------------------------
    def load_real(self, path: Path) -> bool:
        """Add the cached real features and labels at `path` if the file exists; returns whether
        it did. Collective under torch.distributed (as `FeatureDistances.load_real`): rank 0 reads
        and broadcasts, each rank keeps a contiguous share."""
        cached = None
        if not _distributed() or dist.get_rank() == 0:
            cached = _read(path)
        if _distributed():
            shared = [cached]
            dist.broadcast_object_list(shared, src=0)
            cached = shared[0]
            if cached is not None:
                world, rank = dist.get_world_size(), dist.get_rank()
                cached = {k: v.tensor_split(world)[rank] for k, v in cached.items()}
        if cached is None:
            return False
        self.update(cached["features"], cached["labels"], real=True)
        return True

    def save_real(self, path: Path) -> None:
        """Write the real features and labels collected on every process to `path` (collective:
        every rank calls it; rank 0 writes)."""
        features, labels = self._gathered(True)
        if _distributed() and dist.get_rank() != 0:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"features": features, "labels": labels}, tmp)
        tmp.replace(path)  # atomic: parallel sweep jobs never read half a file


def _read(path: Path) -> dict[str, Tensor] | None:
    if not path.is_file():
        return None
    try:
        cached = torch.load(path, map_location="cpu", weights_only=True)
        return {"features": cached["features"], "labels": cached["labels"]}
    except (OSError, RuntimeError, EOFError, KeyError, TypeError, pickle.UnpicklingError) as err:
        log.warning("ignoring the unreadable per-class feature cache %s (%s); it will be recomputed", path, err)
        return None
