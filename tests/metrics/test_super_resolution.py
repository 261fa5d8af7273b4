"""PSNR and SSIM as super-resolution papers report them, against scikit-image's functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from gans.metrics.super_resolution import ImageQuality, psnr, rgb_to_y, ssim


def pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 256, (3, 3, 30, 41), dtype=torch.uint8, generator=g)
    output = (target.float() + 25 * torch.randn(target.shape, generator=g)).round().clamp(0, 255).to(torch.uint8)
    return output, target


def hwc(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).numpy()


@pytest.mark.parametrize("border", [0, 4])
def test_y_channel_psnr_and_ssim_match_scikit_image(border):
    output, target = pair()
    ours_psnr, ours_ssim = psnr(output, target, "y", border), ssim(output, target, "y", border)
    crop = slice(border, -border if border else None)
    for i in range(len(output)):
        y_out = rgb2ycbcr(hwc(output[i]))[crop, crop, 0]  # MATLAB's rgb2ycbcr: Y in [16, 235], float
        y_ref = rgb2ycbcr(hwc(target[i]))[crop, crop, 0]
        assert ours_psnr[i].item() == pytest.approx(peak_signal_noise_ratio(y_ref, y_out, data_range=255), abs=1e-6)
        expected = structural_similarity(y_ref, y_out, data_range=255, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False)  # fmt: skip
        assert ours_ssim[i].item() == pytest.approx(expected, abs=1e-6)


def test_rgb_channel_option_matches_scikit_image():
    output, target = pair(1)
    for i in range(len(output)):
        o, t = hwc(output[i])[4:-4, 4:-4], hwc(target[i])[4:-4, 4:-4]
        assert psnr(output, target, "rgb")[i].item() == pytest.approx(peak_signal_noise_ratio(t, o), abs=1e-6)
        expected = structural_similarity(t, o, data_range=255, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, channel_axis=2)  # fmt: skip
        assert ssim(output, target, "rgb")[i].item() == pytest.approx(expected, abs=1e-6)


def test_y_is_bt601_and_the_border_matters():
    white, black = torch.full((1, 3, 1, 1), 255, dtype=torch.uint8), torch.zeros(1, 3, 1, 1, dtype=torch.uint8)
    assert rgb_to_y(white).item() == pytest.approx(235.0) and rgb_to_y(black).item() == pytest.approx(16.0)
    output, target = pair(2)
    output[..., :4, :] = target[..., :4, :]  # a perfect top border: cropping it lowers PSNR
    assert (psnr(output, target, border=4) < psnr(output, target, border=0)).all()
    with pytest.raises(TypeError, match="uint8"):
        psnr(output.float(), target.float())
    with pytest.raises(ValueError, match="channel"):
        ImageQuality(channel="luma")


def test_image_quality_is_the_mean_over_images():
    output, target = pair(3)
    metric = ImageQuality("y", 4)
    metric.update(output[:1], target[:1])
    metric.update(output[1:], target[1:])
    scores = metric.compute()
    assert scores["psnr"].item() == pytest.approx(psnr(output, target).mean().item(), abs=1e-4)
    assert scores["ssim"].item() == pytest.approx(ssim(output, target).mean().item(), abs=1e-6)
