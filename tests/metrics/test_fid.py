"""FID and KID of `FeatureDistances` against independent computations, under DDP, and from the cache.

The image sets and the reference `FeatureDistances` come from session fixtures in tests/conftest.py
(40 real Fashion-MNIST test images vs 40 noised others), so Inception sees them once.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gans.metrics.fid import FeatureDistances
from gans.metrics.inception import inception_weights_path


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Heusel et al. 2017), with scipy's sqrtm."""
    mu1, mu2 = real.mean(axis=0), fake.mean(axis=0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def test_fid_matches_torch_fidelity(fid_image_dirs, fid_reference):
    import torch_fidelity

    real_dir, fake_dir = fid_image_dirs
    scores = torch_fidelity.calculate_metrics(
        input1=str(real_dir),
        input2=str(fake_dir),
        fid=True,
        feature_extractor_weights_path=inception_weights_path(),  # the same offline weights
        cuda=False,
        batch_size=40,
        cache=False,
        save_cpu_ram=True,  # no data-loader worker processes
        verbose=False,
    )
    ours = fid_reference[1]["fid"]
    assert ours > 10  # noised images are far from real ones: a non-trivial distance to agree on
    assert scores["frechet_inception_distance"] == pytest.approx(ours, rel=5e-3)


def test_fid_matches_scipy_on_the_same_features(fid_reference):
    metric, scores = fid_reference
    real = torch.cat(metric.kid.real_features).double().numpy()  # the features FID and KID both saw
    fake = torch.cat(metric.kid.fake_features).double().numpy()
    assert real.shape == fake.shape == (40, 2048)
    assert frechet_distance(real, fake) == pytest.approx(scores["fid"], rel=5e-3)


def _ddp_worker(rank: int, world_size: int, init_file: str, real, fake, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        metric = FeatureDistances()
        metric.update(real[rank::world_size], real=True)
        metric.update(fake[rank::world_size], real=False)
        fid = float(metric.compute()["fid"])
        counts = metric.synced_counts()
        if rank == 0:
            torch.save({"fid": fid, "counts": counts}, out)
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_equal_single_process(fid_image_sets, fid_reference, tmp_path):
    real, fake = fid_image_sets
    out = tmp_path / "rank0.pt"
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), real, fake, str(out)), nprocs=2, join=True)
    result = torch.load(out, weights_only=True)
    assert tuple(result["counts"]) == (len(real), len(fake))  # every image counted once
    assert result["fid"] == pytest.approx(fid_reference[1]["fid"], rel=1e-3)


def test_real_feature_cache_round_trip(fid_image_sets, fid_reference, monkeypatch, tmp_path):
    metric, scores = fid_reference
    fresh = FeatureDistances()  # built before the cache moves, so the weights are not converted again
    monkeypatch.setenv("GANS_CACHE", str(tmp_path))
    assert not fresh.load_real("fashion-test-40")

    metric.save_real("fashion-test-40")
    assert (tmp_path / "fid_stats" / "fashion-test-40-tf-bilinear.pt").is_file()
    assert fresh.load_real("fashion-test-40")
    assert fresh.num_real == len(fid_image_sets[0])
    fresh.update(fid_image_sets[1], real=False)
    assert float(fresh.compute()["fid"]) == pytest.approx(scores["fid"], rel=1e-6)


def test_kid_with_small_subsets_is_finite(fid_reference):
    scores = fid_reference[1]
    assert math.isfinite(scores["kid"]) and math.isfinite(scores["kid_std"])
    assert scores["kid"] > 0 and scores["kid_std"] >= 0  # noised vs real: clearly positive
