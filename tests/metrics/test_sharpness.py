"""Sharpness measures: hand computations, zero for constant images, lower after a Gaussian blur,
and RGB through luma."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms.functional import gaussian_blur

from gans.errors import GansError
from gans.metrics.sharpness import grey, high_frequency_fraction, laplacian_variance, sharpness


def test_laplacian_variance_by_hand():
    # One white pixel at (1, 1) of a black 4x4 image; the valid Laplacian positions (1,1), (1,2),
    # (2,1), (2,2) read -4, 1, 1, 0: mean -0.5, variance (3.5^2 + 1.5^2 + 1.5^2 + 0.5^2) / 4 = 4.25.
    image = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    image[0, 0, 1, 1] = 255
    assert laplacian_variance(image).tolist() == pytest.approx([4.25])


def test_high_frequency_fraction_by_hand():
    # 0.5 + 0.25 cos(2 pi j / 8) + 0.125 (-1)^(i+j) on 8x8: the cosine (1/8 cycle per pixel, a quarter
    # of Nyquist) carries 64 * 0.25^2 / 2 = 2 of the power (Parseval, up to the same factor), the
    # checkerboard (at Nyquist) 64 * 0.125^2 = 1, orthogonal to it: 1 / 3 above half Nyquist.
    i, j = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    unit = 0.5 + 0.25 * torch.cos(2 * math.pi * j / 8) + 0.125 * (-1.0) ** (i + j)
    image = (2 * unit - 1).view(1, 1, 8, 8)  # the [-1, 1] float form
    assert high_frequency_fraction(image).tolist() == pytest.approx([1 / 3], abs=1e-6)
    checkerboard = (2 * (0.5 + 0.5 * (-1.0) ** (i + j)) - 1).view(1, 1, 8, 8)
    assert high_frequency_fraction(checkerboard).tolist() == pytest.approx([1.0])


def test_constant_images_score_zero():
    images = torch.stack([torch.full((1, 28, 28), v, dtype=torch.uint8) for v in (0, 100, 255)])
    assert laplacian_variance(images).tolist() == [0.0, 0.0, 0.0]
    assert high_frequency_fraction(images).tolist() == [0.0, 0.0, 0.0]
    assert sharpness(images) == {"laplacian_variance": 0.0, "high_frequency": 0.0}


def test_blurred_images_are_less_sharp_under_both_measures():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 1, 28, 28, generator=g) * 2 - 1
    images[:3] = torch.where(images[:3] > 0, 1.0, -1.0)  # hard-edged ones too
    blurred = gaussian_blur(images, kernel_size=5, sigma=1.0)
    assert (laplacian_variance(blurred) < 0.5 * laplacian_variance(images)).all()
    assert (high_frequency_fraction(blurred) < 0.5 * high_frequency_fraction(images)).all()
    sharp, soft = sharpness(images, chunk=4), sharpness(blurred, chunk=4)  # chunks of unequal size
    assert soft["laplacian_variance"] < sharp["laplacian_variance"]
    assert soft["high_frequency"] < sharp["high_frequency"]


def test_rgb_is_read_through_luma():
    g = torch.Generator().manual_seed(1)
    single = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8, generator=g)
    assert torch.allclose(grey(single.expand(-1, 3, -1, -1)), grey(single), atol=1e-6)
    red = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    red[:, 0] = 255
    assert torch.allclose(grey(red), torch.full((1, 2, 2), 0.299))
    with pytest.raises(GansError, match="N, 1 or 3, H, W"):
        grey(torch.zeros(1, 2, 4, 4))
