"""The base modules of the family: a generative base, and the adversarial mechanics on top of it.

`GenerativeModule` owns what every model here shares, GAN or not: named networks each with its
own optimizer and scheduler (from partial configs), an ordered list of updates per training
iteration (`updates()`), manual optimization with gradient toggling, mixed precision and DDP
through Lightning's `manual_backward`, per-optimizer gradient clipping (after unscaling) and a
hook after each step, progress counted in iterations and images seen (checkpointed), an
optional EMA of the generating network, sampling from a latent and a condition, the fixed grid
latents, and FID/KID evaluation streams in float32 under every precision.

`AdversarialModule` is one layer on top: a generator and a discriminator, `n_critic`
discriminator updates per generator update (Goodfellow et al. 2014, Algorithm 1; Arjovsky et al.
2017). A model with one network and one optimizer (VAE, AE, SRResNet pre-training) subclasses
`GenerativeModule` directly and states one update.
"""

from __future__ import annotations

import inspect
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from gans.data.base import to_uint8
from gans.errors import GansError, NonFiniteLossError
from gans.metrics.classifier import (
    ClassStatistics,
    Recipe,
    classification_accuracy_score,
    predict,
    real_classifier,
    training_subset,
)
from gans.metrics.fid import FeatureDistances
from gans.metrics.inception import exact_float32
from gans.metrics.intra_fid import IntraFID

log = logging.getLogger(__name__)
LossFn = Callable[[dict[str, Tensor]], tuple[Tensor, dict[str, Tensor]]]
SCHEDULER_INTERVALS = ("epoch", "iteration")
LATENT_DISTRIBUTIONS = ("normal", "uniform")


