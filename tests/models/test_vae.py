"""The VAE (Kingma & Welling 2014): the negative ELBO against a hand computation on a tiny
Gaussian case, the reparametrised sample's gradient, the data the likelihoods see, the KL weight,
per-image evaluation noise, and one-line errors."""

import functools
import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal

from gans.errors import GansError
from gans.models.base import eval_mode
from gans.models.vae import VAE, reparametrize
from gans.nets.autoencoder import Encoder
from gans.nets.dcgan import Generator
from tests.models.test_base import make_trainer

adam = functools.partial(torch.optim.Adam, lr=1e-3)


class MeanEncoder(nn.Module):
    """q(z | x) = N(w * mean(x), exp(b)): one code number, two parameters."""

    gaussian, code_dim = True, 1

    def __init__(self) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(torch.tensor(0.3)), nn.Parameter(torch.tensor(-0.5))

    def forward(self, x):
        mean = self.w * x.flatten(1).mean(1, keepdim=True)
        return mean, self.b.expand_as(mean)


class LinearDecoder(nn.Module):
    """One code number -> logits of a 1x1x2 image: h = (u z + c)."""

    latent_dim = 1

    def __init__(self) -> None:
        super().__init__()
        self.u, self.c = nn.Parameter(torch.tensor([1.5, -2.0])), nn.Parameter(torch.tensor([0.1, 0.4]))

    def forward(self, z):
        return (z * self.u + self.c).view(-1, 1, 1, 2)


def tiny_vae(**kwargs) -> VAE:
    kwargs.setdefault("eval_fid", False)
    return VAE(MeanEncoder(), LinearDecoder(), adam, code_dim=1, num_fixed_samples=4, **kwargs)


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_the_gaussian_negative_elbo_is_the_hand_computation():
    model = tiny_vae(scale=0.2)
    images = torch.tensor([[[[-1.0, 1.0]]]])  # grey levels 0 and 255
    u, eps = torch.tensor([[[[0.5, 0.25]]]]), torch.tensor([[0.7]])
    x = model.observed(images, u)
    torch.testing.assert_close(x, torch.tensor([[[[0.5 / 256, 255.25 / 256]]]]))
    terms = model.negative_elbo(x, eps)

    xs = [0.5 / 256, 255.25 / 256]
    mean = 0.3 * sum(2 * v - 1 for v in xs) / 2  # the encoder sees x in [-1, 1]
    log_var = -0.5
    z = mean + math.exp(log_var / 2) * 0.7
    mus = [sigmoid(1.5 * z + 0.1), sigmoid(-2.0 * z + 0.4)]
    sigma = 0.2
    recon = sum(0.5 * (v - m) ** 2 / sigma**2 + math.log(sigma) + 0.5 * math.log(2 * math.pi) for v, m in zip(xs, mus))
    recon += 2 * math.log(256)  # two dequantised 8-bit pixels
    kl = 0.5 * (mean**2 + math.exp(log_var) - 1 - log_var)
    assert terms["recon"].item() == pytest.approx(recon, rel=1e-5)
    assert terms["kl"].item() == pytest.approx(kl, rel=1e-5)
    assert terms["nelbo"].item() == pytest.approx(recon + kl, rel=1e-5)
    assert model.bits_per_dim(terms["nelbo"], x).item() == pytest.approx((recon + kl) / (2 * math.log(2)), rel=1e-5)


def test_the_bernoulli_negative_elbo_on_binarised_pixels_is_the_hand_computation():
    model = tiny_vae(likelihood="bernoulli", binarize=True)
    images = torch.tensor([[[[0.2, 0.6]]]])  # grey 0.6 and 0.8
    x = model.observed(images, torch.tensor([[[[0.7, 0.7]]]]))  # binary draws: 0.7 < grey?
    assert x.flatten().tolist() == [0.0, 1.0]
    terms = model.negative_elbo(x, torch.tensor([[-0.4]]))
    mean = 0.3 * (-1.0 + 1.0) / 2
    z = mean + math.exp(-0.25) * -0.4
    p = [sigmoid(1.5 * z + 0.1), sigmoid(-2.0 * z + 0.4)]
    recon = -(math.log(1 - p[0]) + math.log(p[1]))
    assert terms["recon"].item() == pytest.approx(recon, rel=1e-5)


