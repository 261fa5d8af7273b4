"""FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) between real and generated images.

`FeatureDistances` wraps torchmetrics' `FrechetInceptionDistance` (scored by a faster symmetric
form, `frechet_distance`) and `KernelInceptionDistance` around one shared Inception network, and
caches the real images' features on disk, so the reference set of a data set passes through
Inception once, not once per run. Under DDP each
process updates with its own share of images and torchmetrics sums the states at `compute()`,
so the score equals the single-process score on the same images. Everything runs in float32
(autocast and TF32 off), so a bf16-mixed run scores what a float32 run scores.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from gans.metrics.inception import InceptionFeatures, cache_dir, exact_float32

log = logging.getLogger(__name__)


def _is_features(x: Tensor) -> bool:
    return x.dtype != torch.uint8 and x.dim() == 2 and x.shape[1] == InceptionFeatures.num_features


class _Features(nn.Module):
    """Feeds torchmetrics either images (through Inception) or already computed features."""

    num_features = InceptionFeatures.num_features

    def __init__(self, inception: InceptionFeatures) -> None:
        super().__init__()
        self.inception = inception

    def forward(self, x: Tensor) -> Tensor:
        return x if _is_features(x) else self.inception(x)


def reference_cache_path(key: str, protocol: str) -> Path:
    """The file of the cached real features of the evaluation set `key` under a resize `protocol`."""
    return cache_dir() / "fid_stats" / f"{key}-{protocol}.pt"


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def sqrt_psd(matrix: Tensor) -> Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues that
    rounding made slightly negative count as 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(
    mean_a: Tensor,
    cov_a: Tensor,
    mean_b: Tensor,
    cov_b: Tensor,
    sqrt_cov_a: Tensor | None = None,
    rows_b: Tensor | None = None,
) -> Tensor:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the Frechet distance of two Gaussians
    (Dowson & Landau 1982; FID, Heusel et al. 2017).

    Tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of S_a S_b, computed
    exactly one of two ways:
    - given b's m samples (`rows_b`, m <= d): S_b = B^T B / (m - 1) for the centred rows B, and the
      nonzero eigenvalues of S_a S_b are those of the m x m matrix B S_a B^T / (m - 1): one small
      symmetric eigenproblem and no matrix square root (an evaluation of 1,000 samples: 1000 x
      1000 instead of 2048 x 2048, and 32 smoke samples cost nothing);
    - otherwise those of the symmetric S_a^(1/2) S_b S_a^(1/2): two symmetric eigendecompositions
      instead of the general one torchmetrics uses (the same value to ~1e-7, 2.4x faster on
      2048 x 2048 float64 on the CPU), and S_a^(1/2) (`sqrt_cov_a`) can be kept while S_a does
      not change.
    """
    if rows_b is not None and len(rows_b) <= cov_a.shape[0]:
        centred = rows_b.to(cov_a.dtype) - mean_b
        inner = centred @ cov_a @ centred.T / (len(rows_b) - 1)
    else:
        root = sqrt_psd(cov_a) if sqrt_cov_a is None else sqrt_cov_a
        inner = root @ cov_b @ root
    trace_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    return (mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt


class SymmetricFID(FrechetInceptionDistance):
    """torchmetrics' FID (same states, same syncing under DDP) scored by `frechet_distance`: from the
    generated features themselves when `fake_rows` holds all of them (set by `FeatureDistances`
    for fewer samples than feature dimensions), else with the square root of the real covariance
    kept between evaluations (the real side rarely changes)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._real_root: tuple[tuple[int, float], Tensor] | None = None
        self.fake_rows: Tensor | None = None

    def compute(self) -> Tensor:
        n_real, n_fake = self.real_features_num_samples, self.fake_features_num_samples
        if n_real < 2 or n_fake < 2:
            raise RuntimeError("FID needs at least 2 real and 2 generated images")
        mean_real, cov_real = _mean_and_covariance(self.real_features_sum, self.real_features_cov_sum, n_real)
        mean_fake, cov_fake = _mean_and_covariance(self.fake_features_sum, self.fake_features_cov_sum, n_fake)
        rows = self.fake_rows if self.fake_rows is not None and len(self.fake_rows) == n_fake else None
        if rows is not None and len(rows) <= len(cov_real):
            return frechet_distance(mean_real, cov_real, mean_fake, cov_fake, rows_b=rows).to(self.orig_dtype)
        key = (int(n_real), float(self.real_features_sum.sum()))
        if self._real_root is None or self._real_root[0] != key:
            self._real_root = (key, sqrt_psd(cov_real))
        score = frechet_distance(mean_real, cov_real, mean_fake, cov_fake, sqrt_cov_a=self._real_root[1])
        return score.to(self.orig_dtype)


def _mean_and_covariance(total: Tensor, outer_total: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance from the running sums of x and of x x^T over n samples."""
    mean = total / n
    return mean, (outer_total - n * torch.outer(mean, mean)) / (n - 1)


class FeatureDistances(nn.Module):
    """FID (and optionally KID) of generated against real images, both uint8 (N, C, H, W)
    (or, either side, their (N, 2048) Inception features computed before).

    Args:
        antialias: False (default) is the TF-compatible resize of the published FID tables.
        kid: also compute KID (stores every feature, unlike FID's running sums).
        kid_subset_size: KID subset size; capped by the number of samples at compute time.
        inception: share the network (87 MB) of another instance instead of loading a copy.
    """

    def __init__(
        self,
        antialias: bool = False,
        kid: bool = False,
        kid_subset_size: int = 1000,
        inception: InceptionFeatures | None = None,
    ) -> None:
        super().__init__()
        if inception is not None and inception.antialias != antialias:
            raise ValueError("a shared Inception network must use the same resize protocol")
        self.inception = inception or InceptionFeatures(antialias=antialias)
        features = _Features(self.inception)
        self.fid = SymmetricFID(feature=features, reset_real_features=False)
        self.kid = (
            KernelInceptionDistance(feature=features, reset_real_features=False, subset_size=kid_subset_size)
            if kid
            else None
        )
        self.kid_subset_size = kid_subset_size
        self._real_features: list[Tensor] = []
        # The generated features while fewer than the feature dimensions (FID's sample-space form).
        self._fake_rows: list[Tensor] | None = []

    @property
    def protocol(self) -> str:
        return self.inception.protocol

    @property
    def num_real(self) -> int:
        return int(self.fid.real_features_num_samples)

    @property
    def num_fake(self) -> int:
        return int(self.fid.fake_features_num_samples)

    def _metrics(self) -> list:
        return [m for m in (self.fid, self.kid) if m is not None]

    def update(self, images: Tensor, real: bool) -> None:
        """Add a batch to the real or the generated side, in float32 (`exact_float32`). An empty
        batch adds nothing (an evaluation batch of unequal test sets may hold no image of a domain)."""
        if len(images) == 0:
            return
        with exact_float32(images.device):
            features = images if _is_features(images) else self.inception(images)  # once for every metric
            for metric in self._metrics():
                metric.update(features, real=real)
            if real:
                self._real_features.append(features.float().cpu())
            else:
                self._keep_fake_rows(features)
        self.inception.forget()

    def _keep_fake_rows(self, features: Tensor) -> None:
        if self._fake_rows is None:
            return
        if self.num_fake > self.inception.num_features:  # this process alone has too many
            self._fake_rows = None
        else:
            self._fake_rows.append(features.float())

    def _gathered_fake_rows(self, num_fake: int) -> Tensor | None:
        """Every process's generated features, where FID's sample-space form applies (`num_fake`,
        summed over processes, at most the feature dimensions: then no process dropped its rows).
        Collective under torch.distributed: every rank decides from the same sum."""
        if num_fake > self.inception.num_features:
            return None  # (at most that many in all: no process dropped its rows)
        device = self.fid.fake_features_sum.device
        local = torch.cat(self._fake_rows) if self._fake_rows else torch.empty(0, self.inception.num_features)
        if _distributed():
            shards = [None] * dist.get_world_size()
            dist.all_gather_object(shards, local.cpu())
            local = torch.cat(shards)
        return local.to(device)

    def compute(self) -> dict[str, Tensor]:
        """{"fid"} (and {"kid", "kid_std"}), synced over processes, in float32 (`exact_float32`):
        KID's polynomial kernel is a float32 matmul that autocast would run in bf16."""
        with exact_float32(self.fid.real_features_sum.device):
            counts = self.synced_counts()  # one all-reduce serves both uses
            self.fid.fake_rows = self._gathered_fake_rows(counts[1])
            scores = {"fid": self.fid.compute().float()}
            if self.kid is not None:
                self.kid.subset_size = min(self.kid_subset_size, *counts)
                mean, std = self.kid.compute()
                scores.update(kid=mean.float(), kid_std=std.float())
        return scores

    def synced_counts(self) -> tuple[int, int]:
        """(real, generated) images seen, summed over processes."""
        counts = torch.tensor([self.num_real, self.num_fake], device=self.fid.real_features_sum.device)
        if _distributed():
            dist.all_reduce(counts)
        return int(counts[0]), int(counts[1])

    def discard_collected_real(self) -> None:
        self._real_features = []

    def reset(self) -> None:
        """Forget the generated images; the real statistics stay."""
        for metric in self._metrics():
            metric.reset()
        self._fake_rows = []

    # -- the real reference set, cached on disk ----------------------------------------------
    def cache_path(self, key: str) -> Path:
        return reference_cache_path(key, self.protocol)

    def load_real(self, key: str) -> bool:
        """Add the cached real features of `key` if the cache file exists; returns whether it did.

        Collective under torch.distributed, so every rank must call it: rank 0 alone looks for the
        file and broadcasts the decision with the features. Were each rank to look for itself, a
        node-local cache on one node, or a file another run writes meanwhile, would split the
        ranks between loading and collecting, and the collecting ones would wait forever in
        `save_real`. Each rank then adds its contiguous share of the features: the summed FID
        states count each image once, and KID's feature lists, gathered at `compute()`, have
        (nearly) equal shapes on every rank and concatenate back to the cached order.
        Without torch.distributed it is a plain load.
        """
        features = None
        if not _distributed() or dist.get_rank() == 0:
            features = self._read_cache(self.cache_path(key))
        if _distributed():
            # Objects, not tensors: works on gloo and NCCL alike, whatever device the metric is on;
            # it runs once per data set and stream, not per evaluation.
            shared = [features]
            dist.broadcast_object_list(shared, src=0)
            features = shared[0]
            if features is not None:
                features = features.tensor_split(dist.get_world_size())[dist.get_rank()]
        if features is None:
            return False
        device = self.fid.real_features_sum.device
        with exact_float32(device):
            for metric in self._metrics():
                metric.update(features.to(device), real=True)
        return True

    @staticmethod
    def _read_cache(path: Path) -> Tensor | None:
        # An unreadable file counts as missing (and is rewritten by `save_real`): raising here, on
        # rank 0 alone, would leave the other ranks waiting in the broadcast.
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)["features"]
        except (OSError, RuntimeError, EOFError, KeyError, TypeError, pickle.UnpicklingError) as err:
            log.warning("ignoring the unreadable real-feature cache %s (%s); it will be recomputed", path, err)
            return None

    def save_real(self, key: str) -> None:
        """Write the collected real features to the cache: gathered on rank 0, which writes the
        file, under DDP (collective: every rank calls it)."""
        local = (
            torch.cat(self._real_features) if self._real_features else torch.empty(0, InceptionFeatures.num_features)
        )
        self._real_features = []
        shards = [local]
        if _distributed():
            rank = dist.get_rank()
            shards = [None] * dist.get_world_size() if rank == 0 else None
            dist.gather_object(local, shards, dst=0)
            if rank != 0:
                return
        path = self.cache_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"features": torch.cat(shards)}, tmp)
        tmp.replace(path)  # atomic: parallel sweep jobs never read half a file
