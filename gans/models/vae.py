"""The variational autoencoder: Kingma & Welling 2014, "Auto-Encoding Variational Bayes".

The encoder gives a diagonal Gaussian q(z | x) = N(mu(x), diag sigma^2(x)); a code is drawn by the
reparametrisation trick z = mu + sigma * eps, eps ~ N(0, I) (sec. 2.4), so the gradient reaches the
encoder; the decoder gives p(x | z), and the loss is the negative evidence lower bound

    -ELBO(x) = E_q[-log p(x | z)] + KL(q(z | x) || N(0, I))   (eq. 10; the KL in closed form, app. B)

in nats per image, with the KL weighted by `beta` (Higgins et al. 2017, "beta-VAE") and, as an
option, warmed up linearly from 0 over the first `kl_warmup` iterations (Bowman et al. 2016;
Sønderby et al. 2016).

Likelihoods, and what the logged ELBO bounds:
- "gaussian" (the default): p(x | z) = N(sigmoid(decoder(z)), sigma^2 I) on pixels in [0, 1],
  sigma learned (Dai & Wipf 2019, "Diagnosing and Enhancing VAE Models": one gamma for all pixels)
  or fixed. The 256 grey levels are dequantised, x = (k + u) / 256 with u ~ U[0, 1) (Theis et al.
  2016, "A note on the evaluation of generative models"), and D ln 256 nats are added, so the
  ELBO bounds the log-probability of the discrete image, as a likelihood of 8-bit data should.
- "bernoulli": p(x | z) = Bernoulli(sigmoid(decoder(z))) per pixel. With `binarize` the images
  are binary draws x ~ Bernoulli(grey level), afresh at every training step ("dynamic
  binarisation") and once per evaluation image (seeded by its index): the setting of the
  binarised-MNIST tables. Without it the grey levels are the targets and the "ELBO" bounds no
  likelihood (Loaiza-Ganem & Cunningham 2019): logged, but not a number to compare.

Bits per dimension are -ELBO / (D ln 2). With `iw_samples: K` the test also estimates -log p(x)
itself by importance sampling with K posterior samples per image, the bound of Burda et al. 2016
("Importance Weighted Autoencoders"), which tightens towards -log p(x) as K grows (`test/nll_iw`). Samples decode codes drawn from N(0, I) or, with
`prior: expost`, from the AE's Gaussian mixture fit to the posterior means of training images
(Ghosh et al. 2020); with `expost` the samples of N(0, I) are scored too (`fid_normal`), so one
run shows what the mixture buys.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Normal
from torchmetrics import MeanMetric

from gans import losses
from gans.errors import GansError
from gans.models.ae import AE
from gans.models.base import Update, eval_mode
from gans.nets.autoencoder import LearnedScale

LIKELIHOODS = ("gaussian", "bernoulli")
ELBO_TERMS = ("elbo", "recon", "kl", "bpd", "nll_iw")


def reparametrize(mean: Tensor, log_var: Tensor, eps: Tensor | None = None) -> Tensor:
    """z = mean + exp(log_var / 2) * eps with eps ~ N(0, I) (or the given eps): a sample of
    N(mean, diag exp(log_var)) that is a differentiable function of mean and log_var."""
    if eps is None:
        eps = torch.randn_like(mean)
    return mean + torch.exp(0.5 * log_var) * eps


class VAE(AE):
    """Args (besides `AE`'s; `reconstruction` is replaced by `likelihood`):
    likelihood: "gaussian" or "bernoulli" (see the module docstring).
    scale: a Gaussian decoder's sigma: "learned" (one parameter, starting at `initial_scale`)
        or a fixed positive number (pixels in [0, 1]).
    initial_scale: the learned sigma at initialisation.
    binarize: Bernoulli likelihood on binary draws of the images (dynamic binarisation).
    beta: the KL term's weight (1: the ELBO; Higgins et al. 2017).
    kl_warmup: iterations over which the KL weight rises linearly from 0 to beta (0: none).
    prior: "normal" (N(0, I), the VAE's own) or "expost" (the mixture, `AE`).
    iw_samples: posterior samples per test image for the importance-weighted estimate of
        -log p(x) (`test/nll_iw`; 0: none). Costs K decoder passes per image.
    """

    def __init__(
        self,
        *args,
        likelihood: str = "gaussian",
        scale: str | float = "learned",
        initial_scale: float = 1.0,
        binarize: bool = False,
        beta: float = 1.0,
        kl_warmup: int = 0,
        prior: str = "normal",
        reconstruction: str | None = None,
        iw_samples: int = 0,
        **kwargs,
    ) -> None:
        if reconstruction is not None:
            raise GansError(f"model.reconstruction={reconstruction}: a VAE's reconstruction term is its likelihood; "
                            "set model.likelihood=gaussian|bernoulli")  # fmt: skip
        if likelihood not in LIKELIHOODS:
            raise GansError(f"model.likelihood must be one of {', '.join(LIKELIHOODS)}, got {likelihood!r}")
        if binarize and likelihood != "bernoulli":
            raise GansError("model.binarize=true needs model.likelihood=bernoulli (binary pixels)")
        if not (isinstance(beta, (int, float)) and beta >= 0):
            raise GansError(f"model.beta={beta!r} must be a number >= 0 (1: the ELBO)")
        if not (isinstance(iw_samples, int) and iw_samples >= 0):
            raise GansError(f"model.iw_samples={iw_samples!r} must be a number of samples >= 0 (0: no estimate)")
        if not (isinstance(kl_warmup, int) and kl_warmup >= 0):
            raise GansError(f"model.kl_warmup={kl_warmup!r} must be a number of iterations >= 0")
        learned = scale == "learned"
        if not learned and not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0):
            raise GansError(f"model.scale={scale!r} must be 'learned' or a positive standard deviation")
        super().__init__(*args, prior=prior, **kwargs)
        if not getattr(self.encoder, "gaussian", True):
            raise GansError("model.encoder.gaussian=false: a VAE's encoder gives a mean and a log-variance")
        self.likelihood, self.binarize, self.beta, self.kl_warmup = likelihood, binarize, float(beta), kl_warmup
        self.iw_samples = iw_samples
        self.fixed_log_scale = None if learned else math.log(scale)
        if likelihood == "gaussian" and learned:
            self.autoencoder["scale"] = LearnedScale(initial_scale)

    def evaluation_metrics(self) -> nn.ModuleDict:
        metrics = super().evaluation_metrics()
        metrics.update({name: MeanMetric() for name in ELBO_TERMS})
        return metrics

    # -- the model ----------------------------------------------------------------------------------
    def posterior(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """q(z | x): mean and log-variance, float32."""
        mean, log_var = self.encoder(images)
        return mean.float(), log_var.float()

    def encode(self, images: Tensor) -> Tensor:
        """The posterior mean: the code reconstructions and the ex-post mixture use."""
        return self.posterior(self.model_input(images))[0]

    def log_scale(self) -> Tensor | float:
        return self.autoencoder["scale"]() if "scale" in self.autoencoder else self.fixed_log_scale

    # -- data as the likelihood sees it ---------------------------------------------------------------
    def observed(self, images: Tensor, u: Tensor) -> Tensor:
        """The data x the likelihood scores, from images in [-1, 1] and uniform noise u of their
        shape: dequantised levels (k + u) / 256 (Gaussian), binary draws u < k / 255 (binarised),
        or the grey levels k / 255."""
        levels = images.float().add(1.0).mul(127.5).round()
        if self.likelihood == "gaussian":
            return (levels + u) / 256.0
        grey = levels / 255.0
        return (u < grey).float() if self.binarize else grey

    def model_input(self, images: Tensor) -> Tensor:
        """What the encoder sees of images in [-1, 1] outside the ELBO: binarised models see the
        image thresholded at half grey (their inputs are binary)."""
        return images.float().gt(0.0).float().mul(2.0).sub(1.0) if self.binarize else images

    def reconstruction_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """-log p(x | z) per image, nats, for the decoder's logits (plus D ln 256 for dequantised data)."""
        if self.likelihood == "gaussian":
            dimensions = x[0].numel()
            return losses.gaussian_nll(torch.sigmoid(logits), x, self.log_scale()) + dimensions * math.log(256.0)
        return losses.bernoulli_nll(logits, x)

    def negative_elbo(self, x: Tensor, eps: Tensor | None = None) -> dict[str, Tensor]:
        """Per image, nats: `recon` = E_q[-log p(x | z)] by one reparametrised sample (plus D ln 256
        for dequantised data), `kl` = KL(q(z | x) || N(0, I)), and their sum `nelbo`."""
        mean, log_var = self.posterior(x.mul(2.0).sub(1.0))
        logits = self.decode_logits(self.decoder, reparametrize(mean, log_var, eps)).float()
        recon, kl = self.reconstruction_nll(logits, x), losses.gaussian_kl(mean, log_var)
        return {"recon": recon, "kl": kl, "nelbo": recon + kl}

    def importance_weighted_nll(self, x: Tensor, eps: Tensor, chunk: int = 4096) -> Tensor:
        """-log (1/K sum_k p(x, z_k) / q(z_k | x)), z_k = mu + sigma eps_k, per image (N,): Burda et
        al. 2016, eq. 8, with eps (N, K, d). Decoded `chunk` samples at a time."""
        mean, log_var = self.posterior(x.mul(2.0).sub(1.0))
        samples = eps.shape[1]
        z = reparametrize(mean.unsqueeze(1), log_var.unsqueeze(1), eps)  # N, K, d
        log_prior = Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_posterior = Normal(mean.unsqueeze(1), torch.exp(0.5 * log_var).unsqueeze(1)).log_prob(z).sum(-1)
        flat, targets = z.flatten(0, 1), x.repeat_interleave(samples, dim=0)
        nll = torch.cat([self.reconstruction_nll(self.decode_logits(self.decoder, zs).float(), xs)
                         for zs, xs in zip(flat.split(chunk), targets.split(chunk))]).view(len(x), samples)  # fmt: skip
        log_weights = -nll + log_prior - log_posterior
        return -(log_weights.logsumexp(1) - math.log(samples))

    def bits_per_dim(self, nelbo: Tensor, x: Tensor) -> Tensor:
        return nelbo / (x[0].numel() * math.log(2.0))

    # -- training -----------------------------------------------------------------------------------
    def updates(self) -> list[Update]:
        return [Update("vae", "autoencoder", self.vae_loss)]

    def kl_weight(self) -> float:
        """beta, reached linearly over the first `kl_warmup` iterations."""
        if self.kl_warmup <= 0:
            return self.beta
        return self.beta * min(1.0, (self.iteration + 1) / self.kl_warmup)

    def vae_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The negative ELBO of a minibatch, one reparametrised sample per image (Kingma & Welling
        2014, Algorithm 1), with the KL weighted by beta (warmed up)."""
        x = self.observed(batch["image"], torch.rand_like(batch["image"], dtype=torch.float32))
        terms = self.negative_elbo(x)
        weight = self.kl_weight()
        loss = (terms["recon"] + weight * terms["kl"]).mean()
        stats = {name: terms[name].detach().mean() for name in ("recon", "kl")}
        stats.update(elbo=-terms["nelbo"].detach().mean(), bpd=self.bits_per_dim(terms["nelbo"].detach(), x).mean())
        stats["beta"] = torch.tensor(weight)
        if "scale" in self.autoencoder:
            stats["decoder_scale"] = self.log_scale().detach().exp()
        return loss, stats

    # -- evaluation -----------------------------------------------------------------------------------
    def evaluation_noise(self, batch: dict[str, Tensor], iw_samples: int = 0) -> tuple[Tensor, Tensor, Tensor | None]:
        """Per evaluation image, seeded by its index: the reparametrisation's eps, the
        dequantisation (or binarisation) noise u and, for the importance-weighted estimate, K more
        eps. The same numbers for an image in every run, batching and process count, as the base's
        evaluation latents."""
        images = batch["image"]
        eps, u, more = [], [], []
        for i in batch["index"].tolist():
            seeded = torch.Generator().manual_seed((self.sample_seed + 2) * 1_000_003 + i)
            eps.append(torch.randn(self.code_dim, generator=seeded))
            u.append(torch.rand(images.shape[1:], generator=seeded))
            if iw_samples:
                more.append(torch.randn(iw_samples, self.code_dim, generator=seeded))
        iw_eps = torch.stack(more).to(self.device) if more else None
        return torch.stack(eps).to(self.device), torch.stack(u).to(self.device), iw_eps

    def evaluate_batch_extra(self, batch: dict[str, Tensor], prefix: str) -> None:
        super().evaluate_batch_extra(batch, prefix)
        eps, u, iw_eps = self.evaluation_noise(batch, self.iw_samples if prefix == "test" else 0)
        x = self.observed(batch["image"], u)
        metrics = self.eval_metrics[prefix]
        with torch.no_grad(), eval_mode(self.autoencoder):
            terms = self.negative_elbo(x, eps)
            if iw_eps is not None:
                metrics["nll_iw"].update(self.importance_weighted_nll(x, iw_eps))
        metrics["recon"].update(terms["recon"])
        metrics["kl"].update(terms["kl"])
        metrics["elbo"].update(-terms["nelbo"])
        metrics["bpd"].update(self.bits_per_dim(terms["nelbo"], x))

    def evaluation_pairs(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        pairs = super().evaluation_pairs(batch)
        if self.prior == "expost":  # and the VAE's own prior beside the mixture
            z = self._eval_latents[batch["index"]]
            with torch.no_grad(), eval_mode(self.autoencoder):
                pairs["normal"] = (batch["image"], self.synthesize(self.decoder, z, None, prior="normal"))
        return pairs