def test_the_reparametrised_sample_carries_the_gradient_to_the_mean_and_the_log_variance():
    mean = torch.tensor([0.3, -1.0], requires_grad=True)
    log_var = torch.tensor([0.2, -0.4], requires_grad=True)
    eps = torch.tensor([0.7, -1.1])
    reparametrize(mean, log_var, eps).sum().backward()
    torch.testing.assert_close(mean.grad, torch.ones(2))
    torch.testing.assert_close(log_var.grad, 0.5 * eps * torch.exp(0.5 * log_var.detach()))
    # An unbiased gradient of an expectation: d/dmu E[z^2] = 2 mu and d/dlogvar E[z^2] = sigma^2.
    mean, log_var = torch.tensor(0.5, requires_grad=True), torch.tensor(math.log(0.3), requires_grad=True)
    torch.manual_seed(0)
    reparametrize(mean.expand(200_000), log_var.expand(200_000)).square().mean().backward()
    assert mean.grad.item() == pytest.approx(1.0, abs=0.01)
    assert log_var.grad.item() == pytest.approx(0.3, abs=0.01)


def test_the_loss_reaches_the_encoder_and_the_learned_scale():
    model = tiny_vae(scale="learned", initial_scale=0.5)
    loss, stats = model.vae_loss({"image": torch.rand(4, 1, 1, 2) * 2 - 1})
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert stats["decoder_scale"].item() == pytest.approx(0.5)
    assert stats["elbo"].item() == pytest.approx(-(stats["recon"] + stats["kl"]).item(), rel=1e-5)


def test_the_importance_weighted_estimate_is_the_elbo_for_one_sample_and_tighter_for_many():
    model = tiny_vae(scale=0.2)
    x = model.observed(torch.tensor([[[[-0.5, 0.8]]], [[[0.3, -1.0]]]]), torch.full((2, 1, 1, 2), 0.5))
    eps = torch.tensor([[0.7], [-0.2]])
    with torch.no_grad():
        one = model.importance_weighted_nll(x, eps.unsqueeze(1))  # K = 1: -log w = recon + log q(z) - log p(z)
        torch.testing.assert_close(one, model.negative_elbo(x, eps)["recon"] + _kl_sample(model, x, eps))
        many = model.importance_weighted_nll(x, torch.randn(2, 5000, 1, generator=torch.Generator().manual_seed(0)))
        elbo = torch.stack([model.negative_elbo(x, torch.randn(2, 1))["nelbo"] for _ in range(2000)]).mean(0)
    assert (many < elbo).all()  # Burda et al. 2016, Theorem 1: the K-sample bound is tighter
    # By numerical integration over the one-dimensional code: -log p(x) itself.
    grid = torch.linspace(-8, 8, 20001).view(-1, 1)
    with torch.no_grad():
        logits = model.decoder(grid).float()
        for n in range(2):
            log_joint = -model.reconstruction_nll(logits, x[n].expand(len(grid), -1, -1, -1)) - 0.5 * grid[:, 0] ** 2 \
                - 0.5 * math.log(2 * math.pi)
            exact = -(torch.logsumexp(log_joint, 0) + math.log(16 / 20000))
            assert many[n].item() == pytest.approx(exact.item(), abs=0.02)


def test_the_test_stage_scores_the_importance_weighted_estimate_and_validation_does_not():
    model = tiny_vae(iw_samples=3)
    batch = {"image": torch.rand(4, 1, 1, 2) * 2 - 1, "index": torch.arange(4)}
    model.prepare_evaluation(batch)  # the reconstructions the shared metrics read
    for prefix in ("val", "test"):
        model.evaluate_batch_extra(batch, prefix)
    assert model.eval_metrics["test"]["nll_iw"].update_called and not model.eval_metrics["val"]["nll_iw"].update_called
    elbo = model.eval_metrics["test"]["elbo"].compute()
    assert model.eval_metrics["test"]["nll_iw"].compute() <= -elbo + 1.0  # near the ELBO, a little tighter


