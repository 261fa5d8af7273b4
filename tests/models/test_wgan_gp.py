"""WGAN-GP (Gulrajani et al. 2017): the critic loss with its penalty by hand, the penalty's
gradient under the base's toggling and under mixed precision, and a 1-D critic that learns the
known optimum (gradient norm 1 between the distributions, Proposition 1)."""

import functools

import pytest
import torch
from torch import nn

from gans import losses
from gans.errors import GansError
from gans.models.wgan_gp import WGANGP
from gans.nets.dcgan import Discriminator, Generator

adam = functools.partial(torch.optim.Adam, lr=1e-4, betas=(0.0, 0.9))


def make_wgan_gp(**kwargs) -> WGANGP:
    torch.manual_seed(0)
    kwargs.setdefault("eval_fid", False)
    g, d = Generator(16, 16, 1, width=8), Discriminator(16, 1, width=8, norm="layer")
    return WGANGP(g, d, adam, adam, n_critic=5, **kwargs)


def test_critic_loss_is_wasserstein_plus_lambda_times_the_penalty():
    model = make_wgan_gp(gp_weight=10.0)
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    torch.manual_seed(3)
    loss, stats = model.discriminator_loss({"image": real})
    torch.manual_seed(3)
    fake = model.generator(torch.randn(4, 16))
    d = model.discriminator
    critic = d(fake).mean() - d(real).mean()
    # The penalty by hand: the same alphas (drawn next from the same seed), the gradient of D at each
    # interpolate from autograd on one sample at a time, its norm over all of C x H x W.
    alpha = torch.rand(4, 1, 1, 1)
    penalties = []
    for i in range(4):
        x = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i]).detach().unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(d(x).sum(), x)
        penalties.append((grad.flatten().norm() - 1) ** 2)
    expected = critic + 10.0 * torch.stack(penalties).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    assert stats["gradient_penalty"].item() == pytest.approx(torch.stack(penalties).mean().item(), rel=1e-4)


def test_the_penalty_reaches_the_critic_under_the_bases_gradient_toggling():
    # The base turns requires_grad off for the generator during the critic's step; the critic's
    # gradient (penalty included, through create_graph) must be what it is without toggling.
    model = make_wgan_gp()
    batch = {"image": torch.rand(4, 1, 16, 16) * 2 - 1}

    def critic_gradients(toggle: bool) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        model.generator.requires_grad_(not toggle)
        torch.manual_seed(5)
        loss, _ = model.discriminator_loss(batch)
        loss.backward()
        assert all(p.grad is None for p in model.generator.parameters()) or not toggle
        return [p.grad.clone() for p in model.discriminator.parameters()]

    toggled, plain = critic_gradients(True), critic_gradients(False)
    model.generator.requires_grad_(True)
    for a, b in zip(toggled, plain):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-8)
    # and the penalty term contributes: without it the gradient differs
    model.gp_weight = 1e-12
    assert not all(torch.allclose(a, b) for a, b in zip(critic_gradients(True), toggled))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_penalty_under_autocast_matches_float32(dtype):
    torch.manual_seed(0)
    critic = Discriminator(16, 1, width=8, norm="layer")
    real, fake = torch.rand(8, 1, 16, 16) * 2 - 1, torch.rand(8, 1, 16, 16) * 2 - 1
    torch.manual_seed(1)
    exact = losses.gradient_penalty(critic, real, fake)
    scale = 65536.0 if dtype is torch.float16 else None  # fp16: the GradScaler's scale
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=dtype):
        mixed = losses.gradient_penalty(critic, real, fake, loss_scale=scale)
    assert mixed.dtype == torch.float32
    assert mixed.item() == pytest.approx(exact.item(), rel=0.05)


def test_a_1d_critic_learns_the_known_optimum_of_the_penalised_objective():
    # Real samples at +1, generated at -1 (W1 = 2). A critic of slope k on the segment between them
    # scores E[D(x)] - E[D(G(z))] = 2k and pays lambda (k - 1)^2 on every interpolate, so the
    # penalised optimum is k* = 1 + 1/lambda: gradient norm 1.1 for lambda = 10 (Gulrajani et al.
    # 2017, Proposition 1 is the hard-constraint limit k = 1), and the estimate 2 k* = 2.2.
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    score = lambda x: critic(x).squeeze(1)
    optimizer = torch.optim.Adam(critic.parameters(), lr=3e-3, betas=(0.0, 0.9))
    real, fake = torch.ones(64, 1), -torch.ones(64, 1)
    for _ in range(2000):
        loss = losses.wasserstein_discriminator_loss(score(real), score(fake))
        loss = loss + 10.0 * losses.gradient_penalty(score, real, fake)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x = torch.linspace(-0.9, 0.9, 19).unsqueeze(1).requires_grad_(True)
    (grad,) = torch.autograd.grad(score(x).sum(), x)
    assert grad.abs().sub(1.1).abs().max() < 0.05
    estimate = (score(real).mean() - score(fake).mean()).item()
    assert estimate == pytest.approx(2.2, abs=0.05)


def test_clip_value_and_gp_weight_are_checked():
    with pytest.raises(GansError, match="WGAN-GP keeps the critic Lipschitz by the gradient penalty"):
        make_wgan_gp(clip_value=0.01)
    with pytest.raises(GansError, match=r"model.gp_weight=-1 must be a positive number"):
        make_wgan_gp(gp_weight=-1)
