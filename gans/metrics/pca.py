"""The linear baseline of an autoencoder: principal component analysis (Pearson 1901; Hotelling
1933; Jolliffe 2002, "Principal Component Analysis").

Of all rank-k affine maps, projecting the centred data onto the top-k eigenvectors of its
covariance has the least mean squared reconstruction error, and that error is the sum of the
discarded eigenvalues (per pixel: divided by the dimension D). An autoencoder with a k-dimensional
code is nonlinear and should beat it on held-out images; a linear autoencoder trained on MSE can
at best equal it (Baldi & Hornik 1989). So `PCABaseline(k)` fitted on the training images and
scored on the test images is the number an AE's test MSE with `code_dim = k` is read against.

Errors are per pixel on the [0, 1] scale (uint8 x / 255), the AE's `val/mse` convention.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gans.data.base import to_unit
from gans.errors import GansError


def _flat_chunks(images: Tensor, chunk: int):
    for start in range(0, len(images), chunk):
        yield to_unit(images[start : start + chunk], torch.float64).flatten(1)


class PCABaseline:
    """PCA of images (N, C, H, W), uint8 or float in [-1, 1], with k components.

    The D x D covariance (D = C*H*W) is accumulated over chunks in float64 and diagonalised
    exactly (`torch.linalg.eigh`): for D in the hundreds this is seconds and exact, where a
    randomised low-rank SVD would only approximate the small trailing eigenvalues the error is
    made of.

    Attributes (after `fit`): `mean` (D,), `eigenvalues` (D,) descending, the covariance's with
    divisor N, on the [0, 1] scale; `components` (D, k), orthonormal columns.
    """

    def __init__(self, components: int, chunk: int = 4096) -> None:
        if components < 1:
            raise GansError(f"PCA needs at least one component, got {components}")
        self.k, self.chunk = components, chunk
        self.mean = self.eigenvalues = self.components = None
        self.shape: tuple[int, ...] | None = None

    def fit(self, images: Tensor) -> PCABaseline:
        n, self.shape = len(images), tuple(images.shape[1:])
        dim = images[0].numel()
        if self.k > dim:
            raise GansError(f"{self.k} PCA components for {dim}-pixel images: at most {dim}")
        # Two passes (mean, then the centred scatter) rather than E[xx^T] - mm^T, which cancels.
        self.mean = sum(x.sum(0) for x in _flat_chunks(images, self.chunk)) / n
        scatter = torch.zeros(dim, dim, dtype=torch.float64)
        for x in _flat_chunks(images, self.chunk):
            centred = x - self.mean
            scatter += centred.T @ centred
        eigenvalues, eigenvectors = torch.linalg.eigh(scatter / n)  # ascending
        self.eigenvalues = eigenvalues.flip(0).clamp_(min=0.0)  # rounding leaves tiny negatives
        self.components = eigenvectors.flip(1)[:, : self.k].contiguous()
        return self

    def _project(self, x: Tensor) -> Tensor:
        """Flattened [0, 1] images (float64) -> their projections, same scale."""
        if self.components is None:
            raise GansError("PCABaseline.fit(training images) first")
        centred = x - self.mean
        return self.mean + (centred @ self.components) @ self.components.T

    def reconstruct(self, images: Tensor) -> Tensor:
        """The projections of `images` onto the mean plus the k components, as float32 images
        in [-1, 1] like a model's `reconstruct` (not clamped: the projection may leave the range)."""
        out = torch.cat([self._project(x) for x in _flat_chunks(images, self.chunk)])
        return out.float().mul_(2.0).sub_(1.0).view(len(images), *images.shape[1:])

    def mse(self, images: Tensor) -> float:
        """Mean squared reconstruction error per pixel on the [0, 1] scale."""
        total = sum(float((self._project(x) - x).square().sum()) for x in _flat_chunks(images, self.chunk))
        return total / images[0].numel() / len(images)

    def expected_training_mse(self) -> float:
        """The training images' MSE predicted by the eigenvalues: sum of the discarded ones / D."""
        return float(self.eigenvalues[self.k :].sum()) / len(self.eigenvalues)
