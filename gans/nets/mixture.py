"""A Gaussian mixture over codes, fit by EM after training: the "ex-post density estimation" of
Ghosh et al. 2020 ("From Variational to Deterministic Autoencoders", sec. 4), which gives an
autoencoder (no prior of its own) a distribution to sample from, and a VAE a closer fit to its
aggregate posterior than N(0, I). The paper fits 10 components with full covariances.

Its parameters are buffers, so a checkpoint carries the mixture fit at its iteration, loads with
`weights_only=True`, and DDP processes receive rank 0's with the other buffers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GaussianMixture(nn.Module):
    """K full-covariance Gaussians over d-dimensional codes.

    Args:
        dim: the codes' size d.
        components: K (10, as Ghosh et al. 2020).
        reg_covar: added to every covariance's diagonal, relative to the codes' mean variance,
            so a component on a few points stays positive definite.
    """

    def __init__(self, dim: int, components: int = 10, reg_covar: float = 1e-6) -> None:
        super().__init__()
        if components < 1:
            raise ValueError(f"a mixture needs at least one component, got {components}")
        self.dim, self.components, self.reg_covar = dim, components, reg_covar
        self.register_buffer("weights", torch.full((components,), 1.0 / components))
        self.register_buffer("means", torch.zeros(components, dim))
        self.register_buffer("scale_tril", torch.eye(dim).repeat(components, 1, 1))
        # The training iteration the mixture was fit at; -1: never fit.
        self.register_buffer("fitted_at", torch.tensor(-1, dtype=torch.int64))

    @property
    def fitted(self) -> bool:
        return int(self.fitted_at) >= 0

    # -- sampling -------------------------------------------------------------------------------
    def transform(self, eps: Tensor, u: Tensor) -> Tensor:
        """Codes from standard normal eps (N, d) and uniform u (N,) in [0, 1): the component k
        with u in its slice of the cumulative weights, then means_k + L_k eps. A sample of the
        mixture that depends only on its noise, so fixed grid and evaluation noise give fixed codes."""
        cumulative = self.weights.float().cumsum(0)
        k = torch.searchsorted(cumulative, u.float().contiguous() * cumulative[-1], right=True)
        k = k.clamp_(max=self.components - 1)
        return self.means[k] + (self.scale_tril[k] @ eps.float().unsqueeze(-1)).squeeze(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        device = self.means.device
        eps = torch.randn(n, self.dim, generator=generator, device=device)
        return self.transform(eps, torch.rand(n, generator=generator, device=device))

    def log_prob(self, codes: Tensor) -> Tensor:
        """log p(code) under the mixture, (N,)."""
        return self._joint_log_prob(codes.to(self.means.dtype), self.weights, self.means, self.scale_tril).logsumexp(1)

    @staticmethod
    def _joint_log_prob(x: Tensor, weights: Tensor, means: Tensor, scale_tril: Tensor) -> Tensor:
        """log w_k + log N(x_n; mu_k, L_k L_k^T) for every point and component, (N, K)."""
        diff = x.unsqueeze(1) - means.unsqueeze(0)  # N, K, d
        # Solve L_k y = diff_k for each component: the squared Mahalanobis distance is |y|^2.
        y = torch.linalg.solve_triangular(scale_tril.unsqueeze(0), diff.unsqueeze(-1), upper=False).squeeze(-1)
        log_det = scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # log |L_k| = half log |Sigma_k|
        d = x.shape[1]
        return weights.log() - 0.5 * y.pow(2).sum(-1) - log_det - 0.5 * d * math.log(2 * math.pi)

    # -- fitting --------------------------------------------------------------------------------
    @torch.no_grad()
    def fit(self, codes: Tensor, iteration: int = 0, generator: torch.Generator | None = None,
            max_steps: int = 100, tol: float = 1e-4) -> int:  # fmt: skip
        """Fit by EM (Dempster, Laird & Rubin 1977) from a k-means++ start (Arthur & Vassilvitskii
        2007), in float64 on the CPU (a few thousand codes of a few dozen dimensions), until the
        mean log-likelihood gains less than `tol` nats; store the result and `iteration`.
        `generator` (a CPU one) seeds the start. Returns the EM steps taken."""
        x = codes.detach().to("cpu", torch.float64)
        n, d = x.shape
        if d != self.dim:
            raise ValueError(f"codes of size {d} for a mixture over {self.dim} dimensions")
        k = min(self.components, n)
        reg = self.reg_covar * max(float(x.var(0).mean()), 1e-12) * torch.eye(d, dtype=x.dtype, device=x.device)
        means = _kmeans_plus_plus(x, k, generator)
        resp = torch.nn.functional.one_hot(torch.cdist(x, means).argmin(1), k).to(x.dtype)
        previous, steps = -math.inf, 0
        for steps in range(1, max_steps + 1):
            weights, means, scale_tril = _maximisation(x, resp, reg)
            joint = self._joint_log_prob(x, weights, means, scale_tril)
            mean_log_likelihood = float(joint.logsumexp(1).mean())
            resp = joint.softmax(1)
            if mean_log_likelihood - previous < tol:
                break
            previous = mean_log_likelihood
        pad = self.components - k  # fewer codes than components: the spare ones get no weight
        self.weights.copy_(torch.cat([weights, weights.new_zeros(pad)]))
        self.means.copy_(torch.cat([means, means[:1].expand(pad, -1)]))
        self.scale_tril.copy_(torch.cat([scale_tril, scale_tril[:1].expand(pad, -1, -1)]))
        self.fitted_at.fill_(iteration)
        return steps


def _maximisation(x: Tensor, resp: Tensor, reg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The M step: weights, means and Cholesky factors of the covariances from responsibilities."""
    counts = resp.sum(0) + 10 * torch.finfo(x.dtype).eps
    weights = counts / len(x)
    means = resp.T @ x / counts.unsqueeze(1)
    factors = []
    for k in range(len(counts)):
        diff = x - means[k]
        covariance = (resp[:, k, None] * diff).T @ diff / counts[k] + reg
        factors.append(torch.linalg.cholesky(covariance))
    return weights, means, torch.stack(factors)


def _kmeans_plus_plus(x: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """k starting means, each drawn with probability proportional to its squared distance from
    the nearest one already chosen."""
    centres = [x[torch.randint(len(x), (1,), generator=generator)]]
    nearest = torch.cdist(x, centres[0]).squeeze(1).pow(2)
    for _ in range(1, k):
        if nearest.sum() > 0:
            chosen = torch.multinomial(nearest / nearest.sum(), 1, generator=generator)
        else:  # every point is a centre already
            chosen = torch.randint(len(x), (1,), generator=generator)
        centres.append(x[chosen])
        nearest = torch.minimum(nearest, torch.cdist(x, centres[-1]).squeeze(1).pow(2))
    return torch.cat(centres)
