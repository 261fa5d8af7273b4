"""Adversarial and reconstruction losses, as small functions of discriminator outputs.

Every discriminator loss takes the logits (raw scores) on real and on generated samples; every
generator loss takes the scores on generated samples. Sigmoids live inside the BCE losses
(`binary_cross_entropy_with_logits`) for numerical stability and mixed-precision safety.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def target_labels(logits: Tensor, low: float, high: float) -> Tensor:
    """BCE targets drawn uniformly from [low, high], one per logit; a constant when low == high.

    The hard targets of Goodfellow et al. 2014 are (1, 1) for real and (0, 0) for generated
    samples; one-sided label smoothing (Salimans et al. 2016, sec. 3.4) is a real target of
    (0.9, 0.9); the course lecture's noisy labels draw real targets from [0.7, 1.2] and generated
    ones from [0, 0.3]. Targets above 1 are kept (not clamped): with logits, BCE is still the
    cross-entropy t * softplus(-x) + (1 - t) * softplus(x), minimised at sigmoid(x) = t for t in
    [0, 1] and pushing the logit ever higher for t > 1, which is the trick's intent."""
    if low > high:
        raise ValueError(f"a label range must have low <= high, got [{low}, {high}]")
    if low == high:
        return torch.full_like(logits, float(low))
    return torch.empty_like(logits).uniform_(float(low), float(high))


def flip_labels(real_target: Tensor, fake_target: Tensor, probability: float) -> tuple[Tensor, Tensor]:
    """Swap the real and generated targets of a random fraction `probability` of the pairs
    (occasional label flipping, one of the tricks practitioners add to noisy labels, e.g. the
    "ganhacks" list of Chintala et al. 2016): the discriminator is told, now and then, the wrong
    answer, which keeps it from becoming over-confident."""
    if probability <= 0:
        return real_target, fake_target
    flip = torch.rand_like(real_target) < probability
    return torch.where(flip, fake_target, real_target), torch.where(flip, real_target, fake_target)


def bce_discriminator_loss(
    real_logits: Tensor,
    fake_logits: Tensor,
    real_label: tuple[float, float] = (1.0, 1.0),
    fake_label: tuple[float, float] = (0.0, 0.0),
    flip: float = 0.0,
) -> Tensor:
    """Goodfellow et al. 2014, eq. 1 for D: -log D(x) - log(1 - D(G(z))), averaged; targets drawn
    from the `real_label` and `fake_label` ranges (`target_labels`), a fraction `flip` swapped."""
    real_target, fake_target = target_labels(real_logits, *real_label), target_labels(fake_logits, *fake_label)
    if flip > 0:
        if real_target.shape != fake_target.shape:
            raise ValueError("label flipping pairs real and generated targets: the batches must be of one size")
        real_target, fake_target = flip_labels(real_target, fake_target, flip)
    real = F.binary_cross_entropy_with_logits(real_logits, real_target)
    fake = F.binary_cross_entropy_with_logits(fake_logits, fake_target)
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


def interpolates(real: Tensor, fake: Tensor) -> Tensor:
    """Gulrajani et al. 2017, Algorithm 1: x_hat = eps x + (1 - eps) x_tilde with one eps ~ U[0, 1]
    per sample (shape [B, 1, 1, 1] for images), so x_hat lies on the line between a real and a
    generated sample; gradients flow to neither (the penalty acts on the critic only). Under
    autocast G(z) may be bf16/fp16 while x is float32: x_hat is float32."""
    real, fake = real.detach().float(), fake.detach().float()
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    return torch.lerp(fake, real, eps)


def gradient_penalty(critic, real: Tensor, fake: Tensor, *critic_args, loss_scale: float | None = None) -> Tensor:
    """Gulrajani et al. 2017 (WGAN-GP), eq. 3: E[(||grad_x D(x_hat)||_2 - 1)^2] over random
    interpolates x_hat, the norm over each whole flattened sample. Multiply by lambda (10 in the
    paper) outside. `create_graph` lets the penalty's own gradient reach the critic's weights.

    Mixed precision: the gradient w.r.t. the input is taken here, outside the loss scaler. Under
    fp16 pass `loss_scale` (the GradScaler's current scale): the mean score is scaled before
    differentiating, as the loss is, so small input gradients do not flush to zero in half
    precision (and, the mean dividing by the batch, large ones do not overflow), then the
    gradients are scaled back. The norm and the penalty are computed in float32."""
    x_hat = interpolates(real, fake).requires_grad_(True)
    scores = critic(x_hat, *critic_args).float()
    if loss_scale is None:
        (grads,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    else:
        (grads,) = torch.autograd.grad(scores.mean() * loss_scale, x_hat, create_graph=True)
        grads = grads * (len(scores) / loss_scale)
    grads = grads.float()
    return (grads.flatten(1).norm(2, dim=1) - 1.0).square().mean()


def l1_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error; the reconstruction term of Pix2pix (Isola et al. 2017) and CycleGAN."""
    return F.l1_loss(output, target)


def mse_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error; a Gaussian-likelihood reconstruction term (autoencoders)."""
    return F.mse_loss(output, target)


# -- the variational autoencoder's terms (Kingma & Welling 2014), in nats per image ------------------
def gaussian_kl(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mean, diag exp(log_var)) || N(0, I)) per sample, (N,): Kingma & Welling 2014, appendix
    B, -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2), in float32 under autocast."""
    mean, log_var = mean.float(), log_var.float()
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).flatten(1).sum(1)


def bernoulli_nll(logits: Tensor, target: Tensor) -> Tensor:
    """-log p(x | z) per sample, (N,), of a Bernoulli decoder with these logits, summed over pixels;
    a proper likelihood for binary targets only."""
    nll = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return nll.flatten(1).sum(1)


def gaussian_nll(mean: Tensor, target: Tensor, log_scale: Tensor | float) -> Tensor:
    """-log N(x; mean, sigma^2 I) per sample, (N,), summed over pixels, with log sigma `log_scale`
    (one number for all pixels, Dai & Wipf 2019)."""
    log_scale = torch.as_tensor(log_scale, dtype=torch.float32, device=mean.device)
    squared = (target.float() - mean.float()).square() * torch.exp(-2.0 * log_scale)
    per_pixel = 0.5 * squared + log_scale + 0.5 * math.log(2.0 * math.pi)
    return per_pixel.flatten(1).sum(1)


def drift_penalty(real_logits: Tensor) -> Tensor:
    """E[D(x)^2]: ProGAN's drift term (Karras et al. 2018, appendix A.1, weighted by 0.001 there),
    added to the WGAN-GP critic loss to keep the critic's output near zero."""
    return real_logits.float().square().mean()
