"""SRResNet: Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", sec. 3.2: the generator alone, trained on the pixel MSE between its output
and the HR crop ("SRResNet ... optimized for MSE", Adam with beta1 = 0.9 and learning rate 1e-4,
batches of 16 random 96x96 HR crops). It is the PSNR-oriented baseline and SRGAN's initialisation.

`SuperResolution` holds what SRResNet and SRGAN share: upscaling in eval mode, PSNR/SSIM of the
SR outputs and of bicubic upsampling on the same images (`gans.metrics.super_resolution`: Y
channel, `border` pixels cropped, 8-bit outputs), FID between SR and HR tiles, and the grids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gans import losses
from gans.data.base import to_uint8
from gans.data.super_resolution import bicubic_upscale, tiles
from gans.metrics.super_resolution import ImageQuality
from gans.models.base import GenerativeModule, Update

log = logging.getLogger(__name__)
PREFIXES = ("val", "test")
GRID_SIDE = 128  # HR side of the grid's view of each validation image (its centre)


class SuperResolution:
    """Evaluation and grids of a super-resolution model (a mixin before `GenerativeModule`).
    Batches are {"hr", "lr", "index"} (`gans.data.super_resolution`).

    Args (passed on by the model):
        channel: "y" (the paper's luma) or "rgb" for PSNR/SSIM.
        border: pixels cropped from each side before PSNR/SSIM (None: the scale, the convention).
    """

    def setup_quality(self, scale: int, channel: str, border: int | None) -> None:
        self.scale, self.channel = scale, channel
        self.border = scale if border is None else border
        self.quality = nn.ModuleDict({
            prefix: nn.ModuleDict({kind: ImageQuality(channel, self.border) for kind in ("sr", "bicubic")})
            for prefix in PREFIXES
        })  # fmt: skip
        self._fixed_batch: list[dict[str, Tensor]] | None = None  # plain attribute: out of checkpoints

    @torch.no_grad()
    def upscale(self, lr: Tensor, network: nn.Module | None = None) -> Tensor:
        """SR images in [-1, 1] (float32, clamped) of LR images in [-1, 1], in eval mode."""
        network = self.sampler if network is None else network
        was_training = network.training
        network.eval()
        try:
            return network(lr.to(self.device)).float().clamp(-1.0, 1.0)
        finally:
            network.train(was_training)

    def prepare_evaluation(self, batch: dict[str, Tensor]) -> None:
        """Upscale once at the run's precision: FID and PSNR/SSIM read the same output."""
        if "sr" not in batch:
            batch["sr"] = self.upscale(batch["lr"])

    def evaluation_pairs(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """FID's samples: the non-overlapping tiles of the HR image and of its SR output."""
        self.prepare_evaluation(batch)
        patch = getattr(self.trainer.datamodule, "fid_patch", 96)
        return {"": (tiles(batch["hr"], patch), tiles(batch["sr"], patch))}

    def evaluate_batch_extra(self, batch: dict[str, Tensor], prefix: str) -> None:
        """PSNR and SSIM of the SR output and of bicubic upsampling, against the HR image."""
        self.prepare_evaluation(batch)
        hr = to_uint8(batch["hr"])
        metrics = self.quality[prefix]
        metrics["sr"].update(to_uint8(batch["sr"]), hr)
        metrics["bicubic"].update(to_uint8(bicubic_upscale(batch["lr"], self.scale)), hr)

    def _log_quality(self, prefix: str) -> None:
        if self.trainer.sanity_checking:
            return
        values = {}
        for kind, metric in self.quality[prefix].items():
            if int(metric.count) == 0 and self.trainer.world_size == 1:
                continue
            suffix = "" if kind == "sr" else f"_{kind}"
            values.update({f"{prefix}/{name}{suffix}": v for name, v in metric.compute().items()})
            metric.reset()
        if values:
            self.log_dict(values)  # already summed over processes by the metric
            if self.global_rank == 0:
                scores = ", ".join(f"{k} = {float(v):.4f}" for k, v in values.items())
                log.info(f"{scores} ({self.channel.upper()} channel, border {self.border}, 8-bit outputs) at "
                         f"iteration {self.iteration}")  # fmt: skip

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._log_quality("val")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._log_quality("test")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._keep_fixed_batch(batch)
        super().validation_step(batch, batch_idx)

    # -- grids: LR (nearest) | bicubic | SR | HR, and their centres zoomed --------------------------
    def _keep_fixed_batch(self, batch: dict[str, Tensor]) -> None:
        kept = self._fixed_batch = self._fixed_batch or []
        if len(kept) < self.num_fixed_samples and not any(int(k["index"][0]) == int(batch["index"][0]) for k in kept):
            side = min(GRID_SIDE, *batch["hr"].shape[-2:]) // self.scale * self.scale
            hr = centre(batch["hr"], side)
            kept.append({"hr": hr.detach().clone(), "lr": centre(batch["lr"], side // self.scale).detach().clone(),
                         "index": batch["index"][:1].clone()})  # fmt: skip

    def visuals(self, nrow: int, interpolation_rows: int, interpolation_steps: int) -> dict[str, tuple[Tensor, int]]:
        """Rows of LR (nearest-upsampled) | bicubic | SR | HR for the centres of the first validation
        images; `sr_zoom` the same rows with the middle half of each enlarged twice (nearest)."""
        kept = (self._fixed_batch or [])[:nrow]
        if not kept:
            return {}
        side = min(k["hr"].shape[-1] for k in kept)
        hr = torch.cat([centre(k["hr"], side) for k in kept]).to(self.device)
        lr = torch.cat([centre(k["lr"], side // self.scale) for k in kept]).to(self.device)
        columns = (
            F.interpolate(lr, scale_factor=self.scale, mode="nearest"), bicubic_upscale(lr, self.scale),
            self.upscale(lr), hr.float(),
        )  # fmt: skip
        zoomed = tuple(F.interpolate(centre(c, side // 2), scale_factor=2, mode="nearest") for c in columns)
        return {"sr": rows(columns), "sr_zoom": rows(zoomed)}


def centre(images: Tensor, side: int) -> Tensor:
    """The centred side x side crop of (N, C, H, W) images."""
    height, width = images.shape[-2:]
    top, left = (height - side) // 2, (width - side) // 2
    return images[..., top : top + side, left : left + side]


def rows(columns: tuple[Tensor, ...]) -> tuple[Tensor, int]:
    """Images interleaved so that row i of a grid with len(columns) per row shows item i of each."""
    return torch.stack([c.float() for c in columns], dim=1).flatten(0, 1), len(columns)


class SRResNet(SuperResolution, GenerativeModule):
    """Args (besides `GenerativeModule`'s):
    generator: `gans.nets.srgan.SRResNet`.
    optimizer: partial optimizer (Adam, lr 1e-4, betas (0.9, 0.999)).
    scheduler: optional partial LR scheduler (stepped per `scheduler_interval`).
    channel, border: the PSNR/SSIM protocol (see `SuperResolution`).
    """

    def __init__(
        self,
        generator: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        channel: str = "y",
        border: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(optimizers={"generator": optimizer}, schedulers={"generator": scheduler}, **kwargs)
        self.save_hyperparameters(ignore=["generator", "optimizer", "scheduler"])
        self.generator = generator
        self.setup_quality(generator.scale, channel, border)
        self.setup_sampling()

    def updates(self) -> list[Update]:
        return [Update("g", "generator", self.mse_loss)]

    def mse_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The pixel MSE between G(LR) and the HR crop (Ledig et al. 2017, eq. 4)."""
        return losses.mse_loss(self.generator(batch["lr"]), batch["hr"]), {}
