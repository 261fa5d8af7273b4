"""A training-health monitor for the adversarial models: the lecture's failure modes as warnings.

The lecture this project follows names three ways GAN training fails: vanishing gradients ("if the
discriminator is too good, training the generator may fail: an optimal discriminator gives the
generator too little information"), failure to converge, and mode collapse ("the generator
produces only a very limited set of images"). `TrainingHealth` watches for each from numbers the
base already computes, and when one starts it writes one warning line that names the symptom with
its numbers and the lecture's stabilising tricks that fit it and that the run does not use yet.

Signals, on the steps Lightning writes to the logger (`log_every_n_steps`), over the last
`window_iterations` iterations:
- the discriminator's mean outputs D(x) and D(G(z)) (`train/D(x)`, `train/D(G(z))`);
- the generator's gradient norm (`train/grad_norm_g`);
- the oscillation of each loss: its standard deviation over the window (`health/oscillation_g`, `_d`).

Signals at every validation:
- sample diversity: the mean squared pairwise distance of the generated images' Inception features
  over that of the real images (`health/diversity_ratio`). It costs nothing: for n features,
  mean_{i != j} |f_i - f_j|^2 = 2 tr(S), S their unbiased covariance, and FID already keeps the
  sums whose diagonal gives tr(S), for the generated and the real set alike (`pairwise_spread`);
- on labelled data, the class coverage the base logs (`val/class_coverage`);
- FID (`val/fid`).

Diagnoses, logged as `health/<name>` (1 during an episode, else 0) and warned once per episode:
- `vanishing_gradients`: for `window_iterations` iterations, the discriminator wins (D(x) >=
  `d_real_above` and D(G(z)) <= `d_fake_below`) or the generator's gradient norm stays below
  `grad_norm_g_below`;
- `collapse`: at `collapse_evaluations` validations in a row, the diversity ratio is below
  `diversity_below` or the class coverage below `coverage_below` (latent models only);
- `divergence`: FID rose at each of the last `fid_rising_evaluations` validations, by
  `fid_rise_fraction` of its value in all; or a loss turned NaN/inf (the base stops the run then;
  the monitor adds the diagnosis and its remedies).

`stop_on` lists diagnoses that end the run early (a sweep saves its budget): a stop during
training validates and checkpoints that point, as `IterationLimit` does; a stop at a validation
keeps that validation's checkpoint, as early stopping does.

Models that do not log a signal (an autoencoder, a translation model's other outputs) simply get
no diagnosis from it: the monitor only acts on `AdversarialModule`s and on the signals present.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from gans import losses
from gans.callbacks.progress import stop_training
from gans.errors import GansError, NonFiniteLossError
from gans.models.base import AdversarialModule

log = logging.getLogger(__name__)
DIAGNOSES = ("vanishing_gradients", "collapse", "divergence")
# The base logs each update's statistics as train/<name>; these are the adversarial ones.
D_REAL, D_FAKE, GRAD_G = "train/D(x)", "train/D(G(z))", "train/grad_norm_g"
LOSSES = {"g": "train/g_loss", "d": "train/d_loss"}


# -- the signals, as plain functions of numbers ----------------------------------------------------
def pairwise_spread(feature_sum: Tensor, outer_sum: Tensor, n: int | Tensor) -> float:
    """The mean squared Euclidean distance over pairs i != j of n feature vectors, from their sum
    s = sum_i f_i and the sum of their outer products sum_i f_i f_i^T (FID's running states; only
    its trace is read): sum_{i,j} |f_i - f_j|^2 = 2 n sum_i |f_i|^2 - 2 |s|^2, over n (n - 1) pairs.
    NaN for fewer than two vectors."""
    n = float(n)
    if n < 2:
        return math.nan
    feature_sum = feature_sum.double()
    squared_norms = outer_sum.double().diagonal().sum() if outer_sum.dim() == 2 else outer_sum.double().sum()
    spread = float(2.0 * (n * squared_norms - feature_sum.dot(feature_sum)) / (n * (n - 1.0)))
    return max(spread, 0.0)  # identical vectors: rounding may leave a tiny negative difference


def diversity_ratio(generated_spread: float, real_spread: float) -> float:
    """Generated over real mean squared pairwise distance: about 1 for a generator as varied as
    the data, 0 for one that draws a single image; NaN when either side is unknown."""
    if not (math.isfinite(generated_spread) and math.isfinite(real_spread)) or real_spread <= 0:
        return math.nan
    return generated_spread / real_spread


def discriminator_wins(d_real: float, d_fake: float, real_above: float, fake_below: float) -> bool:
    """The lecture's "discriminator too good": it calls real images real and generated ones fake
    with confidence."""
    return d_real >= real_above and d_fake <= fake_below


def fid_rising(fids: Sequence[float], evaluations: int, rise_fraction: float) -> bool:
    """Whether FID rose at each of the last `evaluations` validations (so over evaluations + 1
    values), by at least `rise_fraction` of the first of them in all."""
    if evaluations < 1 or len(fids) < evaluations + 1:
        return False
    last = list(fids)[-(evaluations + 1) :]
    rising = all(b > a for a, b in zip(last, last[1:]))
    return rising and last[-1] - last[0] >= rise_fraction * abs(last[0])


def oscillation(values: Iterable[float]) -> float:
    """A loss's oscillation over a window: its standard deviation (NaN under two values)."""
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return math.nan
    return float(torch.tensor(values, dtype=torch.float64).std())


