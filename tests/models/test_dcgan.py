"""DCGAN's losses as the paper states them, and its options."""

import pytest
import torch

from gans import losses
from tests.models.test_base import make_model


def test_losses_match_the_gan_objective():
    model = make_model()
    batch = {"image": torch.rand(6, 1, 16, 16) * 2 - 1}
    torch.manual_seed(1)
    d_loss, stats = model.discriminator_loss(batch)
    torch.manual_seed(1)
    fake = model.generator(torch.randn(6, 16))
    expected = losses.bce_discriminator_loss(model.discriminator(batch["image"]), model.discriminator(fake))
    assert d_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert 0 < stats["D(x)"] < 1 and 0 < stats["D(G(z))"] < 1
    torch.manual_seed(2)
    g_loss, _ = model.generator_loss(batch)
    torch.manual_seed(2)
    fake_logits = model.discriminator(model.generator(torch.randn(6, 16)))
    assert g_loss.item() == pytest.approx(losses.nonsaturating_generator_loss(fake_logits).item(), rel=1e-5)


def test_minimax_objective_and_unknown_objective():
    assert make_model(generator_objective="minimax").generator_objective is losses.minimax_generator_loss
    with pytest.raises(ValueError, match="generator_objective must be one of"):
        make_model(generator_objective="wasserstein")