def ema_with_warmup(decay: float) -> Callable[[list[Tensor], list[Tensor], Tensor], None]:
    """An EMA update for `AveragedModel(multi_avg_fn=...)` whose decay after n updates is
    min(decay, (1 + n) / (10 + n)), the warm-up of TensorFlow's ExponentialMovingAverage
    (`num_updates`). A fixed decay of 0.999 would still hold 0.999^1000 = 37% of the random
    initial generator after 1,000 iterations: measured on the CPU default, its samples were a
    blur (test FID 232.7 against 143.9 for the raw generator of the same checkpoint)."""
    if not 0.0 < decay < 1.0:
        raise GansError(f"model.ema_decay={decay} must be in (0, 1), e.g. 0.999, or null for no EMA")

    def average(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        # On the parameters' device: no host sync per step.
        n = num_averaged.to(device=averaged[0].device, dtype=torch.float32)
        weight = 1.0 - torch.clamp((1.0 + n) / (10.0 + n), max=decay)
        torch._foreach_add_(averaged, torch._foreach_mul(torch._foreach_sub(current, averaged), weight))

    return average



def seed_generators(seed: int, device: torch.device) -> None:
    """Seed the CPU generator and the training device's, as `torch.manual_seed` would for them.

    Not `torch.manual_seed` itself on every iteration: before CUDA/XPU/MTIA are initialised it
    queues a lazy seeding call per backend, each with a formatted stack trace, into a queue that
    is never drained on a CPU run: measured 1.9 ms per iteration inside Lightning's loop (issue
    13's profile), most of the framework's overhead on a small model, and a slow memory leak."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        torch.cuda.default_generators[index].manual_seed(seed)
    elif device.type != "cpu":
        torch.manual_seed(seed)  # other accelerators: the general path


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _called_modules(network: nn.Module) -> list[nn.Module]:
    """The modules whose forward is called: the network, or the members of a ModuleDict/ModuleList."""
    if isinstance(network, (nn.ModuleDict, nn.ModuleList)):
        return [m for child in network.children() for m in _called_modules(child)]
    return [network]


@contextmanager
def eval_mode(network: nn.Module) -> Iterator[nn.Module]:
    """`network` in eval mode for the block (batch norm with its running statistics), then back
    in the mode it was in: sampling and evaluation inside a training step change nothing."""
    was_training = network.training
    network.eval()
    try:
        yield network
    finally:
        network.train(was_training)

@dataclass(frozen=True)
class Update:
    """One optimizer step of an iteration: `loss(batch)` descended by the optimizer of `network`,
    on iterations i with (i + 1) % every == 0. `name` prefixes the logged loss (e.g. "d" -> d_loss)."""

    name: str
    network: str
    loss: LossFn
    every: int = 1


class GenerativeModule(L.LightningModule, ABC):
    """Base of every model here. A subclass registers its networks as attributes, names an
    optimizer per network and states `updates()`.

    Args:
        optimizers: {network attribute: partial optimizer}, called with that network's parameters.
        schedulers: {network attribute: partial LR scheduler or None}, called with its optimizer.
        scheduler_interval: step schedulers once per "epoch" or once per "iteration".
        gradient_clip: {network attribute: max gradient norm}, applied after unscaling, before the step.
        generator_name: the attribute holding the network that draws samples.
        latent_distribution: z ~ N(0, I) ("normal", the lecture's trick) or U[-1, 1]^d ("uniform",
            what Radford et al. 2016 drew).
        ema_decay: if set, keep an exponential moving average of the generating network and sample
            from it; the decay warms up as min(ema_decay, (1 + n) / (10 + n)) after n updates, so
            early samples are not dominated by the random initial weights (see `ema_with_warmup`).
        num_fixed_samples: size of the fixed latent batch behind the sample grids.
        sample_seed: seed of the fixed latents and of the evaluation latents.
        eval_fid, eval_kid: compute FID (and KID) on validation and test.
        fid_antialias: False = the TF-compatible resize of published FID tables.
        kid_subset_size: KID subset size (capped by the sample count).
        channels_last: NHWC memory format, faster convolutions on tensor cores.
        eval_classes: with `eval_fid`, class-aware metrics of latent models on labelled data
            (`gans.metrics.classifier`): `class_coverage` and the class histogram for
            unconditional models; `class_acc`, and on the test set intra-FID, for class-conditional
            ones (`class_conditional = True`). Skipped on data without classes.
        eval_cas: also the Classification Accuracy Score on the test set (`test/cas`, Ravuri &
            Vinyals 2019): trains a classifier on generated images, as long as the real one took.
        classifier_epochs: epochs of the classifier of the real data (and of CAS's).
        classifier_train_images: train that classifier on a random subset of this many training
            images (None: all); a smaller, faster, worse classifier for smoke tests.
        compile: `torch.compile` the trained networks when fitting (True, or a `torch.compile`
            mode: "default", "reduce-overhead" for CUDA graphs, "max-autotune"). Compiled in
            place (`nn.Module.compile`), so parameters, the EMA copy's source, gradient toggling
            and checkpoint keys are those of the eager network: checkpoints move freely between
            compiled and eager runs. Toggling and eval mode each compile a variant once.
    """

    def __init__(
        self,
        optimizers: dict[str, Callable[..., torch.optim.Optimizer]],
        schedulers: dict[str, Callable[..., Any] | None] | None = None,
        scheduler_interval: str = "epoch",
        gradient_clip: dict[str, float] | None = None,
        generator_name: str = "generator",
        latent_distribution: str = "normal",
        ema_decay: float | None = None,
        num_fixed_samples: int = 64,
        sample_seed: int = 1234,
        eval_fid: bool = True,
        eval_kid: bool = False,
        fid_antialias: bool = False,
        kid_subset_size: int = 1000,
        channels_last: bool = False,
        eval_classes: bool = True,
        eval_cas: bool = False,
        classifier_epochs: int = 4,
        classifier_train_images: int | None = None,
        compile: bool | str = False,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if scheduler_interval not in SCHEDULER_INTERVALS:
            raise ValueError(f"scheduler_interval must be one of {SCHEDULER_INTERVALS}, got {scheduler_interval!r}")
        self.optimizer_factories = dict(optimizers)
        self.scheduler_factories = {k: v for k, v in (schedulers or {}).items() if v is not None}
        self.gradient_clip = {k: float(v) for k, v in (gradient_clip or {}).items() if v}
        if latent_distribution not in LATENT_DISTRIBUTIONS:
            raise GansError(f"model.latent_distribution must be one of {', '.join(LATENT_DISTRIBUTIONS)}, "
                            f"got {latent_distribution!r}")  # fmt: skip
        self.scheduler_interval, self.generator_name = scheduler_interval, generator_name
        self.latent_distribution = latent_distribution
        self.ema_decay, self.num_fixed_samples, self.sample_seed = ema_decay, num_fixed_samples, sample_seed
        self.eval_fid, self.eval_kid, self.fid_antialias = eval_fid, eval_kid, fid_antialias
        self.kid_subset_size, self.channels_last = kid_subset_size, channels_last
        self.eval_classes, self.eval_cas = eval_classes, eval_cas
        self.classifier_recipe = Recipe(epochs=classifier_epochs, max_images=classifier_train_images)
        if compile not in (False, True, *COMPILE_MODES):
            raise GansError(f"model.compile={compile!r} must be true, false or a torch.compile mode: "
                            f"{', '.join(COMPILE_MODES)}")  # fmt: skip
        # Not `self.compile`: that is nn.Module's method.
        self.compile_mode = None if compile is False else "default" if compile is True else compile
        self.ema: AveragedModel | None = None
        # Progress in the project's units: Lightning's global_step counts optimizer steps (two or
        # more per iteration here). Both are saved in checkpoints (`on_save_checkpoint`).
        self.iteration, self.images_seen = 0, 0
        # Plain dicts, not submodules: the 87 MB Inception weights stay out of every checkpoint.
        self._distances: dict[str, dict[str, FeatureDistances]] = {}  # stage -> stream -> FID/KID
        self._collect_real: dict[tuple[str, str], bool] = {}  # (reference key, stream) -> still collecting
        self._eval_batches: dict[str, int] = {}
        self._eval_latents: Tensor | None = None
        # Plain dicts too: the classifier of the real data is cached on disk, not in checkpoints.
        self._classifier: dict[str, Any] = {}  # "net", and its record ("test_accuracy", ...)
        self._class_stats: dict[str, ClassStatistics] = {}  # stage -> statistics
        self._intra_fid: dict[str, IntraFID] = {}  # stage -> per-class FID state (test, conditional)
        self._collect_class_real: dict[str, bool] = {}  # stage -> real per-class features to collect
        self._last_losses: dict[str, Tensor] = {}
        self._stepping: Update | None = None  # the update inside optimizer.step(), for its hook
        self._logging: bool | None = None  # within a training step: whether it logs
        self._direct_backward: bool | None = None  # see `backward_of`
        self._direct_step: bool | None = None  # see `step_of`
        self._toggle_plans: dict[tuple[int, ...], list[Tensor]] = {}

    def setup_sampling(self) -> None:
        """Call at the end of a subclass's __init__, once its networks exist: the EMA copy and the
        fixed grid latents (with their conditions) depend on the generating network."""
        generator = self.generating_network
        if self.ema_decay:
            # Parameters only: batch-norm statistics (and num_batches_tracked) are copied, not averaged.
            self.ema = AveragedModel(generator, multi_avg_fn=ema_with_warmup(self.ema_decay), use_buffers=False)
            self.ema.requires_grad_(False)
        self.latent_dim = getattr(generator, "latent_dim", None)
        if self.latent_dim:
            seeded = torch.Generator().manual_seed(self.sample_seed)
            self.register_buffer("fixed_z", self.draw_latent(self.num_fixed_samples, seeded, "cpu"))
            condition = self.grid_conditions(self.num_fixed_samples)
            if condition is not None:
                self.register_buffer("fixed_condition", condition)

    @property
    def generating_network(self) -> nn.Module:
        return getattr(self, self.generator_name)

    # -- the pieces a model states ----------------------------------------------------------
    @abstractmethod
    def updates(self) -> list[Update]:
        """The optimizer steps of one training iteration, in order."""

    # -- conditions: class labels, text embeddings, low-resolution images -----------------------
    def condition_of(self, batch: dict[str, Tensor]) -> Tensor | None:
        """The condition of each real item of a batch (None for unconditional models). Evaluation
        generates image i with the condition of real image i, so both sets have the same mix."""
        return None

    def sample_condition(self, n: int) -> Tensor | None:
        """n conditions for new samples when none are given (None for unconditional models)."""
        return None

    def condition_classes(self, batch: dict[str, Tensor]) -> Tensor:
        """The class labels a batch's conditions ask for (class-aware metrics of class-conditional
        models): the condition itself for a class label; a text model returns the captions' classes."""
        return self.condition_of(batch)

    def grid_conditions(self, n: int) -> Tensor | None:
        """The conditions of the fixed grid latents (None for unconditional models)."""
        return None

    # -- sampling -----------------------------------------------------------------------------
    def draw_latent(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        """n latents from the prior (`latent_distribution`), from `generator` if given."""
        shape, device = (n, self.latent_dim), self.device if device is None else device
        if self.latent_distribution == "uniform":
            return torch.rand(shape, generator=generator, device=device).mul_(2.0).sub_(1.0)
        return torch.randn(shape, generator=generator, device=device)

    def sample_latent(self, n: int) -> Tensor:
        return self.draw_latent(n)

    @property
    def sampler(self) -> nn.Module:
        """The network used for samples and evaluation: the EMA copy if kept."""
        return self.ema.module if self.ema is not None else self.generating_network

    def synthesize(self, network: nn.Module, z: Tensor, condition: Tensor | None) -> Tensor:
        """network's images for latents z (and conditions); a model whose network takes other
        inputs (a VAE's decoder, a super-resolution net) overrides this."""
        return network(z) if condition is None else network(z, condition)

    @torch.no_grad()
    def generate_from(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        """Images in [-1, 1] for latents z (and conditions), from the sampler in eval mode."""
        with eval_mode(self.sampler) as sampler:
            condition = None if condition is None else condition.to(self.device)
            return self.synthesize(sampler, z.to(self.device), condition).float()

    def generate(self, n: int, condition: Tensor | None = None) -> Tensor:
        """n new images in [-1, 1], with the given conditions or conditions drawn by the model."""
        if condition is None:
            condition = self.sample_condition(n)
        return self.generate_from(self.sample_latent(n), condition)

    def visuals(self, nrow: int, interpolation_rows: int, interpolation_steps: int) -> dict[str, tuple[Tensor, int]]:
        """Named image batches for the sample-grid callback, with their images per row: the fixed
        latents, and rows of z = t z1 + (1 - t) z2 between pairs of them (each row with the
        condition of its first end)."""
        z = self.fixed_z
        condition = getattr(self, "fixed_condition", None)
        grids = {"samples": (self.generate_from(z, condition), nrow)}
        rows = min(interpolation_rows, len(z) // 2)
        if rows and interpolation_steps > 1:
            t = torch.linspace(0.0, 1.0, interpolation_steps, device=z.device).view(1, -1, 1)
            path = (t * z[:rows].unsqueeze(1) + (1.0 - t) * z[rows : 2 * rows].unsqueeze(1)).flatten(0, 1)
            row_condition = None if condition is None else condition[:rows].repeat_interleave(interpolation_steps, 0)
            grids["interpolation"] = (self.generate_from(path, row_condition), interpolation_steps)
        return grids

    # -- optimizers -----------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizers, schedulers = [], []
        for name, make in self.optimizer_factories.items():
            optimizer = make(getattr(self, name).parameters())
            optimizers.append(optimizer)
            if name in self.scheduler_factories:
                schedulers.append(self.scheduler_factories[name](optimizer))
        return optimizers, schedulers

    def optimizer_of(self, network: str):
        """The (Lightning-wrapped) optimizer of a network."""
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        return optimizers[list(self.optimizer_factories).index(network)]

    def lr_schedulers(self):
        schedulers = super().lr_schedulers()
        return schedulers if isinstance(schedulers, list) or schedulers is None else [schedulers]

    # -- progress -------------------------------------------------------------------------------
    @property
    def kimg(self) -> float:
        """Thousands of real images shown to the model, over all processes (Karras et al.'s unit)."""
        return self.images_seen / 1000.0

    def batch_size_of(self, batch: dict[str, Tensor]) -> int:
        """Real images in a training batch on this process: the first image tensor's length."""
        return next(len(v) for v in batch.values() if isinstance(v, Tensor) and v.dim() == 4)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["progress"] = {"iteration": self.iteration, "images_seen": self.images_seen}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        progress = checkpoint.get("progress", {})
        self.iteration, self.images_seen = int(progress.get("iteration", 0)), int(progress.get("images_seen", 0))

    # -- training -----------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.compile_mode is not None:
            self.compile_networks(self.compile_mode)
        if self.trainer.limit_val_batches != 0 and self._class_evaluation():
            # Trained (first run on a data set) or loaded before training, not at the first
            # validation: a wall-time budget then counts its minutes before training time is given.
            self._real_classifier()

    def compile_networks(self, mode: str = "default") -> list[nn.Module]:
        """`torch.compile` each trained network in place (`nn.Module.compile`: the module object,
        its parameters and its state_dict keys stay the eager ones, so the optimizers, the EMA and
        checkpoints are unaffected). A container of networks (CycleGAN's ModuleDicts) has each
        member compiled, as its own forward is never called. Returns the modules compiled now."""
        compiled = []
        for name in self.optimizer_factories:
            for module in _called_modules(getattr(self, name)):
                if getattr(module, "_compiled_call_impl", None) is None:  # once, not at every fit
                    module.compile(mode=mode)
                    compiled.append(module)
        return compiled

    def on_train_batch_start(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # All training randomness (latents, label noise, dropout) follows from (seed, iteration,
        # rank): ranks draw different noise, and a run resumed from any checkpoint continues as the
        # uninterrupted run would. Seeded here, after Lightning has built the epoch's data iterator.
        base = int(os.environ.get("PL_GLOBAL_SEED", "0"))
        seed_generators((base * 1_000_003 + self.iteration * 1_009 + self.global_rank) % 2**63, self.device)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """One iteration: the model's updates in order, then the EMA and the progress counters."""
        self._logging = self._log_this_step  # asked once: the answer holds for the whole step
        try:
            batch = self.prepare_batch(batch)
            generator_stepped = False
            for update in self.updates():
                if (self.iteration + 1) % update.every == 0:
                    self.optimization_step(update, batch)
                    generator_stepped |= update.network == self.generator_name
            if self.ema is not None and generator_stepped:
                self.update_ema()
            self.iteration += 1
            self.images_seen += self.batch_size_of(batch) * self.trainer.world_size
            if self.scheduler_interval == "iteration":
                for scheduler in self.lr_schedulers() or []:
                    scheduler.step()
            if self._logging:
                self._check_finite()
                self.log_dict({"train/kimg": self.kimg, "train/iteration": float(self.iteration)})
        finally:
            self._logging = None

    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The training batch, its images NHWC if `channels_last`; models add what their updates share."""
        if not self.channels_last:
            return batch
        return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}

    def optimization_step(self, update: Update, batch: dict[str, Tensor]) -> Tensor:
        """One optimizer step on `update.loss(batch)`, with only that optimizer's parameters requiring grad."""
        optimizer = self.optimizer_of(update.network)
        # Lightning's `toggled_optimizer`, with the other optimizers' parameters listed once.
        others = self._toggle_plan(optimizer)
        states = [p.requires_grad for p in others]
        for p in others:
            p.requires_grad = False
        try:
            loss, stats = update.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            self.backward_of(loss)
            self._stepping = update
            try:
                self.step_of(optimizer)  # gradient clipping and the norm: `on_before_optimizer_step`
            finally:
                self._stepping = None
        finally:
            for p, state in zip(others, states):
                p.requires_grad = state
        self.after_step(update.network)
        self._last_losses[update.name] = loss.detach()
        if self._log_this_step:  # (the step's cached answer)
            stats = {f"{update.name}_loss": loss, **stats}
            self.log_dict({f"train/{k}": v.detach().float() for k, v in stats.items()}, prog_bar=False)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Lightning calls this inside optimizer.step(), after unscaling fp16 gradients: the norm is
        # the true one, and clipping acts on true gradients.
        update = self._stepping
        if update is None:
            return
        name = update.network
        if self._log_this_step:
            grads = [p.grad for p in getattr(self, name).parameters() if p.grad is not None]
            if grads:
                self.log(f"train/grad_norm_{update.name}", torch.nn.utils.get_total_norm(grads).float())
        if name in self.gradient_clip:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip[name], gradient_clip_algorithm="norm")

    def after_step(self, network: str) -> None:
        """Called after each optimizer step of `network` (e.g. WGAN's weight clipping of the critic)."""

    def update_ema(self) -> None:
        """Average the generating network's parameters into the EMA copy; copy its buffers (batch-norm
        running statistics are statistics of the current network, not quantities to average)."""
        self.ema.update_parameters(self.generating_network)
        for ema_buffer, buffer in zip(self.ema.module.buffers(), self.generating_network.buffers()):
            ema_buffer.copy_(buffer)

    def mean_probabilities(self, logits: dict[str, Tensor]) -> dict[str, Tensor]:
        """{name: mean sigmoid of the logits} for the log (e.g. D(x)); empty on the training steps
        that do not log: a few kernels each, which a small model pays every iteration."""
        if self._logging is False:
            return {}
        return {name: v.detach().sigmoid().mean() for name, v in logits.items()}

    @property
    def _log_this_step(self) -> bool:
        # Logging every step costs Python time that shows at GPU speeds; compute the statistics only
        # on the steps Lightning writes to the logger (`log_every_n_steps`).
        if self._logging is not None:  # inside a training step: asked once at its start
            return self._logging
        return self.trainer._logger_connector.should_update_logs

    def _toggle_plan(self, optimizer) -> list[Tensor]:
        """The parameters that `optimizer`'s step turns off: those of the other optimizers that it
        does not hold itself (shared ones keep their state), as Lightning's `toggle_optimizer`
        decides, listed once per set of optimizers rather than by walking every group each step."""
        inner = getattr(optimizer, "optimizer", optimizer)  # a LightningOptimizer's wrapped optimizer
        optimizers = self.trainer.optimizers
        key = (id(inner), *map(id, optimizers))
        plan = self._toggle_plans.get(key)
        if plan is None:
            own = {id(p) for group in inner.param_groups for p in group["params"]}
            seen: set[int] = set()
            plan = []
            for other in optimizers:
                for group in other.param_groups:
                    for p in group["params"]:
                        if id(p) not in own and id(p) not in seen:
                            seen.add(id(p))
                            plan.append(p)
            self._toggle_plans = {k: v for k, v in self._toggle_plans.items() if k[1:] == key[1:]}
            self._toggle_plans[key] = plan
        return plan

    def backward_of(self, loss: Tensor) -> None:
        """`manual_backward(loss)`, or `loss.backward()` where that is all Lightning would do: one
        device, a precision without a loss scaler, no profiler, and no hook listening to
        `on_before_backward`/`on_after_backward` (measured: Lightning's path costs ~0.15 ms a
        call in Python, which a GPU waits for at small batches). DDP (its gradient-sync
        preparation), fp16 (loss scaling) and any listener take Lightning's path."""
        if self._direct_backward is None:
            hooks = ("on_before_backward", "on_after_backward")  # `loss.backward()` calls neither
            self._direct_backward = self._lightning_would_only_call(hooks, skipped_module_hooks=(*hooks, "backward"))
        if self._direct_backward:
            loss.backward()
        else:
            self.manual_backward(loss)

    def step_of(self, optimizer) -> None:
        """`optimizer.step()` of a Lightning-wrapped optimizer, or its three parts where they are
        all it would do: the step counted (`global_step`: the manual loop's own callbacks on the
        wrapper), this module's `on_before_optimizer_step`, the wrapped optimizer's step. Same
        conditions as `backward_of`, and no callback listening to `on_before_optimizer_step`
        (measured: the wrapper's dispatch through strategy, precision plugin and closure cost
        ~0.1 ms a step here, issue 13). Any other setup takes Lightning's path."""
        if self._direct_step is None:
            self._direct_step = self._lightning_would_only_call(("on_before_optimizer_step",))
        if not self._direct_step:
            optimizer.step()
            return
        optimizer._on_before_step()
        self.on_before_optimizer_step(optimizer.optimizer)
        optimizer.optimizer.step()
        optimizer._on_after_step()

    def _lightning_would_only_call(
        self, callback_hooks: tuple[str, ...], skipped_module_hooks: tuple[str, ...] = ()
    ) -> bool:
        """Whether Lightning's path for a backward or an optimizer step does nothing but call this
        module's hooks and the plain torch operation: one device, a precision without a loss
        scaler, no profiler, no callback overriding `callback_hooks`, and no override of the
        module hooks that the direct path would not call (`skipped_module_hooks`)."""
        from lightning.pytorch.plugins.precision import MixedPrecision, Precision
        from lightning.pytorch.profilers import PassThroughProfiler
        from lightning.pytorch.strategies import SingleDeviceStrategy
        from lightning.pytorch.utilities.model_helpers import is_overridden

        trainer = self.trainer
        precision = trainer.strategy.precision_plugin
        unscaled = type(precision) is Precision or (type(precision) is MixedPrecision and precision.scaler is None)
        listened = any(is_overridden(h, callback, L.Callback) for callback in trainer.callbacks for h in callback_hooks)
        listened |= any(is_overridden(h, self, L.LightningModule) for h in skipped_module_hooks)
        return (
            type(trainer.strategy) is SingleDeviceStrategy
            and unscaled
            and isinstance(trainer.profiler, PassThroughProfiler)
            and trainer.gradient_clip_val is None
            and not listened
        )

    def on_train_start(self) -> None:
        # decided again for this fit's strategy, precision and callbacks
        self._direct_backward = self._direct_step = None
        self._toggle_plans = {}

    def _check_finite(self) -> None:
        """Stop every process when a loss on any process is NaN/inf (a collective call under DDP:
        one process raising alone would leave the others waiting forever). Every process raises
        the same message, naming the loss and the process where it turned."""
        bad = {k: float(v) for k, v in self._last_losses.items() if not torch.isfinite(v).all()}
        if not self.trainer.strategy.reduce_boolean_decision(bool(bad), all=False):
            return
        rank, where = self.global_rank, ""
        if dist.is_available() and dist.is_initialized() and self.trainer.world_size > 1:
            reports = [None] * self.trainer.world_size
            dist.all_gather_object(reports, bad)
            rank, bad = next((r, report) for r, report in enumerate(reports) if report)
            where = f" on process {rank}"
        name, value = next(iter(bad.items()))
        ckpt = getattr(self.trainer.checkpoint_callback, "dirpath", None)
        raise NonFiniteLossError(
            f"{name}_loss became {value}{where} at iteration {self.iteration}: training stopped; the last good "
            f"checkpoint is in {ckpt or 'the run dir'}. Lower the learning rate or resume from it with ckpt_path=..."
        )

    def on_train_epoch_end(self) -> None:
        self._check_finite()
        if self.scheduler_interval == "epoch":
            for scheduler in self.lr_schedulers() or []:
                scheduler.step()

    # -- evaluation: FID/KID against the data module's validation or test images ----------------
    def evaluation_pairs(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """{stream: (real images, generated images)} for an evaluation batch; each stream gets its
        own FID (`fid` for the stream "", `fid_<name>` otherwise, and `fid` as their mean).

        Here, for latent models: latent i is fixed for evaluation image i, so every process and
        every run scores the same latents, and generated image i takes the condition of real image
        i. Image-to-image models return one stream per direction.
        """
        z = self._eval_latents[batch["index"]]
        return {"": (batch["image"], self.generate_from(z, self.condition_of(batch)))}

    def prepare_evaluation(self, batch: dict[str, Tensor]) -> None:
        """Work an evaluation batch's metrics share, done at the run's precision before the metrics
        (e.g. translations cached in the batch); nothing here."""

    def evaluate_batch_extra(self, batch: dict[str, Tensor], prefix: str) -> None:
        """Further metrics of an evaluation batch (e.g. PSNR against a ground truth); none here.
        Runs with autocast off, so metrics are float32 under every precision."""

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
        return self.eval_fid and not self.trainer.sanity_checking

    def _start_evaluation(self, stage: str) -> None:
        if self._last_losses:
            self._check_finite()
        self._broadcast_buffers()
        self._eval_batches[stage] = 0
        if self.latent_dim:
            n = self.trainer.datamodule.eval_size(stage)
            if self._eval_latents is None or len(self._eval_latents) != n:
                seeded = torch.Generator().manual_seed(self.sample_seed + 1)
                self._eval_latents = self.draw_latent(n, seeded, "cpu")
            self._eval_latents = self._eval_latents.to(self.device)
        for distances in self._distances.get(stage, {}).values():
            distances.to(self.device)
        if self._class_evaluation():
            self._start_class_evaluation(stage)

    def _stream_distances(self, stage: str, stream: str) -> FeatureDistances:
        """The FID/KID state of one stream, created on first use with cached real features if any."""
        streams = self._distances.setdefault(stage, {})
        if stream not in streams:
            inception = next((d.inception for s in self._distances.values() for d in s.values()), None)
            distances = FeatureDistances(self.fid_antialias, self.eval_kid, self.kid_subset_size, inception)
            distances = distances.to(self.device)
            key = self._reference_key(stage, stream)
            self._collect_real[key, stream] = not distances.load_real(key)  # collective: rank 0 decides
            streams[stream] = distances
        return streams[stream]

    def evaluation_distances(self, stage: str, stream: str = "") -> FeatureDistances | None:
        """The FID/KID state of a stream during an evaluation ("validate" or "test"), None before its
        first batch; read it before the module's epoch end, which resets the generated side (the
        health monitor reads the feature spread from it)."""
        return self._distances.get(stage, {}).get(stream)

    def reference_stream(self, stream: str) -> str:
        """The stream whose real images `stream` is scored against: its own, unless a model's
        streams share real images (an autoencoder's reconstructions and samples)."""
        return stream

    def _reference_key(self, stage: str, stream: str) -> str:
        """The name of a stream's set of real features: the evaluation images' fingerprint, and the
        reference stream when its real images are not the plain evaluation images."""
        fingerprint, reference = self.trainer.datamodule.eval_fingerprint(stage), self.reference_stream(stream)
        return f"{fingerprint}-{reference}" if reference else fingerprint

    def _evaluate_batch(self, batch: dict[str, Tensor], stage: str, prefix: str) -> None:
        if self.trainer.sanity_checking:
            return
        self._eval_batches[stage] = self._eval_batches.get(stage, 0) + 1
        # Generated at the run's precision; the metrics below run in float32.
        self.prepare_evaluation(batch)
        pairs = self.evaluation_pairs(batch) if self.eval_fid else {}
        intra_fid = self._intra_fid.get(stage)
        real_features: dict[str, Tensor] = {}  # reference key -> this batch's, for every stream scored on it
        for stream, (reals, fakes) in pairs.items():  # FeatureDistances computes in float32 itself
            distances = self._stream_distances(stage, stream)
            key = self._reference_key(stage, stream)
            main_with_classes = stream == "" and intra_fid is not None
            need_real = self._collect_real[key, stream] or (main_with_classes and self._collect_class_real[stage])
            if need_real and key not in real_features:
                reals = to_uint8(reals)
                with exact_float32(self.device):  # (a batch may hold no image of a domain: nothing to add)
                    real_features[key] = distances.inception(reals) if len(reals) else reals
            fakes = to_uint8(fakes)
            if main_with_classes:
                # One Inception pass per image feeds FID and intra-FID alike.
                with exact_float32(self.device):
                    fake_features = distances.inception(fakes)
                distances.update(fake_features, real=False)
                intra_fid.update(fake_features, self.condition_classes(batch), real=False)
                if self._collect_class_real[stage]:
                    intra_fid.update(real_features[key], batch["label"], real=True)
            else:
                distances.update(fakes, real=False)
            if self._collect_real[key, stream]:
                distances.update(real_features[key], real=True)
            distances.inception.forget()
            if stream == "" and stage in self._class_stats:
                self._update_class_statistics(stage, batch, fakes)
        with exact_float32(self.device):  # PSNR, SSIM, L1: float32 under every precision
            self.evaluate_batch_extra(batch, prefix)  # cheap metrics run with or without FID

    def _evaluation_complete(self, stage: str) -> bool:
        """Whether every process saw every batch of its evaluation loader (limit_val_batches and
        friends cut it short): only a complete reference set is cached."""
        loader = self.trainer.val_dataloaders if stage == "validate" else self.trainer.test_dataloaders
        complete = loader is not None and self._eval_batches.get(stage, 0) == len(loader)
        return self.trainer.strategy.reduce_boolean_decision(complete, all=True)

    def _finish_evaluation(self, stage: str, prefix: str) -> None:
        if not self._evaluating():
            return
        complete = self._evaluation_complete(stage)
        fids, streams = [], list(self._distances.get(stage, {}).items())
        for stream, distances in streams:
            key = self._reference_key(stage, stream)
            n_real, n_fake = distances.synced_counts()
            if n_fake == 0:  # a stream this evaluation did not feed (ProGAN: the side it has grown past)
                continue
            if self._collect_real[key, stream]:
                if complete:
                    distances.save_real(key)
                    self._collect_real[key, stream] = False
                else:
                    distances.discard_collected_real()
                    del self._distances[stage][stream]  # an incomplete reference set is not reused
            scores = distances.compute()
            distances.reset()
            suffix = f"_{stream}" if stream else ""
            scores["fid_samples"] = torch.tensor(float(n_fake), device=self.device)  # each stream names its count
            self.log_dict({f"{prefix}/{k}{suffix}": v for k, v in scores.items()}, sync_dist=True)
            fids.append(scores["fid"])
            if self.global_rank == 0:
                log.info(
                    f"{prefix}/fid{suffix} = {float(scores['fid']):.3f} ({n_fake} generated vs {n_real} real "
                    f"{stage} images, Inception 2015-12-05, float32, {distances.protocol} resize) "
                    f"at iteration {self.iteration} ({self.kimg:.1f} kimg)"
                )
        if len(fids) > 1 and "" not in dict(streams):
            # Two translation directions: `fid` is their mean. Beside a main stream (an autoencoder's
            # samples, with its reconstructions as a second stream) `fid` is the main stream's.
            self.log(f"{prefix}/fid", torch.stack(fids).mean(), sync_dist=True)
        if stage in self._class_stats:
            self._finish_class_evaluation(stage, prefix, complete)

    # -- class-aware evaluation: a classifier of the real data judges the generated images --------
    @property
    def _conditional_on_class(self) -> bool:
        # A model whose condition is the class label sets `class_conditional = True`.
        return bool(getattr(self, "class_conditional", False))

    def _class_evaluation(self) -> bool:
        """Whether the class-aware metrics apply: `eval_classes`, an evaluation with FID, a latent
        model (not image-to-image), and data with at least two classes."""
        datamodule = self.trainer.datamodule
        classes = getattr(datamodule, "num_classes", 0) or 0
        return self.eval_classes and self._evaluating() and bool(self.latent_dim) and classes >= 2

    def _class_features_path(self, stage: str):
        """The cache of the real evaluation images' Inception features with their labels (intra-FID)."""
        return self._stream_distances(stage, "").cache_path(f"{self._reference_key(stage, '')}-classes")

    def _start_class_evaluation(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        self._real_classifier()
        num_classes = int(datamodule.num_classes)
        self._class_stats[stage] = ClassStatistics(num_classes, sync_on_compute=True).to(self.device)
        if stage == "test" and self._conditional_on_class and stage not in self._intra_fid:
            intra_fid = IntraFID(num_classes)
            self._collect_class_real[stage] = not intra_fid.load_real(self._class_features_path(stage))
            self._intra_fid[stage] = intra_fid

    def _real_classifier(self) -> nn.Module:
        if "net" not in self._classifier:  # collective: rank 0 loads or trains, and broadcasts
            net, record = real_classifier(self.trainer.datamodule, self.classifier_recipe, self.device)
            self._classifier.update(record, net=net)
        return self._classifier["net"].to(self.device)

    def _update_class_statistics(self, stage: str, batch: dict[str, Tensor], fakes: Tensor) -> None:
        net = self._classifier["net"]
        requested = self.condition_classes(batch) if self._conditional_on_class else None
        self._class_stats[stage].update(predict(net, fakes), predict(net, batch["image"]), batch["label"], requested)

    def class_names(self, num_classes: int) -> list[str]:
        """The data's class names (grids, logs), or the indices where the data has none."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        names = list(getattr(datamodule, "class_names", None) or [])
        return names if len(names) == num_classes else [str(k) for k in range(num_classes)]

    def _class_names(self, num_classes: int) -> list[str]:
        # "T-shirt/top" would open a section of its own in W&B's metric tree.
        names = self.class_names(num_classes)
        return ["".join(c if c.isalnum() or c in "-_." else "_" for c in name) for name in names]

    def _finish_class_evaluation(self, stage: str, prefix: str, complete: bool) -> None:
        stats = self._class_stats.pop(stage)
        scores = stats.compute()  # summed over processes
        n = int(scores["generated_total"])
        values = {"classifier_acc_real": scores["real_acc"]}
        if self._conditional_on_class:
            values["class_acc"] = scores["class_acc"]
            summary = f"{prefix}/class_acc = {float(values['class_acc']):.2%} on {n} generated images"
        else:
            values["class_coverage"] = scores["coverage"]
            names = self._class_names(stats.num_classes)
            values.update({f"class_fraction/{name}": p for name, p in zip(names, scores["generated_hist"])})
            summary = f"{prefix}/class_coverage = {float(values['class_coverage']):.3f} on {n} generated images"
        intra_fid = self._intra_fid.get(stage)
        if intra_fid is not None:
            if self._collect_class_real[stage] and complete:
                intra_fid.save_real(self._class_features_path(stage))
                self._collect_class_real[stage] = False
            mean, _ = intra_fid.compute()
            intra_fid.reset_generated()
            if self._collect_class_real[stage]:  # an incomplete real set is not reused
                del self._intra_fid[stage]
            if not mean.isnan():
                values["intra_fid"] = mean
                summary += f", {prefix}/intra_fid = {float(mean):.3f}"
        if self.eval_cas and stage == "test" and self._conditional_on_class:
            values["cas"] = torch.tensor(self._classification_accuracy_score())
            summary += f", {prefix}/cas = {float(values['cas']):.2%}"
        self.log_dict({f"{prefix}/{k}": v.float().to(self.device) for k, v in values.items()}, sync_dist=True)
        if self.global_rank == 0:
            log.info(
                f"{summary} (classifier accuracy on the real {stage} images {float(scores['real_acc']):.2%}) "
                f"at iteration {self.iteration}"
            )

    def _classification_accuracy_score(self) -> float:
        """CAS with as many generated images per class as the real classifier learned from, so it
        reads against that classifier's test accuracy; computed on rank 0, shared with the others."""
        datamodule = self.trainer.datamodule
        score = 0.0
        if self.global_rank == 0:
            _, labels = training_subset(datamodule, self.classifier_recipe)
            counts = torch.bincount(labels.cpu(), minlength=int(datamodule.num_classes)).tolist()
            score = classification_accuracy_score(
                self, datamodule, counts, self.classifier_recipe, self.device, seed=self.sample_seed
            )
            log.info(
                f"CAS {score:.2%}: a classifier trained on {sum(counts)} generated images, tested on the "
                f"{len(datamodule.test_images)} real test images; trained on as many real images, "
                f"{self._classifier['test_accuracy']:.2%}"
            )
        return float(self.trainer.strategy.broadcast(score, src=0))

    def _broadcast_buffers(self) -> None:
        # DDP keeps batch-norm running statistics per process; give every process rank 0's, so
        # each rank's share of evaluation samples comes from the same network.
        if dist.is_available() and dist.is_initialized() and self.trainer.world_size > 1:
            for buffer in self.buffers():
                dist.broadcast(buffer, src=0)


# Lightning reads `training_step`'s signature at every batch (`_build_kwargs`, to pass batch_idx);
# `inspect` returns a stored `__signature__` instead of rebuilding it (~1% of a small model's step).
GenerativeModule.training_step.__signature__ = inspect.signature(GenerativeModule.training_step)


class AdversarialModule(GenerativeModule):
    """A generator and a discriminator, trained in turns: `n_critic` discriminator updates per
    generator update. A model states `discriminator_loss(batch)` and `generator_loss(batch)`.

    Args (besides `GenerativeModule`'s):
        generator, discriminator: the networks (`_target_` configs, built by Hydra).
        optimizer_g, optimizer_d: partial optimizers (`_partial_: true`), called with parameters.
        scheduler_g, scheduler_d: optional partial LR schedulers (stepped per `scheduler_interval`).
        n_critic: discriminator updates per generator update.
        gradient_clip_g, gradient_clip_d: optional max gradient norms of each network.
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
        gradient_clip_g: float | None = None,
        gradient_clip_d: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(
            optimizers={"generator": optimizer_g, "discriminator": optimizer_d},
            schedulers={"generator": scheduler_g, "discriminator": scheduler_d},
            gradient_clip={"generator": gradient_clip_g, "discriminator": gradient_clip_d},
            **kwargs,
        )
        if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
            raise GansError(f"model.n_critic={n_critic!r} must be a positive integer (discriminator updates per "
                            "generator update), e.g. model.n_critic=5")  # fmt: skip
        # Networks and partial callables are rebuilt from the Hydra config; keeping only plain
        # values in the checkpoint lets it load with torch.load(weights_only=True).
        self.save_hyperparameters(
            ignore=["generator", "discriminator", "optimizer_g", "optimizer_d", "scheduler_g", "scheduler_d"]
        )
        self.generator, self.discriminator = generator, discriminator
        self.n_critic = n_critic
        self.setup_sampling()

    @abstractmethod
    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The discriminator's loss on a real batch, and statistics to log (e.g. D(x), D(G(z)))."""

    @abstractmethod
    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The generator's loss for a batch, and statistics to log."""

    def updates(self) -> list[Update]:
        """Goodfellow et al. 2014, Algorithm 1: the discriminator's step(s), then the generator's."""
        return [
            Update("d", "discriminator", self.discriminator_loss),
            Update("g", "generator", self.generator_loss, every=self.n_critic),
        ]

