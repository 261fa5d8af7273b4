"""Adversarial and reconstruction losses, as small functions of discriminator outputs.

Every discriminator loss takes the logits (raw scores) on real and on generated samples; every
generator loss takes the scores on generated samples. Sigmoids live inside the BCE losses
(`binary_cross_entropy_with_logits`) for numerical stability and mixed-precision safety.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def real_labels(logits: Tensor, smoothing: float = 0.0, noise: float = 0.0) -> Tensor:
    """Targets for real samples: 1 - `smoothing` (one-sided label smoothing, Salimans et al. 2016),
    optionally jittered by uniform noise of width `noise` (noisy labels), clamped to [0, 1]."""
    target = torch.full_like(logits, 1.0 - smoothing)
    if noise > 0:
        target = (target - noise * torch.rand_like(logits)).clamp_(0.0, 1.0)
    return target


def fake_labels(logits: Tensor, noise: float = 0.0) -> Tensor:
    """Targets for generated samples: 0, optionally raised by uniform noise of width `noise`.
    Smoothing is one-sided: fake targets stay at 0 (Salimans et al. 2016, sec. 3.4)."""
    target = torch.zeros_like(logits)
    if noise > 0:
        target = target + noise * torch.rand_like(logits)
    return target


def bce_discriminator_loss(
    real_logits: Tensor, fake_logits: Tensor, smoothing: float = 0.0, noise: float = 0.0
) -> Tensor:
    """Goodfellow et al. 2014, eq. 1 for D: -log D(x) - log(1 - D(G(z))), averaged."""
    real = F.binary_cross_entropy_with_logits(real_logits, real_labels(real_logits, smoothing, noise))
    fake = F.binary_cross_entropy_with_logits(fake_logits, fake_labels(fake_logits, noise))
    return real + fake


def minimax_generator_loss(fake_logits: Tensor) -> Tensor:
    """Goodfellow et al. 2014, eq. 1 for G: minimise log(1 - D(G(z))). Saturates early in training."""
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def nonsaturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """Goodfellow et al. 2014, sec. 3: maximise log D(G(z)) instead, for strong early gradients."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Lim & Ye 2017; Miyato et al. 2018: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    """Lim & Ye 2017: -E[D(G(z))]."""
    return -fake_logits.mean()


def least_squares_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Mao et al. 2017 (LSGAN), a=0, b=c=1: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]."""
    return 0.5 * ((real_logits - 1.0).square().mean() + fake_logits.square().mean())


def least_squares_generator_loss(fake_logits: Tensor) -> Tensor:
    """Mao et al. 2017 (LSGAN): 1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * (fake_logits - 1.0).square().mean()


def wasserstein_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Arjovsky et al. 2017: the critic maximises E[D(x)] - E[D(G(z))], so it minimises the negative."""
    return fake_logits.mean() - real_logits.mean()


def wasserstein_generator_loss(fake_logits: Tensor) -> Tensor:
    """Arjovsky et al. 2017: -E[D(G(z))]."""
    return -fake_logits.mean()


def gradient_penalty(critic, real: Tensor, fake: Tensor, *critic_args) -> Tensor:
    """Gulrajani et al. 2017 (WGAN-GP), eq. 3: E[(||grad D(x_hat)||_2 - 1)^2] on random
    interpolates x_hat = eps x + (1 - eps) G(z). Multiply by lambda (10 in the paper) outside."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    interpolates = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(interpolates, *critic_args)
    (grads,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    return (grads.flatten(1).norm(2, dim=1) - 1.0).square().mean()


def l1_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error; the reconstruction term of Pix2pix (Isola et al. 2017) and CycleGAN."""
    return F.l1_loss(output, target)


def mse_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error; a Gaussian-likelihood reconstruction term (autoencoders)."""
    return F.mse_loss(output, target)
