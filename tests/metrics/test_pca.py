"""The PCA baseline: exact on data in a k-dimensional subspace, monotone in k, its error equal to
the discarded eigenvalues (against numpy's covariance), and a 2-D example worked by hand."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch

from gans.errors import GansError
from gans.metrics.pca import PCABaseline


def subspace_images(n: int, k: int, shape=(1, 4, 5), seed: int = 0) -> torch.Tensor:
    """n float images lying exactly in a k-dimensional affine subspace."""
    g = torch.Generator().manual_seed(seed)
    dim = int(np.prod(shape))
    basis, offset = torch.randn(dim, k, generator=g), torch.randn(dim, generator=g)
    codes = torch.randn(n, k, generator=g)
    return (0.3 * codes @ basis.T + 0.1 * offset).view(n, *shape)


def test_k_components_reconstruct_a_k_dimensional_subspace_exactly():
    images = subspace_images(350, 3)
    train, held_out = images[:300], images[300:]  # the same subspace; unseen images
    pca = PCABaseline(3).fit(train)
    assert pca.mse(held_out) < 1e-12  # float32 inputs: rounding only
    assert PCABaseline(2).fit(train).mse(held_out) > 1e-3
    assert torch.allclose(pca.reconstruct(held_out), held_out, atol=1e-5)
    assert pca.reconstruct(held_out).shape == held_out.shape


def test_error_decreases_with_k_to_zero():
    images = torch.randint(0, 256, (200, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    errors = [PCABaseline(k).fit(images).mse(images) for k in range(1, 17)]
    assert all(a > b for a, b in pairwise(errors))
    assert errors[-1] < 1e-20  # uint8 inputs are exact in float64


def test_training_error_is_the_discarded_eigenvalues_over_d():
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (100, 3, 3, 3), dtype=torch.uint8, generator=g)
    flat = images.flatten(1).double().numpy() / 255.0
    reference = np.linalg.eigvalsh(np.cov(flat, rowvar=False, bias=True))[::-1]  # divisor N, descending
    for k in (1, 5, 20):
        pca = PCABaseline(k).fit(images)
        np.testing.assert_allclose(pca.eigenvalues.numpy(), reference, rtol=1e-9, atol=1e-15)
        assert pca.mse(images) == pytest.approx(reference[k:].sum() / 27, rel=1e-9)
        assert pca.expected_training_mse() == pytest.approx(reference[k:].sum() / 27, rel=1e-9)


def test_two_pixel_example_by_hand():
    # On the [0, 1] scale: a=(.2,.2), b=(.8,.8), c=(.6,.4), d=(.4,.6); mean (.5,.5). Variance .09 along
    # (1,1)/sqrt2 (a, b at -+.3 sqrt2), .01 along (1,-1)/sqrt2 (c, d at +-.1 sqrt2). One component keeps
    # the diagonal: c and d fall onto the mean, an error of (.1^2 + .1^2) each, so (2 * .02) / (4 * 2)
    # = .005 per pixel = .01 / 2. A new point (.9,.3) projects to (.6,.6): error (.3^2 + .3^2) / 2 = .09.
    unit = torch.tensor([[0.2, 0.2], [0.8, 0.8], [0.6, 0.4], [0.4, 0.6]], dtype=torch.float64)
    images = (2 * unit - 1).view(4, 1, 1, 2)  # the float form: [-1, 1]
    pca = PCABaseline(1).fit(images)
    np.testing.assert_allclose(pca.eigenvalues.numpy(), [0.09, 0.01], atol=1e-12)
    assert abs(float(pca.components[0, 0] * pca.components[1, 0])) == pytest.approx(0.5)
    assert pca.mse(images) == pytest.approx(0.005)
    np.testing.assert_allclose(pca.reconstruct(images).view(4, 2).numpy(), [[-0.6, -0.6], [0.6, 0.6], [0, 0], [0, 0]],
                               atol=1e-6)  # fmt: skip
    new = torch.tensor([0.8, -0.4]).view(1, 1, 1, 2)  # (.9, .3) on the [0, 1] scale
    assert pca.mse(new) == pytest.approx(0.09)
    np.testing.assert_allclose(pca.reconstruct(new).flatten().numpy(), [0.2, 0.2], atol=1e-6)


def test_user_errors():
    with pytest.raises(GansError, match="at most 4"):
        PCABaseline(5).fit(torch.zeros(3, 1, 2, 2))
    with pytest.raises(GansError, match="fit"):
        PCABaseline(1).mse(torch.zeros(3, 1, 2, 2))
