"""Losses against hand computations on small tensors."""

import math

import pytest
import torch

from gans import losses


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


REAL, FAKE = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])


def test_bce_discriminator_is_minus_log_d_real_minus_log_one_minus_d_fake():
    expected = (
        -sum(math.log(sigmoid(r)) for r in REAL.tolist()) / 2 - sum(math.log(1 - sigmoid(f)) for f in FAKE.tolist()) / 2
    )
    assert losses.bce_discriminator_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_one_sided_label_smoothing_changes_only_real_targets():
    s = 0.1
    expected_real = -sum((1 - s) * math.log(sigmoid(r)) + s * math.log(1 - sigmoid(r)) for r in REAL.tolist()) / 2
    expected_fake = -sum(math.log(1 - sigmoid(f)) for f in FAKE.tolist()) / 2
    got = losses.bce_discriminator_loss(REAL, FAKE, smoothing=s).item()
    assert got == pytest.approx(expected_real + expected_fake, rel=1e-6)


def test_noisy_labels_stay_in_range_and_move_both_targets():
    torch.manual_seed(0)
    logits = torch.zeros(10_000)
    real, fake = losses.real_labels(logits, noise=0.2), losses.fake_labels(logits, noise=0.2)
    assert real.min() >= 0.8 and real.max() <= 1.0 and real.mean() == pytest.approx(0.9, abs=0.01)
    assert fake.min() >= 0.0 and fake.max() <= 0.2 and fake.mean() == pytest.approx(0.1, abs=0.01)


def test_generator_losses():
    ns = -sum(math.log(sigmoid(f)) for f in FAKE.tolist()) / 2
    mm = sum(math.log(1 - sigmoid(f)) for f in FAKE.tolist()) / 2
    assert losses.nonsaturating_generator_loss(FAKE).item() == pytest.approx(ns, rel=1e-6)
    assert losses.minimax_generator_loss(FAKE).item() == pytest.approx(mm, rel=1e-6)


def test_hinge():
    d = (max(0, 1 - 2.0) + max(0, 1 + 1.0)) / 2 + (max(0, 1 + 0.5) + max(0, 1 - 3.0)) / 2
    assert losses.hinge_discriminator_loss(REAL, FAKE).item() == pytest.approx(d)
    assert losses.hinge_generator_loss(FAKE).item() == pytest.approx(1.25)


def test_least_squares():
    d = 0.5 * (((2 - 1) ** 2 + (-1 - 1) ** 2) / 2 + (0.5**2 + 3.0**2) / 2)
    assert losses.least_squares_discriminator_loss(REAL, FAKE).item() == pytest.approx(d)
    assert losses.least_squares_generator_loss(FAKE).item() == pytest.approx(0.5 * ((0.5 - 1) ** 2 + 16) / 2)


def test_wasserstein():
    assert losses.wasserstein_discriminator_loss(REAL, FAKE).item() == pytest.approx(-1.25 - 0.5)
    assert losses.wasserstein_generator_loss(FAKE).item() == pytest.approx(1.25)


def test_gradient_penalty_of_linear_critic_is_known():
    # D(x) = <w, x>: grad = w everywhere, so the penalty is (||w|| - 1)^2 for any interpolate.
    w = torch.tensor([3.0, 4.0])
    critic = lambda x: x @ w
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    assert losses.gradient_penalty(critic, real, fake).item() == pytest.approx((5.0 - 1.0) ** 2)


def test_gradient_penalty_backpropagates_to_critic():
    critic = torch.nn.Linear(3, 1)
    gp = losses.gradient_penalty(lambda x: critic(x).squeeze(1), torch.randn(4, 3), torch.randn(4, 3))
    gp.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_reconstruction():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    assert losses.l1_loss(a, b).item() == pytest.approx(1.5)
    assert losses.mse_loss(a, b).item() == pytest.approx(2.5)
