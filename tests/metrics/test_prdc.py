"""Improved precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020)
against a hand-computed example and the definitions' edge cases."""

from __future__ import annotations

import pytest
import torch

from gans.errors import GansError
from gans.metrics.prdc import density_coverage, knn_radii, prdc, precision_recall


def points(*xs: float) -> torch.Tensor:
    """1-d points as (N, 1) features, so every distance is a difference computed by hand."""
    return torch.tensor(xs).unsqueeze(1)


# Real 0, 1, 3, 10, 12 and samples 0.5, 4, 20, with k = 1:
# real radii (distance to the nearest other real point): 0->1, 1->1, 3->2, 10->2, 12->2;
# sample radii: 0.5->3.5 (to 4), 4->3.5 (to 0.5), 20->16 (to 4).
REAL, FAKE = points(0, 1, 3, 10, 12), points(0.5, 4, 20)


def test_knn_radii_by_hand():
    assert knn_radii(REAL, 1).tolist() == [1, 1, 2, 2, 2]
    assert knn_radii(REAL, 2).tolist() == [3, 2, 3, 7, 9]
    assert knn_radii(FAKE, 1).tolist() == [3.5, 3.5, 16]


def test_precision_and_recall_by_hand():
    # Precision: 0.5 lies in the ball of real 0 (0.5 <= 1), 4 in that of real 3 (1 <= 2); 20 is
    # 8 from real 12 (radius 2): 2 of 3. Recall: reals 0, 1, 3 lie in the ball of sample 0.5
    # (radius 3.5), and 10 and 12 in the outlier 20's wide ball (10, 8 <= 16): 5 of 5, the
    # weakness of recall that coverage fixes.
    assert precision_recall(REAL, FAKE, k=1) == pytest.approx({"precision": 2 / 3, "recall": 1.0})


def test_density_and_coverage_by_hand():
    # Density: sample 0.5 lies in the balls of reals 0 and 1, sample 4 in that of real 3, sample
    # 20 in none: (2 + 1 + 0) / (k * 3 samples) = 1. Coverage: reals 0, 1 (sample 0.5 at 0.5 <= 1)
    # and 3 (sample 4 at 1 <= 2) hold a sample in their ball, 10 and 12 do not: 3 of 5.
    assert density_coverage(REAL, FAKE, k=1) == pytest.approx({"density": 1.0, "coverage": 0.6})
    # With k = 2 the real radii are 3, 2, 3, 7, 9: sample 0.5 lies in the balls of reals 0, 1, 3,
    # sample 4 in those of 3, 10, 12, sample 20 in that of 12 (8 <= 9): 7 / (k * 3); every real
    # ball now holds a sample.
    assert density_coverage(REAL, FAKE, k=2) == pytest.approx({"density": 7 / 6, "coverage": 1.0})


def test_identical_sets_score_one():
    features = torch.randn(64, 16, generator=torch.Generator().manual_seed(0)) * 100 + 50
    scores = prdc(features, features.clone())
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0
    assert 0.5 < scores["density"] < 2.0  # about 1 for equal distributions, not exactly


def test_disjoint_far_sets_score_zero():
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(40, 8, generator=generator), torch.randn(30, 8, generator=generator) + 1000
    assert prdc(real, fake) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_a_collapsed_generator_is_realistic_but_covers_one_mode():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(50, 8, generator=generator)
    collapsed = real[:1] + 1e-3 * torch.randn(20, 8, generator=generator)  # every sample near real image 0
    scores = prdc(real, collapsed)
    assert scores["precision"] == 1.0
    assert scores["recall"] <= 0.1 and scores["coverage"] <= 0.1


def test_too_few_points_and_mismatched_features_are_refused():
    with pytest.raises(GansError, match="3 points cannot have a 3-th nearest neighbour"):
        precision_recall(points(0, 1, 2), points(0, 1, 2, 3))
    with pytest.raises(GansError, match="expected"):
        prdc(torch.zeros(10, 4), torch.zeros(10, 5))


def test_blocks_give_the_same_numbers_as_one_block():
    generator = torch.Generator().manual_seed(1)
    real, fake = torch.randn(70, 6, generator=generator), torch.randn(50, 6, generator=generator) * 1.3
    assert prdc(real, fake, chunk=16) == prdc(real, fake)