# -- the lecture's remedies, offered where they fit and are not on already --------------------------
def _uses(network: nn.Module | None, kinds: tuple[type, ...]) -> bool:
    return network is not None and any(isinstance(m, kinds) for m in network.modules())


def _adam_beta1(module: L.LightningModule) -> list[float]:
    """beta1 of each Adam optimizer of the module (empty before `configure_optimizers`)."""
    try:
        optimizers = module.optimizers()
    except (RuntimeError, AttributeError):  # not attached to a trainer (unit tests)
        return []
    optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
    betas = []
    for optimizer in optimizers:
        inner = getattr(optimizer, "optimizer", optimizer)
        if isinstance(inner, (torch.optim.Adam, torch.optim.AdamW)):
            betas.append(float(inner.param_groups[0]["betas"][0]))
    return betas


def remedies(module: L.LightningModule, diagnosis: str) -> list[str]:
    """The lecture's tricks (and friends of GANs) that address `diagnosis` and that `module` does
    not use already, each with the override that turns it on where the model has one."""
    dcgan_like = hasattr(module, "real_label") and hasattr(module, "generator_objective")
    generator, discriminator = getattr(module, "generator", None), getattr(module, "discriminator", None)
    plain_labels = dcgan_like and module.real_label == (1.0, 1.0) and module.fake_label == (0.0, 0.0)
    critic = getattr(module, "clip_value", "absent") != "absent"  # WGAN and WGAN-GP
    conditional = bool(getattr(module, "class_conditional", False))
    found: list[str] = []
    if diagnosis == "vanishing_gradients":
        if dcgan_like and module.generator_objective is losses.minimax_generator_loss:
            found.append("the non-saturating generator loss, ln D(G(z)) as the lecture's generator loss "
                         "(model.generator_objective=nonsaturating)")  # fmt: skip
        if plain_labels:
            found.append("noisy labels, [0.7, 1.2] for real and [0, 0.3] for generated images "
                         "(model.real_label=[0.7,1.2] model.fake_label=[0.0,0.3])")  # fmt: skip
        if _uses(discriminator, (nn.ReLU,)):
            found.append("LeakyReLU instead of ReLU in the discriminator (model.discriminator.activation=leaky_relu)")
        if not critic:
            found.append("a Wasserstein critic, whose gradient does not vanish when it wins (model=wgan_gp)")
    elif diagnosis == "collapse":
        if plain_labels:
            found.append("noisy labels (model.real_label=[0.7,1.2] model.fake_label=[0.0,0.3])")
        if not critic:
            found.append("a Wasserstein critic (model=wgan_gp; Arjovsky et al. 2017 saw no mode collapse)")
        if not conditional:
            found.append("a conditional GAN, which draws every class it is asked for (model=cgan)")
        found.append("a progressively grown GAN, which the lecture credits with more varied images (model=progan)")
    elif diagnosis == "divergence":
        if any(abs(beta - 0.5) > 1e-9 for beta in _adam_beta1(module)):
            found.append("Adam with momentum beta1 = 0.5 (model.optimizer_g.betas=[0.5,0.999] "
                         "model.optimizer_d.betas=[0.5,0.999])")  # fmt: skip
        if plain_labels:
            found.append("noisy labels (model.real_label=[0.7,1.2] model.fake_label=[0.0,0.3])")
        if generator is not None and not _uses(generator, (nn.modules.batchnorm._BatchNorm,)):
            found.append("batch normalisation (model.generator.norm=batch model.discriminator.norm=batch)")
        if _uses(discriminator, (nn.ReLU,)):
            found.append("LeakyReLU instead of ReLU in the discriminator (model.discriminator.activation=leaky_relu)")
        if getattr(module, "mixed_batches", False):
            found.append("separate batches of real and generated images (model.mixed_batches=false)")
        if getattr(module, "output", "tanh") != "tanh":
            found.append("images in [-1, 1] from a tanh generator (model.output=tanh)")
    return found


