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
    got = losses.bce_discriminator_loss(REAL, FAKE, real_label=(0.9, 0.9)).item()
    assert got == pytest.approx(expected_real + expected_fake, rel=1e-6)


def test_the_lectures_noisy_labels_span_their_ranges_unclamped():
    # Issue 7: the old label_noise clamped real targets to [0, 1], so [0.7, 1.2] was impossible.
    torch.manual_seed(0)
    logits = torch.zeros(20_000)
    real, fake = losses.target_labels(logits, 0.7, 1.2), losses.target_labels(logits, 0.0, 0.3)
    assert 0.7 <= real.min() < 0.71 and 1.19 < real.max() <= 1.2 and real.mean() == pytest.approx(0.95, abs=0.01)
    assert (real > 1.0).float().mean() == pytest.approx(0.4, abs=0.02)
    assert 0.0 <= fake.min() < 0.01 and 0.29 < fake.max() <= 0.3
    with pytest.raises(ValueError, match="low <= high"):
        losses.target_labels(logits, 1.0, 0.5)


def test_bce_with_a_target_above_one_is_the_cross_entropy_formula():
    # t = 1.2 on logit x: -(t log s(x) + (1 - t) log(1 - s(x))), which still rewards a higher logit.
    x = torch.tensor([0.5])
    got = losses.bce_discriminator_loss(x, torch.tensor([-20.0]), real_label=(1.2, 1.2)).item()
    expected = -(1.2 * math.log(sigmoid(0.5)) - 0.2 * math.log(1 - sigmoid(0.5))) + math.log1p(math.exp(-20.0))
    assert got == pytest.approx(expected, rel=1e-5)


def test_label_flipping_swaps_whole_pairs_at_the_given_rate():
    torch.manual_seed(0)
    real, fake = torch.ones(20_000), torch.zeros(20_000)
    flipped_real, flipped_fake = losses.flip_labels(real, fake, 0.1)
    assert torch.equal(flipped_real + flipped_fake, torch.ones(20_000))  # a pair swaps both targets
    assert (flipped_real == 0).float().mean() == pytest.approx(0.1, abs=0.01)
    assert losses.flip_labels(real, fake, 0.0) == (real, fake)
    # In the loss: flipping every pair is BCE with the roles exchanged.
    swapped = losses.bce_discriminator_loss(REAL, FAKE, real_label=(0.0, 0.0), fake_label=(1.0, 1.0))
    assert losses.bce_discriminator_loss(REAL, FAKE, flip=1.0).item() == pytest.approx(swapped.item())


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


def test_interpolates_draw_one_alpha_per_sample_on_the_segment():
    torch.manual_seed(0)
    real, fake = torch.randn(6, 3, 4, 4), torch.randn(6, 3, 4, 4)
    x_hat = losses.interpolates(real, fake)
    # x_hat - fake = alpha (real - fake) with a single alpha in [0, 1] per sample: shape [B, 1, 1, 1].
    alpha = ((x_hat - fake) / (real - fake)).flatten(1)
    assert torch.allclose(alpha, alpha[:, :1].expand_as(alpha), atol=1e-4)
    assert ((alpha >= 0) & (alpha <= 1)).all() and alpha[:, 0].unique().numel() == 6
    assert not x_hat.requires_grad


def test_gradient_penalty_of_linear_critic_is_known():
    # D(x) = <w, x>: grad = w everywhere, so the penalty is (||w|| - 1)^2 for any interpolate.
    w = torch.tensor([3.0, 4.0])
    critic = lambda x: x @ w
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    assert losses.gradient_penalty(critic, real, fake).item() == pytest.approx((5.0 - 1.0) ** 2)


def test_gradient_penalty_norm_is_over_the_whole_flattened_sample():
    # D(x) = sum(w * x) over (C, H, W): the gradient is w, its norm over all of w's entries, not per
    # channel or per row; a hand computation on a per-sample-scaled critic checks the mean over samples.
    torch.manual_seed(0)
    w = torch.randn(2, 3, 3)
    scale = torch.tensor([1.0, 2.0, 0.5])
    critic = lambda x: (x * w).flatten(1).sum(1) * scale
    real, fake = torch.randn(3, 2, 3, 3), torch.randn(3, 2, 3, 3)
    norms = scale * w.flatten().norm()
    expected = ((norms - 1.0) ** 2).mean()
    assert losses.gradient_penalty(critic, real, fake).item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_penalty_with_a_loss_scale_is_unchanged():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    score = lambda x: critic(x).squeeze(1)
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    torch.manual_seed(1)
    plain = losses.gradient_penalty(score, real, fake)
    torch.manual_seed(1)
    scaled = losses.gradient_penalty(score, real, fake, loss_scale=65536.0)
    assert scaled.item() == pytest.approx(plain.item(), rel=1e-5)


def test_gradient_penalty_backpropagates_to_critic():
    critic = torch.nn.Linear(3, 1)
    gp = losses.gradient_penalty(lambda x: critic(x).squeeze(1), torch.randn(4, 3), torch.randn(4, 3))
    gp.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_reconstruction():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    assert losses.l1_loss(a, b).item() == pytest.approx(1.5)
    assert losses.mse_loss(a, b).item() == pytest.approx(2.5)


# -- the VAE's terms against torch.distributions ------------------------------------------------------
def test_gaussian_kl_is_the_kl_to_the_standard_normal():
    from torch.distributions import Normal, kl_divergence

    mean, log_var = torch.randn(3, 4), torch.randn(3, 4)
    expected = kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(losses.gaussian_kl(mean, log_var), expected)
    assert losses.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0


def test_bernoulli_and_gaussian_nll_are_the_negative_log_likelihoods_summed_over_pixels():
    from torch.distributions import Bernoulli, Normal

    logits, target = torch.randn(2, 1, 3, 3), torch.randint(0, 2, (2, 1, 3, 3)).float()
    expected = -Bernoulli(logits=logits).log_prob(target).flatten(1).sum(1)
    torch.testing.assert_close(losses.bernoulli_nll(logits, target), expected)
    mean, x = torch.rand(2, 1, 3, 3), torch.rand(2, 1, 3, 3)
    expected = -Normal(mean, 0.1).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(losses.gaussian_nll(mean, x, math.log(0.1)), expected)


def test_drift_penalty_is_the_mean_squared_real_score():
    assert losses.drift_penalty(torch.tensor([1.0, -3.0])).item() == pytest.approx(5.0)