def _kl_sample(model: VAE, x, eps):
    """log q(z | x) - log p(z) at the single sample z = mu + sigma eps (the one-sample KL)."""
    mean, log_var = model.posterior(x * 2 - 1)
    z = reparametrize(mean, log_var, eps)
    return (Normal(mean, (0.5 * log_var).exp()).log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(1)


def test_the_kl_weight_warms_up_linearly_to_beta():
    model = tiny_vae(beta=4.0, kl_warmup=10)
    weights = []
    for model.iteration in (0, 4, 9, 50):
        weights.append(model.kl_weight())
    assert weights == pytest.approx([0.4, 2.0, 4.0, 4.0])
    assert tiny_vae(beta=0.5).kl_weight() == 0.5


def test_dequantised_data_fill_each_grey_level_bin_and_binarised_data_are_binary():
    model = tiny_vae()
    images = torch.linspace(-1, 1, 256).view(1, 1, 16, 16)
    x = model.observed(images, torch.rand(images.shape))
    levels = torch.arange(256.0).view(1, 1, 16, 16)
    assert ((x * 256 - levels) >= 0).all() and ((x * 256 - levels) < 1).all()
    binarised = tiny_vae(likelihood="bernoulli", binarize=True).observed(images.expand(4000, -1, -1, -1),
                                                                        torch.rand(4000, 1, 16, 16))  # fmt: skip
    assert set(binarised.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(binarised.mean(0), levels[0] / 255, atol=0.04, rtol=0)


def test_evaluation_noise_depends_on_the_image_not_on_its_batch():
    model = tiny_vae()
    images = torch.zeros(6, 1, 1, 2)
    eps, u, _ = model.evaluation_noise({"image": images, "index": torch.arange(6)})
    eps2, u2, _ = model.evaluation_noise({"image": images[:2], "index": torch.tensor([4, 1])})
    assert torch.equal(eps2, eps[[4, 1]]) and torch.equal(u2, u[[4, 1]])


def test_training_raises_the_elbo_of_a_fixed_batch(tmp_path, random_images):
    torch.manual_seed(0)
    encoder = Encoder(code_dim=4, gaussian=True, image_size=16, channels=1, width=8)
    decoder = Generator(latent_dim=4, image_size=16, channels=1, width=8, output="linear")
    fast = functools.partial(torch.optim.Adam, lr=1e-2)
    model = VAE(encoder, decoder, fast, code_dim=4, eval_fid=False, num_fixed_samples=4, initial_scale=1.0)
    data = random_images()
    data.setup("fit")
    batch = {"image": torch.as_tensor(data.train_images[:16]).float().div(127.5).sub(1), "index": torch.arange(16)}
    eps, u, _ = model.evaluation_noise(batch)

    def elbo():
        with torch.no_grad(), eval_mode(model.autoencoder):
            return -model.negative_elbo(model.observed(batch["image"], u), eps)["nelbo"].mean().item()

    before = elbo()
    make_trainer(tmp_path, max_epochs=3, limit_val_batches=0).fit(model, datamodule=data)
    assert elbo() > before + 20  # nats per image (noise images: sigma and the mean are what it can learn)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"likelihood": "poisson"}, r"model.likelihood must be one of gaussian, bernoulli"),
        ({"binarize": True}, r"model.binarize=true needs model.likelihood=bernoulli"),
        ({"beta": -1.0}, r"model.beta=-1.0 must be a number >= 0"),
        ({"kl_warmup": 2.5}, r"model.kl_warmup=2.5 must be a number of iterations"),
        ({"iw_samples": -1}, r"model.iw_samples=-1 must be a number of samples >= 0"),
        ({"scale": 0}, r"model.scale=0 must be 'learned' or a positive"),
        ({"reconstruction": "bce"}, r"a VAE's reconstruction term is its likelihood"),
        ({"prior": "uniform"}, r"model.prior must be one of expost, normal"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(GansError, match=message):
        tiny_vae(**kwargs)
