"""The adversarial base module: alternating discriminator/generator updates with manual optimization.

A model subclass states its networks (given by Hydra) and two losses,
`discriminator_loss(batch)` and `generator_loss(batch)`; this class owns the rest: optimizers
and schedulers from config, `n_critic` discriminator steps per generator step (Arjovsky et al.
2017), gradient toggling so each update only computes the gradients it needs, mixed precision
and DDP through Lightning's `manual_backward`, an optional EMA generator for sampling
(Karras et al. 2018; Yazici et al. 2019), fixed latents for sample grids, `generate(n)`,
and FID/KID evaluation on the validation and test sets.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gans.data.base import to_uint8
from gans.errors import NonFiniteLossError
from gans.metrics.fid import FeatureDistances

log = logging.getLogger(__name__)
LossFn = Callable[[dict[str, Tensor]], tuple[Tensor, dict[str, Tensor]]]


class AdversarialModule(L.LightningModule, ABC):
    """Base of every GAN here (and of the VAE/AE, which use one "generator" network).

    Args:
        generator, discriminator: the networks (`_target_` configs, built by Hydra).
        optimizer_g, optimizer_d: partial optimizers (`_partial_: true`), called with parameters.
        scheduler_g, scheduler_d: optional partial LR schedulers, stepped once per epoch.
        n_critic: discriminator updates per generator update.
        ema_decay: if set, keep an exponential moving average of the generator and sample from it.
        num_fixed_samples: size of the fixed latent batch behind the sample grids.
        sample_seed: seed of the fixed latents and of the evaluation latents.
        eval_fid, eval_kid: compute FID (and KID) on validation and test.
        fid_antialias: False = the TF-compatible resize of published FID tables.
        kid_subset_size: KID subset size (capped by the sample count).
        channels_last: NHWC memory format, faster convolutions on tensor cores.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        scheduler_g: Callable[..., Any] | None = None,
        scheduler_d: Callable[..., Any] | None = None,
        n_critic: int = 1,
        ema_decay: float | None = None,
        num_fixed_samples: int = 64,
        sample_seed: int = 1234,
        eval_fid: bool = True,
        eval_kid: bool = False,
        fid_antialias: bool = False,
        kid_subset_size: int = 1000,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # Networks and partial callables are rebuilt from the Hydra config; keeping only plain
        # values in the checkpoint lets it load with torch.load(weights_only=True).
        self.save_hyperparameters(
            ignore=["generator", "discriminator", "optimizer_g", "optimizer_d", "scheduler_g", "scheduler_d"]
        )
        self.generator, self.discriminator = generator, discriminator
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.scheduler_g, self.scheduler_d = scheduler_g, scheduler_d
        self.ema = None
        if ema_decay:
            self.ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            self.ema.requires_grad_(False)
        self.latent_dim = getattr(generator, "latent_dim", None)
        if self.latent_dim:
            seeded = torch.Generator().manual_seed(sample_seed)
            self.register_buffer("fixed_z", torch.randn(num_fixed_samples, self.latent_dim, generator=seeded))
        # Plain dicts, not submodules: the 87 MB Inception weights stay out of every checkpoint.
        self._distances: dict[str, dict[str, FeatureDistances]] = {}  # stage -> stream -> FID/KID
        self._collect_real: dict[str, bool] = {}
        self._eval_latents: Tensor | None = None
        self._last_losses: dict[str, Tensor] = {}

    # -- the pieces a model states ----------------------------------------------------------
    @abstractmethod
    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The discriminator's loss on a real batch, and statistics to log (e.g. D(x), D(G(z)))."""

    @abstractmethod
    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The generator's loss for a batch, and statistics to log."""

    # -- sampling -----------------------------------------------------------------------------
    def sample_latent(self, n: int) -> Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)

    @property
    def sampler(self) -> nn.Module:
        """The network used for samples and evaluation: the EMA generator if kept."""
        return self.ema.module if self.ema is not None else self.generator

    @torch.no_grad()
    def generate_from(self, z: Tensor) -> Tensor:
        """Images in [-1, 1] for latents z, from the sampler in eval mode (batch-norm running stats)."""
        sampler = self.sampler
        was_training = sampler.training
        sampler.eval()
        try:
            return sampler(z.to(self.device)).float()
        finally:
            sampler.train(was_training)

    def generate(self, n: int) -> Tensor:
        """n new images in [-1, 1]."""
        return self.generate_from(self.sample_latent(n))

    def visuals(self, nrow: int, interpolation_rows: int, interpolation_steps: int) -> dict[str, tuple[Tensor, int]]:
        """Named image batches for the sample-grid callback, with their images per row: the fixed
        latents, and rows of z = t z1 + (1 - t) z2 between pairs of them."""
        z = self.fixed_z
        grids = {"samples": (self.generate_from(z), nrow)}
        rows = min(interpolation_rows, len(z) // 2)
        if rows and interpolation_steps > 1:
            t = torch.linspace(0.0, 1.0, interpolation_steps, device=z.device).view(1, -1, 1)
            path = (t * z[:rows].unsqueeze(1) + (1.0 - t) * z[rows : 2 * rows].unsqueeze(1)).flatten(0, 1)
            grids["interpolation"] = (self.generate_from(path), interpolation_steps)
        return grids

    # -- training -----------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizers = [self.optimizer_g(self.generator.parameters()), self.optimizer_d(self.discriminator.parameters())]
        schedulers = [make(opt) for make, opt in zip((self.scheduler_g, self.scheduler_d), optimizers) if make]
        return optimizers, schedulers

    def on_fit_start(self) -> None:
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)

    def on_train_batch_start(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # All training randomness (latents, label noise, dropout) follows from (seed, epoch, rank):
        # ranks draw different noise, and a run resumed from an epoch-end checkpoint continues
        # exactly as the uninterrupted run would have. Seeded at the first batch, after Lightning
        # has built the epoch's data iterator (which draws from the global generator).
        if batch_idx != 0:
            return
        base = int(os.environ.get("PL_GLOBAL_SEED", "0"))
        torch.manual_seed((base * 1_000_003 + self.current_epoch * 1_009 + self.global_rank) % 2**63)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Goodfellow et al. 2014, Algorithm 1: n_critic discriminator updates, then one generator update."""
        batch = self.prepare_batch(batch)
        opt_g, opt_d = self.optimizers()
        self.adversarial_update(opt_d, self.discriminator, self.discriminator_loss, batch, "d")
        if (batch_idx + 1) % self.hparams.n_critic == 0:
            self.adversarial_update(opt_g, self.generator, self.generator_loss, batch, "g")
            if self.ema is not None:
                self.ema.update_parameters(self.generator)

    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The training batch, its images NHWC if `channels_last`."""
        if not self.hparams.channels_last:
            return batch
        return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}

    def adversarial_update(self, optimizer, network: nn.Module, loss_fn: LossFn, batch, name: str) -> Tensor:
        """One optimizer step on `loss_fn(batch)`, with only `optimizer`'s parameters requiring grad."""
        with self.toggled_optimizer(optimizer):
            loss, stats = loss_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()
        self._last_losses[name] = loss.detach()
        if self._log_this_step:
            self._check_finite()
            # After step(): Lightning has unscaled fp16 gradients by then, so the norm is true.
            grads = [p.grad for p in network.parameters() if p.grad is not None]
            stats = {f"{name}_loss": loss, f"grad_norm_{name}": torch.nn.utils.get_total_norm(grads), **stats}
            self.log_dict({f"train/{k}": v.detach().float() for k, v in stats.items()}, prog_bar=False)
        return loss

    @property
    def _log_this_step(self) -> bool:
        # Logging every step costs Python time that shows at GPU speeds; compute the statistics only
        # on the steps Lightning writes to the logger (`log_every_n_steps`).
        return self.trainer._logger_connector.should_update_logs

    def _check_finite(self) -> None:
        bad = {k: float(v) for k, v in self._last_losses.items() if not torch.isfinite(v).all()}
        if bad:
            name, value = next(iter(bad.items()))
            ckpt = getattr(self.trainer.checkpoint_callback, "dirpath", None)
            raise NonFiniteLossError(
                f"{name}_loss became {value} at step {self.global_step}: training stopped; the last good checkpoint "
                f"is in {ckpt or 'the run dir'}. Lower the learning rate or resume from it with ckpt_path=..."
            )

    def on_train_epoch_end(self) -> None:
        self._check_finite()
        for scheduler in self.lr_schedulers() or []:
            scheduler.step()

    def lr_schedulers(self):
        schedulers = super().lr_schedulers()
        return schedulers if isinstance(schedulers, list) or schedulers is None else [schedulers]

    # -- evaluation: FID/KID against the data module's validation or test images ----------------
    def evaluation_pairs(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """{stream: (real images, generated images)} for an evaluation batch; each stream gets its
        own FID (`fid` for the stream "", `fid_<name>` otherwise, and `fid` as their mean).

        Here, for unconditional models: latent i is fixed for evaluation image i, so every process
        and every run scores the same latents. Image-to-image models return one stream per direction.
        """
        return {"": (batch["image"], self.generate_from(self._eval_latents[batch["index"]]))}

    def evaluate_batch_extra(self, batch: dict[str, Tensor], prefix: str) -> None:
        """Further metrics of an evaluation batch (e.g. PSNR against a ground truth); none here."""

    def on_validation_epoch_start(self) -> None:
        self._start_evaluation("validate")

    def on_test_epoch_start(self) -> None:
        self._start_evaluation("test")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate_batch(batch, "validate", "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate_batch(batch, "test", "test")

    def on_validation_epoch_end(self) -> None:
        self._finish_evaluation("validate", "val")

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation("test", "test")

    def _evaluating(self) -> bool:
        return self.hparams.eval_fid and not self.trainer.sanity_checking

    def _start_evaluation(self, stage: str) -> None:
        if self._last_losses:
            self._check_finite()
        self._broadcast_buffers()
        if self.latent_dim:
            n = self.trainer.datamodule.eval_size(stage)
            if self._eval_latents is None or len(self._eval_latents) != n:
                seeded = torch.Generator().manual_seed(self.hparams.sample_seed + 1)
                self._eval_latents = torch.randn(n, self.latent_dim, generator=seeded)
            self._eval_latents = self._eval_latents.to(self.device)
        for distances in self._distances.get(stage, {}).values():
            distances.to(self.device)

    def _stream_distances(self, stage: str, stream: str) -> FeatureDistances:
        """The FID/KID state of one stream, created on first use with cached real features if any."""
        streams = self._distances.setdefault(stage, {})
        if stream not in streams:
            inception = next((d.inception for s in self._distances.values() for d in s.values()), None)
            distances = FeatureDistances(
                self.hparams.fid_antialias, self.hparams.eval_kid, self.hparams.kid_subset_size, inception
            ).to(self.device)
            key = self._reference_key(stage, stream)
            self._collect_real[key] = not distances.load_real(key, self.global_rank)
            streams[stream] = distances
        return streams[stream]

    def _reference_key(self, stage: str, stream: str) -> str:
        fingerprint = self.trainer.datamodule.eval_fingerprint(stage)
        return f"{fingerprint}-{stream}" if stream else fingerprint

    def _evaluate_batch(self, batch: dict[str, Tensor], stage: str, prefix: str) -> None:
        if self.trainer.sanity_checking:
            return
        if self.hparams.eval_fid:
            for stream, (reals, fakes) in self.evaluation_pairs(batch).items():
                distances = self._stream_distances(stage, stream)
                if self._collect_real[self._reference_key(stage, stream)]:
                    distances.update(to_uint8(reals), real=True)
                distances.update(to_uint8(fakes), real=False)
        self.evaluate_batch_extra(batch, prefix)  # cheap metrics run with or without FID

    def _finish_evaluation(self, stage: str, prefix: str) -> None:
        if not self._evaluating():
            return
        expected = self.trainer.datamodule.eval_size(stage)
        fids = []
        for stream, distances in list(self._distances.get(stage, {}).items()):
            key = self._reference_key(stage, stream)
            n_real, n_fake = distances.synced_counts()
            if self._collect_real[key]:
                # Cache only a complete reference set (limit_val_batches may have cut it short).
                if n_real == expected:
                    distances.save_real(key)
                    self._collect_real[key] = False
                else:
                    distances.discard_collected_real()
                    del self._distances[stage][stream]  # an incomplete reference set is not reused
            scores = distances.compute()
            distances.reset()
            suffix = f"_{stream}" if stream else ""
            self.log_dict({f"{prefix}/{k}{suffix}": v for k, v in scores.items()}, sync_dist=True)
            fids.append(scores["fid"])
            if self.global_rank == 0:
                log.info(
                    f"{prefix}/fid{suffix} = {float(scores['fid']):.3f} ({n_fake} generated vs {n_real} real "
                    f"{stage} images, Inception 2015-12-05, {distances.protocol} resize) at step {self.global_step}"
                )
        if len(fids) > 1:
            self.log(f"{prefix}/fid", torch.stack(fids).mean(), sync_dist=True)
        if fids:
            self.log(f"{prefix}/fid_samples", float(n_fake), sync_dist=True)

    def _broadcast_buffers(self) -> None:
        # DDP keeps batch-norm running statistics per process; give every process rank 0's, so
        # each rank's share of evaluation samples comes from the same network.
        if dist.is_available() and dist.is_initialized() and self.trainer.world_size > 1:
            for buffer in self.buffers():
                dist.broadcast(buffer, src=0)
