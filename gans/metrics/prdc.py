"""Realism and diversity apart: improved precision and recall, density and coverage.

FID folds two failures into one number: samples that are unrealistic and samples that miss part
of the data. These metrics split them, estimating each distribution's support with k-nearest-
neighbour balls in a feature space (here the 2048-d Inception pool3 features FID uses):

- Kynkaanniemi, Karras, Laine, Lehtinen & Aila 2019, "Improved Precision and Recall Metric for
  Assessing Generative Models" (NeurIPS). A set's manifold is the union of balls around its points,
  each with the radius to that point's k-th nearest neighbour in the same set (k = 3 in the
  paper). Precision: the fraction of generated samples inside the real manifold (realism).
  Recall: the fraction of real images inside the generated manifold (diversity).
- Naeem, Oh, Uh, Choi & Yoo 2020, "Reliable Fidelity and Diversity Metrics for Generative Models"
  (ICML). Precision counts a sample inside a single real outlier's large ball as realistic, and
  recall builds balls around generated outliers. Density counts how many real balls contain each
  sample (divided by k: about 1 when the two distributions are equal, above 1 where samples
  crowd dense regions, unbounded). Coverage is the fraction of real images whose own ball holds
  at least one sample: only real balls, so generated outliers cannot inflate it. The paper uses
  k = 5.

The papers embed images with VGG16's fc2 layer; here the Inception features of FID serve, so the
values are comparable across runs of this project, not with tables computed on VGG features.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from gans.errors import GansError

PRECISION_RECALL_K = 3  # Kynkaanniemi et al. 2019
DENSITY_COVERAGE_K = 5  # Naeem et al. 2020


CHUNK = 1024  # rows of a distance block: 1024 x 10,000 float64 distances are 80 MB


def distance_blocks(a: Tensor, b: Tensor, chunk: int = CHUNK) -> Iterator[tuple[slice, Tensor]]:
    """Euclidean distances from row blocks of `a` to all of `b`: (rows of `a`, block (rows, len(b))).

    float64, so the matrix-product form of `cdist` reads a point's distance to itself as 0 to
    within ~1e-6 of the feature scale; blocks, so 10k x 10k features never hold 800 MB at once.
    """
    a, b = a.double(), b.double()
    for start in range(0, len(a), chunk):
        rows = slice(start, min(start + chunk, len(a)))
        yield rows, torch.cdist(a[rows], b)


def knn_radii(features: Tensor, k: int, chunk: int = CHUNK) -> Tensor:
    """Each point's distance to its k-th nearest neighbour among the other points of its set."""
    if not 1 <= k < len(features):
        raise GansError(f"{len(features)} points cannot have a {k}-th nearest neighbour: use more than {k} samples")
    radii = torch.empty(len(features), dtype=torch.float64)
    for rows, distances in distance_blocks(features, features, chunk):
        # The k + 1 smallest include the point itself at 0 (a duplicate at 0 counts as a neighbour).
        radii[rows] = distances.topk(k + 1, dim=1, largest=False).values[:, k]
    return radii


def precision_recall(real: Tensor, fake: Tensor, k: int = PRECISION_RECALL_K, chunk: int = CHUNK) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of `fake` against `real` features."""
    real_radii, fake_radii = knn_radii(real, k, chunk), knn_radii(fake, k, chunk)
    # A sample is realistic if it lies in some real image's ball; a real image is recalled if it
    # lies in some sample's ball (radii from the k-th neighbour within each set).
    realistic = torch.cat([(d <= real_radii).any(dim=1) for _, d in distance_blocks(fake, real, chunk)])
    recalled = torch.cat([(d <= fake_radii).any(dim=1) for _, d in distance_blocks(real, fake, chunk)])
    return {"precision": float(realistic.double().mean()), "recall": float(recalled.double().mean())}


def density_coverage(real: Tensor, fake: Tensor, k: int = DENSITY_COVERAGE_K, chunk: int = CHUNK) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020) of `fake` against `real` features."""
    real_radii = knn_radii(real, k, chunk)
    balls_holding_samples = 0
    covered = torch.zeros(len(real), dtype=torch.bool)
    for _, distances in distance_blocks(fake, real, chunk):
        inside = distances <= real_radii  # (samples, real): sample j inside real image i's ball
        balls_holding_samples += int(inside.sum())
        covered |= inside.any(dim=0)
    return {"density": balls_holding_samples / (k * len(fake)), "coverage": float(covered.double().mean())}


def prdc(
    real: Tensor,
    fake: Tensor,
    k_precision_recall: int = PRECISION_RECALL_K,
    k_density_coverage: int = DENSITY_COVERAGE_K,
    chunk: int = CHUNK,
) -> dict[str, float]:
    """The four numbers for (N, D) real and (M, D) generated features."""
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise GansError(f"features shaped {tuple(real.shape)} and {tuple(fake.shape)}: expected (N, D) and (M, D)")
    return {
        **precision_recall(real, fake, k_precision_recall, chunk),
        **density_coverage(real, fake, k_density_coverage, chunk),
    }
