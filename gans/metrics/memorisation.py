"""Do samples copy the training set? Nearest-neighbour distances in pixel space, read against
real test images.

A real image the model never saw has some distance to its nearest training image; a model that
draws fresh images from the data distribution gives its samples the same distribution of
distances, and one that copies gives smaller ones. Comparing the generated-to-training distances
with the test-to-training ones is the data-copying test of Meehan, Chaudhuri & Dasgupta 2020 ("A
non-parametric test to detect data-copying in generative models", AISTATS), which compares the
two distributions with a Mann-Whitney test; here two plain numbers summarise it:

- `median_ratio`: median generated NN distance / median test NN distance. About 1 for fresh
  draws; below 1, samples sit closer to training images than unseen real images do; above 1,
  further (novel, or off the data).
- `fraction_closer`: the fraction of generated samples closer to their nearest training image
  than the closest 5% of real test images are (NN distance below the test distances' 5th
  percentile). About 0.05 for fresh draws; a model that copies scores far above it. An exact copy
  always counts, and `copies` counts those alone (distance under half a grey level, 0.5 / 255, so
  the rounding of float images does not hide one).

Distances are Euclidean on the [0, 1] pixel scale over all C*H*W values. L2 in pixel space favours
blur (a blurred average is close to many images), so a small ratio for a blurry model is not by
itself proof of copying: look at the pairs (`closest_pairs`) as well.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gans.data.base import to_unit
from gans.errors import GansError

COPY_DISTANCE = 0.5 / 255  # below half a grey level in L2: the same uint8 image


@torch.no_grad()
def nearest_neighbours(
    queries: Tensor, reference: Tensor, query_chunk: int = 1024, reference_chunk: int = 8192
) -> tuple[Tensor, Tensor]:
    """For each query image, the L2 distance ([0, 1] scale) to its nearest reference image and that
    image's index: (N,) float32 and (N,) int64. Images are uint8 or [-1, 1] floats of one shape.

    The search runs over query x reference blocks (32 MB of distances at the defaults), so 10k x
    60k Fashion-MNIST images take seconds on a CPU; `torch.cdist` finds the neighbour through a
    matrix product, and the winner's distance is then recomputed directly, so an exact copy
    reads 0 rather than the product's rounding error.
    """
    if queries.shape[1:] != reference.shape[1:]:
        raise GansError(f"images of shape {tuple(queries.shape[1:])} against {tuple(reference.shape[1:])}")
    ref = to_unit(reference).flatten(1)
    distances, indices = [], []
    for start in range(0, len(queries), query_chunk):
        q = to_unit(queries[start : start + query_chunk]).flatten(1)
        best = torch.full((len(q),), float("inf"))
        best_index = torch.zeros(len(q), dtype=torch.int64)
        for offset in range(0, len(ref), reference_chunk):
            d, i = torch.cdist(q, ref[offset : offset + reference_chunk]).min(dim=1)
            better = d < best
            best, best_index = torch.where(better, d, best), torch.where(better, i + offset, best_index)
        distances.append((q - ref[best_index]).norm(dim=1))
        indices.append(best_index)
    return torch.cat(distances), torch.cat(indices)


def fraction_closer(generated_nn: Tensor, test_nn: Tensor, quantile: float = 0.05) -> float:
    """The fraction of generated samples whose NN distance is below the `quantile` of the real
    test images' NN distances: `quantile` for fresh draws from the data, more for a copier."""
    threshold = torch.quantile(test_nn.double(), quantile)
    return float((generated_nn.double() < threshold).double().mean())


def memorisation_summary(generated_nn: Tensor, test_nn: Tensor, quantile: float = 0.05) -> dict[str, float]:
    """The module's summary of generated vs test NN distances to the training set."""
    generated_median, test_median = float(generated_nn.median()), float(test_nn.median())
    return {
        "median_nn": generated_median,
        "test_median_nn": test_median,
        "median_ratio": generated_median / test_median,
        "fraction_closer": fraction_closer(generated_nn, test_nn, quantile),
        "quantile": quantile,
        "copies": int((generated_nn < COPY_DISTANCE).sum()),
    }


def closest_pairs(distances: Tensor, indices: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """The k samples nearest to the training set, nearest first: (sample indices, their nearest
    training images' indices, the distances), for a picture of the likeliest copies."""
    order = distances.argsort()[:k]
    return order, indices[order], distances[order]
