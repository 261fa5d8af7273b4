"""StackGAN's networks: the conditioning augmentation's KL against a hand computation, and the
sides each stage draws and judges."""

from __future__ import annotations

import math

import pytest
import torch

from gans.errors import GansError
from gans.nets.stackgan import (
    ConditioningAugmentation,
    StackGANDiscriminator,
    Stage1Generator,
    Stage2Generator,
    kl_divergence,
)


def test_kl_of_the_conditioning_augmentation_matches_a_hand_computation():
    mu = torch.tensor([[0.5, -1.0]])
    log_sigma = torch.tensor([[0.0, math.log(2.0)]])
    # Per dimension: -log sigma + (sigma^2 + mu^2 - 1) / 2 -> 0.125 and -ln 2 + 2; their mean.
    by_hand = (0.125 + (2.0 - math.log(2.0))) / 2
    assert kl_divergence(mu, log_sigma).item() == pytest.approx(by_hand, rel=1e-6)
    closed_form = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, log_sigma.exp()), torch.distributions.Normal(0.0, 1.0)
    )
    assert kl_divergence(mu, log_sigma).item() == pytest.approx(closed_form.mean().item(), rel=1e-6)
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_conditioning_augmentation_draws_c_around_mu_with_sigma():
    augment = ConditioningAugmentation(embedding_dim=6, condition_dim=3)
    text = torch.randn(2, 6)
    torch.manual_seed(0)
    c, mu, log_sigma = augment(text)
    torch.manual_seed(0)
    eps = torch.randn(2, 3)
    assert torch.allclose(c, mu + log_sigma.exp() * eps)
    assert torch.allclose(torch.cat([mu, log_sigma], 1), augment.fc(text))


def test_stage_one_draws_the_low_side_and_stage_two_refines_it_to_scale_times():
    text, z = torch.randn(3, 8), torch.randn(3, 10)
    g0 = Stage1Generator(embedding_dim=8, image_size=16, channels=1, latent_dim=10, condition_dim=4, width=4)
    low, mu, _ = g0(z, text)
    assert low.shape == (3, 1, 16, 16) and mu.shape == (3, 4) and low.abs().max() <= 1
    for scale in (2, 4):
        g1 = Stage2Generator(embedding_dim=8, image_size=16 * scale, scale=scale, channels=1, condition_dim=4, width=4)
        assert g1(low, text)[0].shape == (3, 1, 16 * scale, 16 * scale)
        d1 = StackGANDiscriminator(embedding_dim=8, image_size=16 * scale, channels=1, condition_dim=4, width=4)
        assert d1(torch.randn(3, 1, 16 * scale, 16 * scale), text).shape == (3,)
    with pytest.raises(GansError, match="scale=3"):
        Stage2Generator(embedding_dim=8, image_size=48, scale=3)
