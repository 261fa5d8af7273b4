"""The ex-post Gaussian mixture (Ghosh et al. 2020): EM recovers a known mixture, its sampler
follows the weights and covariances, its density is the mixture's, and it is deterministic."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from gans.nets.mixture import GaussianMixture

MEANS = torch.tensor([[4.0, 0.0], [-4.0, 1.0]])
COVARIANCES = torch.tensor([[[0.25, 0.1], [0.1, 0.5]], [[1.0, -0.3], [-0.3, 0.2]]])
WEIGHTS = torch.tensor([0.7, 0.3])


def two_gaussians(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    counts = [int(n * w) for w in WEIGHTS]
    parts = [torch.randn(c, 2, generator=g) @ torch.linalg.cholesky(cov).T + mean
             for c, mean, cov in zip(counts, MEANS, COVARIANCES)]  # fmt: skip
    return torch.cat(parts)


def fitted(n: int = 4000, components: int = 2, seed: int = 1) -> GaussianMixture:
    mixture = GaussianMixture(2, components)
    mixture.fit(two_gaussians(n), iteration=7, generator=torch.Generator().manual_seed(seed))
    return mixture


def test_em_recovers_the_weights_means_and_covariances_of_a_known_mixture():
    mixture = fitted()
    order = mixture.means[:, 0].argsort(descending=True)  # component 0 is the one at x = +4
    covariances = mixture.scale_tril @ mixture.scale_tril.transpose(1, 2)
    torch.testing.assert_close(mixture.weights[order], WEIGHTS, atol=0.01, rtol=0)
    torch.testing.assert_close(mixture.means[order], MEANS, atol=0.08, rtol=0)
    torch.testing.assert_close(covariances[order], COVARIANCES, atol=0.08, rtol=0)
    assert mixture.fitted and int(mixture.fitted_at) == 7


def test_samples_follow_the_mixture():
    mixture = fitted()
    samples = mixture.sample(20_000, torch.Generator().manual_seed(3))
    right = samples[:, 0] > 0
    assert right.float().mean().item() == pytest.approx(0.7, abs=0.015)
    torch.testing.assert_close(samples[right].mean(0), MEANS[0], atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(samples[~right].T), COVARIANCES[1], atol=0.06, rtol=0)


def test_transform_picks_the_component_by_the_uniform_number_and_is_mean_plus_factor_times_noise():
    mixture = fitted()
    eps = torch.tensor([[0.5, -1.0], [0.5, -1.0]])
    w0 = float(mixture.weights[0])
    codes = mixture.transform(eps, torch.tensor([w0 - 1e-3, w0 + 1e-3]))  # either side of the first slice
    for code, k in zip(codes, (0, 1)):
        torch.testing.assert_close(code, mixture.means[k] + mixture.scale_tril[k] @ eps[0])


def test_log_prob_is_the_mixture_density():
    mixture = fitted()
    x = torch.tensor([[0.0, 0.0], [4.0, 0.5], [-3.0, 1.0]])
    densities = [w * MultivariateNormal(m, scale_tril=l).log_prob(x).exp()
                 for w, m, l in zip(mixture.weights, mixture.means, mixture.scale_tril)]  # fmt: skip
    torch.testing.assert_close(mixture.log_prob(x), torch.stack(densities).sum(0).log(), rtol=1e-4, atol=1e-5)


def test_fitting_is_deterministic_for_a_seed_and_a_single_component_is_the_sample_moments():
    a, b = fitted(seed=5), fitted(seed=5)
    for name, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[name]), name
    x = two_gaussians(1000)
    one = GaussianMixture(2, 1)
    one.fit(x)
    torch.testing.assert_close(one.means[0], x.mean(0))
    torch.testing.assert_close(one.scale_tril[0] @ one.scale_tril[0].T, torch.cov(x.T, correction=0), rtol=1e-4, atol=1e-5)


def test_fewer_codes_than_components_leave_the_spare_ones_without_weight():
    mixture = GaussianMixture(2, 5)
    mixture.fit(torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]))
    assert (mixture.weights[3:] == 0).all() and mixture.weights.sum().item() == pytest.approx(1.0)
    assert torch.isfinite(mixture.sample(100)).all()
    assert math.isfinite(float(mixture.log_prob(torch.zeros(1, 2))))
