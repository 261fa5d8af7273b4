"""FID and KID of `FeatureDistances` against independent computations, under DDP, from the cache,
and under autocast.

The image sets and the reference `FeatureDistances` come from session fixtures in tests/conftest.py
(40 real Fashion-MNIST test images vs 40 noised others), so Inception sees them once.
"""

from __future__ import annotations

import math
import os
import time
from datetime import timedelta

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gans.metrics.fid import FeatureDistances
from gans.metrics.inception import InceptionFeatures, inception_weights_path

pytestmark = pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save all extracted features")

DDP_TIMEOUT_S = 300  # a hung collective fails the test instead of the session


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


def _reference_features(fid_reference) -> tuple[torch.Tensor, torch.Tensor]:
    """The (40, 2048) real and fake Inception features the reference metric saw."""
    metric = fid_reference[0]
    return torch.cat(metric.kid.real_features), torch.cat(metric.kid.fake_features)


def _scores_of_features(fid_reference, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """FID and KID (one subset: the whole set, so KID does not depend on the features' order)."""
    metric = FeatureDistances(kid=True, kid_subset_size=len(real), inception=fid_reference[0].inception)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return {name: float(value) for name, value in metric.compute().items()}


def test_scores_under_bf16_autocast_equal_float32(fid_reference):
    """Issue 6, defect 1: FID/KID math ran under the caller's autocast (KID's kernel matmul in bf16)."""
    real, fake = _reference_features(fid_reference)

    def scores(autocast: bool) -> dict[str, torch.Tensor]:
        metric = FeatureDistances(kid=True, kid_subset_size=10, inception=fid_reference[0].inception)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            metric.update(real, real=True)
            metric.update(fake, real=False)
            torch.manual_seed(0)  # the same KID subsets in both runs
            return metric.compute()

    expected, under_autocast = scores(False), scores(True)
    assert expected.keys() == under_autocast.keys() == {"fid", "kid", "kid_std"}
    for name, value in expected.items():
        assert torch.equal(under_autocast[name], value), name


def test_unreadable_cache_counts_as_missing(fid_reference, monkeypatch, tmp_path):
    monkeypatch.setenv("GANS_CACHE", str(tmp_path))
    metric = FeatureDistances(inception=fid_reference[0].inception)
    path = metric.cache_path("broken")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    assert not metric.load_real("broken")  # recomputed and rewritten, not raised on rank 0 alone
    assert metric.num_real == 0


def _ddp_cache_worker(rank: int, world_size: int, init_file: str, real, fake, cache_dirs, out: str) -> None:
    """Two runs as the base module does them: the first collects the real features (its share)
    and caches them; the second finds the cache. Each rank has its own cache folder, as on
    separate nodes, so only rank 0 can see the file the first run wrote."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size, timeout=timedelta(seconds=120)
    )
    try:
        inception = InceptionFeatures()  # the session cache's converted weights
        os.environ["GANS_CACHE"] = cache_dirs[rank]
        results = []
        for _ in range(2):
            metric = FeatureDistances(kid=True, inception=inception)
            loaded = metric.load_real("fashion-40")
            if not loaded:
                metric.update(real[rank::world_size], real=True)  # DistributedSampler's share
            metric.update(fake[rank::world_size], real=False)
            local_real = sum(len(f) for f in metric.kid.real_features)
            scores = {name: float(value) for name, value in metric.compute().items()}
            if not loaded:
                metric.save_real("fashion-40")
            results.append({"loaded": loaded, "local_real": local_real, "scores": scores})
        torch.save(results, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_ddp_cache_seen_by_rank_0_only(fid_reference, tmp_path):
    """Issue 6, defect 3: each rank decided alone whether the cache existed; with a node-local cache
    rank 0 loaded all features and rank 1 collected its share, and the ranks hung in `save_real`.
    Rank 0 decides and shares the features: each rank holds half, and FID and KID equal the
    single-process scores."""
    real, fake = _reference_features(fid_reference)
    expected = _scores_of_features(fid_reference, real, fake)
    cache_dirs = [str(tmp_path / f"node{rank}") for rank in range(2)]
    out = tmp_path / "results"
    processes = mp.spawn(
        _ddp_cache_worker,
        args=(2, str(tmp_path / "init"), real, fake, cache_dirs, str(out)),
        nprocs=2,
        join=False,
    )
    deadline = time.monotonic() + DDP_TIMEOUT_S
    while not processes.join(timeout=max(0.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            for process in processes.processes:
                process.kill()
            pytest.fail(f"the DDP ranks did not finish within {DDP_TIMEOUT_S} s (a collective mismatch)")
    assert sorted(os.listdir(tmp_path / "node0" / "fid_stats")) == ["fashion-40-tf-bilinear.pt"]
    assert not (tmp_path / "node1").exists()
    for rank in range(2):
        first, second = torch.load(f"{out}.{rank}", weights_only=True)
        assert not first["loaded"] and second["loaded"], rank  # every rank took rank 0's decision
        assert first["local_real"] == second["local_real"] == 20  # each image held once, equal shapes
        for result in (first, second):
            assert result["scores"]["fid"] == pytest.approx(expected["fid"], rel=1e-4)
            assert result["scores"]["kid"] == pytest.approx(expected["kid"], rel=1e-4)


def test_symmetric_form_equals_torchmetrics_general_eigenvalues_on_rank_deficient_covariances():
    from torchmetrics.image.fid import _compute_fid

    from gans.metrics import fid

    g = torch.Generator().manual_seed(0)
    for n_a, n_b in ((300, 40), (20, 500)):  # fewer samples than dimensions on either side: singular
        a = torch.randn(n_a, 128, generator=g, dtype=torch.float64) * torch.rand(128, generator=g, dtype=torch.float64)
        b = 0.5 + torch.randn(n_b, 128, generator=g, dtype=torch.float64)
        mean_a, mean_b, cov_a, cov_b = a.mean(0), b.mean(0), torch.cov(a.T), torch.cov(b.T)
        expected = _compute_fid(mean_a, cov_a, mean_b, cov_b)
        assert fid.frechet_distance(mean_a, cov_a, mean_b, cov_b) == pytest.approx(float(expected), rel=1e-6)


class _GivenFeatures(torch.nn.Module):
    num_features = 64  # torchmetrics sizes its states from this

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_fid_keeps_the_real_root_until_the_real_side_changes(monkeypatch):
    from gans.metrics import fid

    roots = []
    square_root = fid.sqrt_psd
    monkeypatch.setattr(fid, "sqrt_psd", lambda m: roots.append(m) or square_root(m))
    metric = fid.SymmetricFID(feature=_GivenFeatures(), reset_real_features=False)
    g = torch.Generator().manual_seed(1)
    real = torch.randn(50, 64, generator=g, dtype=torch.float64)
    fakes = [torch.randn(30, 64, generator=g, dtype=torch.float64) + i for i in range(2)]
    metric.update(real, real=True)
    scores = []
    for fake in fakes:
        metric.reset()  # keeps the real side (reset_real_features=False), as between validations
        metric.update(fake, real=False)
        scores.append(float(metric.compute()))
    assert len(roots) == 1  # one square root of the real covariance served both scores
    assert scores == pytest.approx([frechet_distance(real.numpy(), fake.numpy()) for fake in fakes], rel=1e-6)
    metric.update(real[:10], real=True)  # the real side changed: a new root
    metric.compute()
    assert len(roots) == 2


def test_sample_space_form_equals_the_symmetric_one_when_one_side_has_fewer_samples_than_dimensions():
    from torchmetrics.image.fid import _compute_fid

    from gans.metrics import fid

    g = torch.Generator().manual_seed(2)
    for n_a, n_b in ((300, 40), (20, 5), (50, 128)):  # the last: as many samples as dimensions
        a = torch.randn(n_a, 128, generator=g, dtype=torch.float64) * torch.rand(128, generator=g, dtype=torch.float64)
        b = 0.5 + torch.randn(n_b, 128, generator=g, dtype=torch.float64)
        mean_a, mean_b, cov_a, cov_b = a.mean(0), b.mean(0), torch.cov(a.T), torch.cov(b.T)
        expected = float(_compute_fid(mean_a, cov_a, mean_b, cov_b))
        sample_space = float(fid.frechet_distance(mean_a, cov_a, mean_b, cov_b, rows_b=b))
        assert sample_space == pytest.approx(float(fid.frechet_distance(mean_a, cov_a, mean_b, cov_b)), rel=1e-7)
        assert sample_space == pytest.approx(expected, rel=1e-6)


def test_fid_of_fewer_generated_samples_than_dimensions_takes_no_matrix_square_root(fid_reference, monkeypatch):
    from gans.metrics import fid
    from gans.metrics.intra_fid import frechet_distance as fid_of_rows  # a third exact form, checked against scipy

    roots = []
    square_root = fid.sqrt_psd
    monkeypatch.setattr(fid, "sqrt_psd", lambda m: roots.append(m) or square_root(m))
    g = torch.Generator().manual_seed(3)
    real = torch.rand(60, 2048, generator=g) * torch.rand(2048, generator=g)
    fake = torch.rand(1030, 2048, generator=g) * torch.rand(2048, generator=g)
    metric = FeatureDistances(inception=fid_reference[0].inception)
    metric.update(real, real=True)
    metric.update(fake[:30], real=False)
    assert metric.compute()["fid"] == pytest.approx(float(fid_of_rows(real, fake[:30])), rel=1e-6)
    assert roots == []  # a 30 x 30 eigenproblem, not 2048 x 2048
    metric.reset()
    metric.update(fake, real=False)
    metric.update(fake + 0.01, real=False)  # 2,060 > 2,048 generated: rows dropped, the root form scores
    both = torch.cat([fake, fake + 0.01])
    assert metric.compute()["fid"] == pytest.approx(float(fid_of_rows(real, both)), rel=1e-6)
    assert len(roots) == 1 and metric._fake_rows is None