def remedy_text(module: L.LightningModule, diagnosis: str) -> str:
    found = remedies(module, diagnosis)
    if not found:
        return "every trick of the lecture that fits is on already"
    return "try " + "; ".join(found)


# -- the callback -----------------------------------------------------------------------------------
@dataclass
class _Episode:
    """A diagnosis's state: whether an episode is on, and since when the condition has held."""

    active: bool = False
    since: int | None = None  # the iteration at which the condition started holding
    count: int = 0  # consecutive evaluations it held (evaluation diagnoses)
    episodes: int = 0


@dataclass
class _Window:
    """The logged values of the last `window_iterations` iterations, as (iteration, value)."""

    values: dict[str, deque] = field(default_factory=dict)

    def add(self, name: str, iteration: int, value: float, span: int) -> None:
        series = self.values.setdefault(name, deque())
        series.append((iteration, value))
        while series and series[0][0] <= iteration - span:
            series.popleft()

    def last(self, name: str) -> list[float]:
        return [v for _, v in self.values.get(name, ())]


class TrainingHealth(L.Callback):
    """Watch an adversarial run for the lecture's failure modes (module docstring); warn once per
    episode, log `health/*`, and stop on the diagnoses in `stop_on`.

    Args:
        window_iterations: how long a step condition must hold before it is diagnosed (iterations),
            and the window of the oscillation signal.
        d_real_above, d_fake_below: the discriminator wins when D(x) >= d_real_above and
            D(G(z)) <= d_fake_below.
        grad_norm_g_below: a generator gradient norm under this counts as vanished.
        diversity_below: a diversity ratio (generated over real feature spread) under this is collapse.
        coverage_below: a class coverage under this is collapse (0.1 = one class of ten).
        collapse_evaluations: validations in a row at which collapse must show.
        fid_rising_evaluations: validations at which FID must have risen in a row for divergence.
        fid_rise_fraction: the least total rise over them, as a fraction of the FID they started at.
        stop_on: diagnoses that stop the run: any of vanishing_gradients, collapse, divergence.
        enabled: False turns the monitor off.
    """

    def __init__(
        self,
        window_iterations: int = 500,
        d_real_above: float = 0.9,
        d_fake_below: float = 0.1,
        grad_norm_g_below: float = 1e-4,
        diversity_below: float = 0.3,
        coverage_below: float = 0.5,
        collapse_evaluations: int = 2,
        fid_rising_evaluations: int = 3,
        fid_rise_fraction: float = 0.1,
        stop_on: Sequence[str] = (),
        enabled: bool = True,
    ) -> None:
        unknown = sorted(set(stop_on) - set(DIAGNOSES))
        if unknown:
            raise GansError(f"callbacks.health.stop_on names {', '.join(unknown)}: the diagnoses are "
                            f"{', '.join(DIAGNOSES)}, e.g. callbacks.health.stop_on=[collapse]")  # fmt: skip
        for key, value in (("window_iterations", window_iterations), ("collapse_evaluations", collapse_evaluations),
                           ("fid_rising_evaluations", fid_rising_evaluations)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GansError(f"callbacks.health.{key}={value!r} must be a positive integer")
        self.window_iterations, self.enabled = window_iterations, enabled
        self.d_real_above, self.d_fake_below, self.grad_norm_g_below = d_real_above, d_fake_below, grad_norm_g_below
        self.diversity_below, self.coverage_below = diversity_below, coverage_below
        self.collapse_evaluations = collapse_evaluations
        self.fid_rising_evaluations, self.fid_rise_fraction = fid_rising_evaluations, fid_rise_fraction
        self.stop_on = tuple(stop_on)
        self.episodes = {name: _Episode() for name in DIAGNOSES}
        self.window = _Window()
        self.fids: list[float] = []
        self.evaluation: dict[str, float] = {}  # this validation's signals, from its epoch end
        self.warnings: list[str] = []  # every warning line of this run, in order (tests, reports)

    # -- where it applies ----------------------------------------------------------------------
    def _watching(self, trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
        return self.enabled and isinstance(pl_module, AdversarialModule) and trainer.state.fn == "fit"

    # -- steps ---------------------------------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._watching(trainer, pl_module) or not trainer._logger_connector.should_update_logs:
            return
        metrics = trainer.callback_metrics  # this step's values: the base logged them in training_step
        names = [D_REAL, D_FAKE, GRAD_G, *LOSSES.values()]
        present = [name for name in names if name in metrics]
        if not present:
            return
        # The mean over processes: every process then takes the same decisions (stops together).
        values = torch.stack([metrics[name].detach().float().reshape(()).cpu() for name in present])
        values = trainer.strategy.reduce(values.to(pl_module.device), reduce_op="mean").cpu().tolist()
        signals = dict(zip(present, values))
        iteration = pl_module.iteration
        for name, value in signals.items():
            self.window.add(name, iteration, value, self.window_iterations)
        logged: dict[str, float] = {}
        for short, name in LOSSES.items():
            spread = oscillation(self.window.last(name))
            if name in signals and math.isfinite(spread):
                logged[f"health/oscillation_{short}"] = spread
        wins = D_REAL in signals and D_FAKE in signals and discriminator_wins(
            signals[D_REAL], signals[D_FAKE], self.d_real_above, self.d_fake_below
        )
        vanished = GRAD_G in signals and signals[GRAD_G] < self.grad_norm_g_below
        held = self._held("vanishing_gradients", wins or vanished, iteration)
        logged["health/vanishing_gradients"] = float(held)
        pl_module.log_dict(logged, on_step=True, on_epoch=False)
        if held:
            self._start(trainer, pl_module, "vanishing_gradients", self._vanishing_message(signals, wins, iteration),
                        during_training=True)  # fmt: skip
        else:
            self._end(pl_module, "vanishing_gradients")

    def _held(self, name: str, condition: bool, iteration: int) -> bool:
        """Whether a step condition has held at every logged step for `window_iterations`."""
        episode = self.episodes[name]
        if not condition:
            episode.since = None
            return False
        if episode.since is None:
            episode.since = iteration
        return episode.active or iteration - episode.since >= self.window_iterations

    def _vanishing_message(self, signals: dict[str, float], wins: bool, iteration: int) -> str:
        since = self.episodes["vanishing_gradients"].since
        parts = []
        if D_REAL in signals and D_FAKE in signals:
            parts.append(f"D(x)={signals[D_REAL]:.5g}, D(G(z))={signals[D_FAKE]:.3g}")
        if GRAD_G in signals:
            parts.append(f"generator gradient norm {signals[GRAD_G]:.2g}")
        symptom = "discriminator wins" if wins else "generator gradient vanished"
        return (f"{symptom}: {', '.join(parts)} for {iteration - since} iterations (since iteration {since}): "
                "vanishing gradients (an optimal "
                "discriminator leaves the generator too little to learn from)")  # fmt: skip

    # -- validations ---------------------------------------------------------------------------
    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        # Callbacks run before the module's epoch end: FID's generated-side sums are still there.
        self.evaluation = {}
        if not self._watching(trainer, pl_module) or trainer.sanity_checking or not pl_module.latent_dim:
            return
        distances = pl_module.evaluation_distances("validate", "")
        if distances is None:  # (no per-process count here: every process must join the reduce below)
            return
        fid = distances.fid
        sums = torch.cat([
            fid.real_features_sum, fid.real_features_cov_sum.diagonal().sum().view(1),
            fid.real_features_num_samples.double().view(1),
            fid.fake_features_sum, fid.fake_features_cov_sum.diagonal().sum().view(1),
            fid.fake_features_num_samples.double().view(1),
        ]).double()  # fmt: skip
        sums = trainer.strategy.reduce(sums, reduce_op="sum")  # the states are per process until compute
        d = fid.real_features_sum.numel()
        real, fake = sums[: d + 2], sums[d + 2 :]
        real_spread = pairwise_spread(real[:d], real[d : d + 1], real[d + 1])
        fake_spread = pairwise_spread(fake[:d], fake[d : d + 1], fake[d + 1])
        self.evaluation["diversity_ratio"] = diversity_ratio(fake_spread, real_spread)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._watching(trainer, pl_module) or trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics  # now with the module's val/fid and val/class_coverage
        logged: dict[str, float] = {}
        ratio = self.evaluation.get("diversity_ratio", math.nan)
        coverage = float(metrics["val/class_coverage"]) if "val/class_coverage" in metrics else math.nan
        if math.isfinite(ratio):
            logged["health/diversity_ratio"] = ratio
        collapse_shown = (math.isfinite(ratio) and ratio < self.diversity_below) or (
            math.isfinite(coverage) and coverage < self.coverage_below
        )
        collapse = self._evaluations_held("collapse", collapse_shown)
        if math.isfinite(ratio) or math.isfinite(coverage):
            logged["health/collapse"] = float(collapse)
        fid = float(metrics["val/fid"]) if "val/fid" in metrics else math.nan
        if math.isfinite(fid):  # ProGAN logs inf before its final side: no FID to compare yet
            self.fids.append(fid)
            diverging = fid_rising(self.fids, self.fid_rising_evaluations, self.fid_rise_fraction)
            logged["health/divergence"] = float(diverging)
        else:
            diverging = self.episodes["divergence"].active
        self._log_now(trainer, logged)
        if collapse:
            numbers = []
            if math.isfinite(ratio):
                numbers.append(f"sample diversity {ratio:.2f} of the real images' (Inception features)")
            if math.isfinite(coverage):
                numbers.append(f"class coverage {coverage:.2f}")
            message = (f"mode collapse: {', '.join(numbers)} at {self.episodes['collapse'].count} validations in "
                       f"a row, up to iteration {pl_module.iteration}: the generator draws a narrow set of images")  # fmt: skip
            self._start(trainer, pl_module, "collapse", message, during_training=False)
        else:
            self._end(pl_module, "collapse")
        if diverging and "health/divergence" in logged:
            last = self.fids[-(self.fid_rising_evaluations + 1) :]
            swings = self._oscillation_text()
            message = (f"FID rising at {self.fid_rising_evaluations} validations in a row: "
                       f"{' -> '.join(f'{v:.1f}' for v in last)} at iteration {pl_module.iteration}{swings}: "
                       "the training is not converging")  # fmt: skip
            self._start(trainer, pl_module, "divergence", message, during_training=False)
        elif "health/divergence" in logged:
            self._end(pl_module, "divergence")

    def _evaluations_held(self, name: str, shown: bool) -> bool:
        episode = self.episodes[name]
        episode.count = episode.count + 1 if shown else 0
        return episode.count >= self.collapse_evaluations

    def _oscillation_text(self) -> str:
        spreads = {short: oscillation(self.window.last(name)) for short, name in LOSSES.items()}
        shown = [f"{short}_loss {v:.3g}" for short, v in spreads.items() if math.isfinite(v)]
        return f" (loss standard deviation over the last {self.window_iterations} iterations: {', '.join(shown)})" if shown else ""

    @staticmethod
    def _log_now(trainer: L.Trainer, metrics: dict[str, float]) -> None:
        # `self.log` is not allowed in on_validation_end, where FID is first known; write to the
        # loggers at the step validation logged at, as Lightning's LearningRateMonitor does.
        if not metrics:
            return
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    # -- a loss turned NaN/inf: the base stops; say what it means ------------------------------
    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, NonFiniteLossError) or not self._watching(trainer, pl_module):
            return
        self._log_now(trainer, {"health/divergence": 1.0})
        first_line = str(exception).split(": training stopped")[0]
        self._start(trainer, pl_module, "divergence", f"{first_line}{self._oscillation_text()}: the training diverged",
                    during_training=False, stop=False)  # fmt: skip

    # -- episodes ------------------------------------------------------------------------------
    def _start(self, trainer, pl_module, name: str, message: str, during_training: bool, stop: bool = True) -> None:
        episode = self.episodes[name]
        if episode.active:
            return
        episode.active, episode.episodes = True, episode.episodes + 1
        stopping = stop and name in self.stop_on
        line = f"health/{name}: {message}; {remedy_text(pl_module, name)}"
        if stopping:
            line += f" (stopping: callbacks.health.stop_on includes {name})"
        self.warnings.append(line)
        if trainer.is_global_zero:
            log.warning(line)
        if stopping:
            if during_training:
                stop_training(trainer)  # validates and checkpoints this point before ending
            else:
                trainer.should_stop = True  # this validation's checkpoint is the last

    def _end(self, pl_module, name: str) -> None:
        episode = self.episodes[name]
        if episode.active:
            episode.active = False
            if pl_module.global_rank == 0:
                log.info(f"health/{name}: over at iteration {pl_module.iteration}")

    # -- resumed runs continue their episodes and FID history -----------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "fids": list(self.fids),
            "episodes": {k: [e.active, e.since, e.count, e.episodes] for k, e in self.episodes.items()},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.fids = [float(v) for v in state_dict.get("fids", [])]
        for name, (active, since, count, episodes) in state_dict.get("episodes", {}).items():
            if name in self.episodes:
                self.episodes[name] = _Episode(bool(active), since, int(count), int(episodes))
