"""The autoencoder, the first of the GANs' "friends" in the lecture: an encoder that compresses
an image to a code of `code_dim` numbers and a decoder that restores the image from it, trained
to reconstruct (Hinton & Salakhutdinov 2006, "Reducing the Dimensionality of Data with Neural
Networks"), with a mean squared error or a per-pixel binary cross-entropy.

An autoencoder has no prior to sample from. After training (at every evaluation, so `val/fid`
follows it), a Gaussian mixture is fit to the codes of training images and decoded samples of it
are the model's samples: the ex-post density estimation of Ghosh et al. 2020 ("From Variational
to Deterministic Autoencoders", sec. 4; 10 full-covariance components).

Evaluation puts the model beside the GANs on their metrics: `val/fid` of its samples (the same
protocol and counts), `val/fid_recon` of its reconstructions of the evaluation images, `val/mse`
of those reconstructions (pixels in [0, 1], the PCA baseline's scale) and, on labelled data, the
class coverage of its samples. The grids show samples, input | reconstruction rows and
interpolations between the codes of held-out images. `gans.models.vae` is this model with a
probabilistic encoder and decoder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from gans import losses
from gans.data.base import to_float
from gans.errors import GansError
from gans.models.base import GenerativeModule, Update, eval_mode
from gans.nets.mixture import GaussianMixture

log = logging.getLogger(__name__)
RECONSTRUCTIONS = ("mse", "bce")
PRIORS = ("expost", "normal")
PREFIXES = ("val", "test")


class AE(GenerativeModule):
    """Args (besides `GenerativeModule`'s):
    encoder: images -> codes (`gans.nets.autoencoder.Encoder`).
    decoder: codes -> logits of the reconstruction's mean (`gans.nets.dcgan.Generator`, output linear).
    optimizer: a partial optimizer over both; scheduler: an optional partial LR scheduler.
    code_dim: the code's size, which the encoder and the decoder must share.
    reconstruction: "mse" (sigmoid(decoder) against the image, pixels in [0, 1]) or "bce" (the
        per-pixel cross-entropy of the decoder's logits with the grey levels as targets).
    prior: what samples are decoded from: "expost" (the mixture) or "normal" (N(0, I), which an
        autoencoder was never trained for: a baseline).
    mixture_components: the ex-post mixture's components (10, Ghosh et al. 2020).
    mixture_fit_images: fit it to the codes of this many training images (a seeded subset;
        None: all of them).
    """

    reconstruction_stream = "recon"

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        code_dim: int = 16,
        reconstruction: str = "mse",
        prior: str = "expost",
        mixture_components: int = 10,
        mixture_fit_images: int | None = 10_000,
        ema_decay: float | None = None,
        **kwargs,
    ) -> None:
        if ema_decay:
            raise GansError("model.ema_decay: an autoencoder decodes with the decoder its encoder was trained with; "
                            "set model.ema_decay=null")  # fmt: skip
        super().__init__(
            optimizers={"autoencoder": optimizer}, schedulers={"autoencoder": scheduler},
            generator_name="decoder", **kwargs,
        )  # fmt: skip
        check_code_size(code_dim, encoder, decoder)
        if reconstruction not in RECONSTRUCTIONS:
            raise GansError(f"model.reconstruction must be one of {', '.join(RECONSTRUCTIONS)}, got {reconstruction!r}")
        if prior not in PRIORS:
            raise GansError(f"model.prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if mixture_fit_images is not None and mixture_fit_images < mixture_components:
            raise GansError(f"model.mixture_fit_images={mixture_fit_images} must be at least "
                            f"model.mixture_components={mixture_components} (or null for all training images)")  # fmt: skip
        self.save_hyperparameters(ignore=["encoder", "decoder", "optimizer", "scheduler"])
        self.autoencoder = nn.ModuleDict({"encoder": encoder, "decoder": decoder})
        self.code_dim, self.reconstruction, self.prior = code_dim, reconstruction, prior
        self.mixture = GaussianMixture(code_dim, mixture_components)
        self.mixture_fit_images = mixture_fit_images
        self.eval_metrics = nn.ModuleDict({prefix: self.evaluation_metrics() for prefix in PREFIXES})
        self.setup_sampling()

    @property
    def encoder(self) -> nn.Module:
        return self.autoencoder["encoder"]

    @property
    def decoder(self) -> nn.Module:
        return self.autoencoder["decoder"]

    def evaluation_metrics(self) -> nn.ModuleDict:
        """Per-image means over an evaluation set, synced across processes."""
        return nn.ModuleDict({"mse": MeanMetric()})

    # -- the networks as an autoencoder -----------------------------------------------------------
    def encode(self, images: Tensor) -> Tensor:
        """The code of images in [-1, 1]."""
        return self.encoder(images)

    def decode_logits(self, network: nn.Module, codes: Tensor) -> Tensor:
        return network(codes)

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        """Reconstructions in [-1, 1] of images in [-1, 1] (the code, or the posterior mean),
        in eval mode, as float32."""
        with eval_mode(self.autoencoder):
            codes = self.encode(images.to(self.device))
            return torch.sigmoid(self.decode_logits(self.decoder, codes).float()).mul(2.0).sub(1.0)

    # -- sampling: codes from the prior, decoded --------------------------------------------------
    def draw_latent(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        """Noise for n samples: N(0, I) of the code's size and one uniform number, which picks the
        mixture component (`GaussianMixture.transform`), so fixed noise keeps giving the same
        sample from whatever mixture is current."""
        eps = super().draw_latent(n, generator, device)
        return torch.cat([eps, torch.rand((n, 1), generator=generator, device=eps.device)], dim=1)

    def prior_codes(self, noise: Tensor, prior: str | None = None) -> Tensor:
        """Codes of the prior (`prior` or the model's) for noise from `draw_latent`."""
        eps, u = noise[:, : self.code_dim], noise[:, self.code_dim]
        if (prior or self.prior) == "normal":
            return eps
        if not self.mixture.fitted:
            self.fit_mixture()
        return self.mixture.transform(eps, u)

    def synthesize(self, network: nn.Module, z: Tensor, condition: Tensor | None, prior: str | None = None) -> Tensor:
        return torch.sigmoid(self.decode_logits(network, self.prior_codes(z, prior)).float()).mul(2.0).sub(1.0)

    @torch.no_grad()
    def fit_mixture(self) -> None:
        """Fit the ex-post mixture to the codes of the training images (on rank 0; the base gives the
        other processes its buffers before each evaluation)."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            raise GansError("this checkpoint holds no ex-post mixture (it was saved before any evaluation): "
                            "evaluate it once in a run (python run.py ... ckpt_path=...) or sample with model.prior=normal")  # fmt: skip
        images = datamodule.train_images
        seeded = torch.Generator().manual_seed(self.sample_seed)
        if self.mixture_fit_images is not None and self.mixture_fit_images < len(images):
            images = images[torch.randperm(len(images), generator=seeded)[: self.mixture_fit_images].to(images.device)]
        with eval_mode(self.autoencoder):
            codes = torch.cat([self.encode(to_float(chunk.to(self.device))).float() for chunk in images.split(1000)])
        self.mixture.fit(codes, self.iteration, seeded)

    def _fit_mixture_if_stale(self) -> None:
        if self.prior == "expost" and int(self.mixture.fitted_at) != self.iteration and self.global_rank == 0:
            self.fit_mixture()

    # -- training ---------------------------------------------------------------------------------
    def updates(self) -> list[Update]:
        return [Update("ae", "autoencoder", self.reconstruction_loss)]

    def reconstruction_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Reconstruct the batch through the code: MSE or per-pixel BCE, pixels in [0, 1]."""
        images = batch["image"]
        logits = self.decode_logits(self.decoder, self.encode(images)).float()
        target = images.float().add(1.0).mul(0.5)
        if self.reconstruction == "bce":
            return F.binary_cross_entropy_with_logits(logits, target), {}
        return losses.mse_loss(torch.sigmoid(logits), target), {}

    # -- evaluation -------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        if not self.trainer.sanity_checking:
            self._fit_mixture_if_stale()  # before the base shares rank 0's buffers
        super().on_validation_epoch_start()

    def on_test_epoch_start(self) -> None:
        self._fit_mixture_if_stale()  # a checkpoint keeps the mixture of its iteration
        super().on_test_epoch_start()

    def prepare_evaluation(self, batch: dict[str, Tensor]) -> None:
        """The reconstructions of the evaluation batch, once, for FID and the error metrics alike."""
        batch["reconstruction"] = self.reconstruct(batch["image"])

    def reference_stream(self, stream: str) -> str:
        # Samples, reconstructions (and a VAE's N(0, I) samples) are all scored against the
        # evaluation images themselves: one set of real features.
        return ""

    def evaluation_pairs(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Samples against the real images (`fid`, the GANs' protocol) and reconstructions of those
        real images against them (`fid_recon`)."""
        pairs = super().evaluation_pairs(batch)
        pairs[self.reconstruction_stream] = (batch["image"], batch["reconstruction"])
        return pairs

    def evaluate_batch_extra(self, batch: dict[str, Tensor], prefix: str) -> None:
        error = (batch["reconstruction"] - batch["image"].float()).mul(0.5).square().flatten(1).mean(1)
        self.eval_metrics[prefix]["mse"].update(error)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._log_evaluation_metrics("val")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._log_evaluation_metrics("test")

    def _log_evaluation_metrics(self, prefix: str) -> None:
        metrics = self.eval_metrics[prefix]
        values = {name: metric.compute() for name, metric in metrics.items() if metric.update_called}
        for metric in metrics.values():
            metric.reset()
        if values:
            self.log_dict({f"{prefix}/{name}": value for name, value in values.items()}, sync_dist=False)
            self.report_evaluation(prefix, values)

    def report_evaluation(self, prefix: str, values: dict[str, Tensor]) -> None:
        if self.global_rank == 0:
            n = len(self.trainer.datamodule.eval_images("validate" if prefix == "val" else "test"))
            summary = ", ".join(f"{prefix}/{k} = {float(v):.5g}" for k, v in values.items())
            log.info(f"{summary} on {n} images at iteration {self.iteration}")

    # -- grids --------------------------------------------------------------------------------------
    def held_out_images(self, n: int) -> Tensor | None:
        """n validation images spread evenly over the set (a folder loads class by class, so its
        first images would all be of one class), in [-1, 1]; None without data."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None or getattr(datamodule, "val_images", None) is None:
            return None
        images = datamodule.eval_images("validate")
        spread = torch.linspace(0, len(images) - 1, min(n, len(images))).round().long()
        return to_float(images[spread.to(images.device)].to(self.device))

    @torch.no_grad()
    def visuals(self, nrow: int, interpolation_rows: int, interpolation_steps: int) -> dict:
        """Samples of the fixed noise; rows of held-out inputs, each above its reconstructions'
        row; rows of decoded codes (1 - t) c1 + t c2 between the codes of two held-out images."""
        grids = {"samples": (self.generate_from(self.fixed_z), nrow)}
        images = self.held_out_images(max(2 * nrow, 2 * interpolation_rows))
        if images is None or len(images) < 2:
            return grids
        columns = min(nrow, len(images))
        inputs = images[: len(images[: 2 * columns]) // columns * columns]
        pairs = torch.stack([inputs, self.reconstruct(inputs)]).view(2, -1, columns, *inputs.shape[1:])
        names = ["input", "reconstruction"] * pairs.shape[1]
        grids["reconstructions"] = (pairs.transpose(0, 1).flatten(0, 2), columns, names)
        rows = min(interpolation_rows, len(images) // 2)
        if rows and interpolation_steps > 1:
            with eval_mode(self.autoencoder):
                codes = self.posterior_mean(images[: 2 * rows])
                t = torch.linspace(0.0, 1.0, interpolation_steps, device=codes.device).view(1, -1, 1)
                path = (1.0 - t) * codes[:rows].unsqueeze(1) + t * codes[rows:].unsqueeze(1)
                decoded = torch.sigmoid(self.decode_logits(self.decoder, path.flatten(0, 1)).float())
            grids["interpolation"] = (decoded.mul(2.0).sub(1.0), interpolation_steps)
        return grids

    def posterior_mean(self, images: Tensor) -> Tensor:
        """The code of each image (a VAE: its posterior mean)."""
        return self.encode(images)


def check_code_size(code_dim: int, encoder: nn.Module, decoder: nn.Module) -> None:
    """One-line errors for an encoder and decoder that disagree with `model.code_dim`."""
    sizes = {"model.encoder.code_dim": getattr(encoder, "code_dim", code_dim),
             "model.decoder.latent_dim": getattr(decoder, "latent_dim", code_dim)}  # fmt: skip
    for key, size in sizes.items():
        if size != code_dim:
            raise GansError(f"{key}={size} but model.code_dim={code_dim}: the encoder's code must be the decoder's "
                            "input (the configs interpolate ${model.code_dim})")  # fmt: skip

