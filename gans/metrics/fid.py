"""FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) between real and generated images.

`FeatureDistances` wraps torchmetrics' `FrechetInceptionDistance` and `KernelInceptionDistance`
around one shared Inception network, and caches the real images' features on disk, so the
reference set of a data set passes through Inception once, not once per run. Under DDP each
process updates with its own share of images and torchmetrics sums the states at `compute()`,
so the score equals the single-process score on the same images.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from gans.metrics.inception import InceptionFeatures, cache_dir


class _Features(nn.Module):
    """Feeds torchmetrics either images (through Inception) or already computed features."""

    num_features = InceptionFeatures.num_features

    def __init__(self, inception: InceptionFeatures) -> None:
        super().__init__()
        self.inception = inception

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype != torch.uint8 and x.dim() == 2 and x.shape[1] == self.num_features:
            return x  # cached real features
        return self.inception(x)


class FeatureDistances(nn.Module):
    """FID (and optionally KID) of generated against real images, both uint8 (N, C, H, W).

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
        self.fid = FrechetInceptionDistance(feature=features, reset_real_features=False)
        self.kid = (
            KernelInceptionDistance(feature=features, reset_real_features=False, subset_size=kid_subset_size)
            if kid
            else None
        )
        self.kid_subset_size = kid_subset_size
        self._real_features: list[Tensor] = []

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
        for metric in self._metrics():
            metric.update(images, real=real)
        if real:
            self._real_features.append(self.inception(images).float().cpu())
        self.inception.forget()

    def compute(self) -> dict[str, Tensor]:
        """{"fid"} (and {"kid", "kid_std"}), synced over processes."""
        scores = {"fid": self.fid.compute().float()}
        if self.kid is not None:
            self.kid.subset_size = min(self.kid_subset_size, *self.synced_counts())
            mean, std = self.kid.compute()
            scores.update(kid=mean.float(), kid_std=std.float())
        return scores

    def synced_counts(self) -> tuple[int, int]:
        """(real, generated) images seen, summed over processes."""
        counts = torch.tensor([self.num_real, self.num_fake], device=self.fid.real_features_sum.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
        return int(counts[0]), int(counts[1])

    def discard_collected_real(self) -> None:
        self._real_features = []

    def reset(self) -> None:
        """Forget the generated images; the real statistics stay."""
        for metric in self._metrics():
            metric.reset()

    # -- the real reference set, cached on disk ----------------------------------------------
    def cache_path(self, key: str) -> Path:
        return cache_dir() / "fid_stats" / f"{key}-{self.protocol}.pt"

    def load_real(self, key: str, rank: int = 0) -> bool:
        """Load cached real features for `key` (rank 0 holds them, other ranks none, so the
        summed states count each image once). Returns whether the cache existed."""
        path = self.cache_path(key)
        if not path.is_file():
            return False
        if rank == 0:
            features = torch.load(path, map_location="cpu", weights_only=True)["features"]
            device = self.fid.real_features_sum.device
            for metric in self._metrics():
                metric.update(features.to(device), real=True)
        return True

    def save_real(self, key: str) -> None:
        """Write this process's real features (gathered from all ranks under DDP) to the cache."""
        local = (
            torch.cat(self._real_features) if self._real_features else torch.empty(0, InceptionFeatures.num_features)
        )
        self._real_features = []
        shards = [local]
        if dist.is_available() and dist.is_initialized():
            shards = [None] * dist.get_world_size()
            dist.all_gather_object(shards, local)
            if dist.get_rank() != 0:
                return
        path = self.cache_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"features": torch.cat(shards)}, tmp)
        tmp.replace(path)  # atomic: parallel sweep jobs never read half a file
