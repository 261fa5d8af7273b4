"""A wall-time budget for a run, so that `make run` on a CPU ends when it says it will.

A GAN run is training followed by evaluation: the final validation (`val/fid`) and the test
(`test/fid`). Both are Inception passes (FID, Heusel et al. 2017), about 0.1-0.3 s per image on a
2-core CPU, and a fresh clone also has to pass the real reference images once (their features are
cached on disk afterwards). `TimeBudget` measures Inception's speed on this machine when training
starts, chooses FID sample counts whose evaluation fits, and stops training when the time left
equals what that evaluation is predicted to cost.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import lightning as L
import torch
from torch import Tensor

from gans.callbacks.progress import stop_training
from gans.errors import GansError
from gans.metrics.fid import reference_cache_path
from gans.metrics.inception import InceptionFeatures, exact_float32

log = logging.getLogger(__name__)

# The FID sample counts a budget may choose: few distinct counts, so that the real features cached
# by one run (per data set and count) are found again by the next.
SAMPLE_LADDER = (10_000, 5_000, 2_000, 1_000, 500, 250, 100)
# What runs after the stop besides the Inception passes (sample grids, checkpoints, the model's
# own Inception load, setting up the test), reserved on top of the predicted evaluation.
OVERHEAD_SECONDS = 15.0
OVERHEAD_SHARE = 0.05
# Images timed when measuring Inception (after a 2-image warm-up): ~2 s on a 2-core CPU.
TIMED_IMAGES = 16
STAGES = ("validate", "test")  # in the order in which they give way when the evaluation does not fit


def _now() -> float:
    # The budget's clock (a function of the module, so tests can drive it).
    return time.monotonic()


def sample_ladder(wanted: int) -> list[int]:
    """`wanted`, then the counts of `SAMPLE_LADDER` below it: the counts a stage may shrink to."""
    return [wanted] + [n for n in SAMPLE_LADDER if n < wanted]


def evaluation_seconds(counts: dict[str, int], cached: Callable[[str, int], bool], seconds_per_image: float) -> float:
    """The predicted Inception time of scoring `counts` ({stage: images}): each stage passes its
    generated images, and as many real ones unless `cached(stage, count)` (their features are on disk)."""
    return seconds_per_image * sum(n if cached(stage, n) else 2 * n for stage, n in counts.items())


def choose_sample_counts(
    seconds: float, seconds_per_image: float, wanted: dict[str, int], cached: Callable[[str, int], bool]
) -> dict[str, int]:
    """FID sample counts ({stage: images}) of an evaluation that must fit in `seconds`.

    `wanted` when it fits. Else validation gives way first (it only picks the checkpoint; the test
    is the reported score), down `sample_ladder`, and then the test. When even the smallest counts
    do not fit, the smallest: the caller says so.
    """
    counts = dict(wanted)
    for stage in (s for s in STAGES if s in wanted):
        for n in sample_ladder(wanted[stage]):
            counts[stage] = n
            if evaluation_seconds(counts, cached, seconds_per_image) <= seconds:
                return counts
    return counts


def summary_line(
    iterations: int,
    kimg: float,
    train_minutes: float,
    stopped_by_budget: bool,
    score: tuple[str, float, int, int, int | None] | None,
    total_minutes: float,
    budget_minutes: float,
) -> str:
    """The one line a budgeted run ends with: what it trained, what it scored, how long it took.
    `score` is (stage name, FID, generated images, real images, the iteration of the checkpoint
    scored where it is not the last one trained, else None); None when no FID was computed."""
    stop = "; the budget stopped training" if stopped_by_budget else ""
    line = f"trained {iterations} iterations ({kimg:.1f} kimg) in {train_minutes:.1f} min{stop}; "
    if score is None:
        line += "no FID computed; "
    else:
        name, fid, generated, real, scored_iteration = score
        of = "" if scored_iteration is None else f" of the best checkpoint, iteration {scored_iteration},"
        line += f"{name} FID{of} {fid:.1f} ({generated} generated vs {real} {name} images); "
    return line + f"total {total_minutes:.1f} min of a {budget_minutes:g} min budget"


def inception_seconds_per_image(images: Tensor, antialias: bool) -> tuple[float, str]:
    """Seconds per image of the FID Inception network on `images` (uint8, on their device), timed
    here, and the resize protocol its cached features are filed under."""
    network = InceptionFeatures(antialias=antialias).to(images.device)
    warm_up, timed = images[:2], images[2 : 2 + TIMED_IMAGES]
    with exact_float32(images.device):
        network(warm_up)  # the first call allocates; not representative
        if images.device.type == "cuda":
            torch.cuda.synchronize(images.device)
        start = time.perf_counter()
        network(timed)
        if images.device.type == "cuda":
            torch.cuda.synchronize(images.device)
    return (time.perf_counter() - start) / len(timed), network.protocol


class TimeBudget(L.Callback):
    """End the run within `minutes` of wall time, evaluation included, and say what it reached.

    When training starts: Inception's seconds per image are measured on this machine, and the
    FID sample counts of the final validation and the test (`data.max_val_samples`,
    `data.max_eval_samples`) are lowered, validation first, if their evaluation would take more
    than `evaluation_share` of the time left (real features already cached cost nothing). Training
    then stops, with the validation and checkpoints of that point, when the time left equals the
    predicted evaluation. The other limits (`trainer.max_epochs`, `max_iterations`) still apply:
    whichever comes first ends training. The run ends with one line (`summary_line`).

    The clock starts when the callback is built (after the data are loaded). The budget covers
    one invocation: a resumed run gets a budget of its own. The prediction counts one FID stream
    per stage (latent models); the two directions of an image-to-image model cost about twice it.

    Args:
        minutes: the wall-time budget; None = no budget (the callback does nothing).
        test: whether the test follows training (its evaluation is reserved; `test` of the config).
        evaluation_share: at most this share of the time left goes to evaluation when choosing sample counts.
    """

    def __init__(self, minutes: float | None = None, test: bool = True, evaluation_share: float = 0.5) -> None:
        if minutes is not None and (
            isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes < math.inf
        ):
            raise GansError(f"time_budget_minutes={minutes} must be a positive number of minutes, or null for no budget")
        if isinstance(evaluation_share, bool) or not isinstance(evaluation_share, (int, float)) or not 0 < evaluation_share <= 1:
            raise GansError(f"evaluation_share={evaluation_share} must be a fraction in (0, 1]")
        self.minutes, self.test, self.evaluation_share = minutes, test, evaluation_share
        self.started = _now()
        self.seconds_per_image = 0.0
        self.counts: dict[str, int] = {}
        self.eval_seconds = 0.0  # the predicted evaluation after the stop
        self.stopped_by_budget = False
        self._first_iteration, self._first_images = 0, 0
        self._train_started = self._train_ended = None
        self._trained_to: tuple[int, int] | None = None  # (iteration, images seen) when training ended
        self._evaluation_time = 0.0  # validations during training, not counted as training time
        self._validation_started = None
        self._protocol = ""
        self._datamodule = None

    @property
    def enabled(self) -> bool:
        return self.minutes is not None

    def seconds_left(self) -> float:
        return 60.0 * self.minutes - (_now() - self.started)

    # -- the plan, when training starts ---------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled:
            return
        self._first_iteration = getattr(pl_module, "iteration", trainer.global_step)
        self._first_images = getattr(pl_module, "images_seen", 0)
        self._train_started, self._trained_to = _now(), None
        datamodule = self._datamodule = trainer.datamodule
        stages = [s for s in STAGES if (s == "test" and self.test) or (s == "validate" and trainer.enable_validation)]
        scored = getattr(pl_module, "eval_fid", False) and hasattr(datamodule, "eval_size") and stages
        plan = None
        if scored and trainer.is_global_zero:
            plan = self._plan(datamodule, pl_module, stages)
        if trainer.world_size > 1:  # every process trains to rank 0's plan
            plan = trainer.strategy.broadcast(plan, src=0)
        if plan is not None:
            self.seconds_per_image, self._protocol, self.counts = plan
            self._apply_counts(datamodule)
        self.eval_seconds = self.predicted_evaluation()
        if trainer.is_global_zero:
            self._log_plan()

    def _plan(self, datamodule, pl_module, stages: list[str]) -> tuple[float, str, dict[str, int]]:
        images = datamodule.eval_images(stages[-1])
        seconds_per_image, self._protocol = inception_seconds_per_image(
            images[: 2 + TIMED_IMAGES], getattr(pl_module, "fid_antialias", False)
        )
        wanted = {stage: datamodule.eval_size(stage) for stage in stages}
        counts = wanted
        if hasattr(datamodule, "max_val_samples"):  # validation and test capped separately
            allowance = self.evaluation_share * max(self.seconds_left(), 0.0)
            counts = choose_sample_counts(allowance, seconds_per_image, wanted, self._is_cached)
        return seconds_per_image, self._protocol, counts

    def _apply_counts(self, datamodule) -> None:
        if not hasattr(datamodule, "max_val_samples"):
            return
        if "test" in self.counts:
            datamodule.max_eval_samples = self.counts["test"]
        # Set even when unchanged: validation must keep its count where only the test's cap changed.
        datamodule.max_val_samples = self.counts.get("validate", datamodule.eval_size("validate"))

    def _is_cached(self, stage: str, count: int) -> bool:
        """Whether the real features of `count` images of `stage` are on disk (the evaluation
        then passes only the generated ones); asks the data module for that set's fingerprint."""
        datamodule = self._datamodule
        attribute = "max_val_samples" if hasattr(datamodule, "max_val_samples") and stage == "validate" else "max_eval_samples"
        saved = getattr(datamodule, attribute)
        try:
            setattr(datamodule, attribute, count)
            key = datamodule.eval_fingerprint(stage)
        finally:
            setattr(datamodule, attribute, saved)
        return reference_cache_path(key, self._protocol).is_file()

    def predicted_evaluation(self) -> float:
        """Seconds the evaluation after the stop is predicted to take, overhead included."""
        inception = evaluation_seconds(self.counts, self._is_cached, self.seconds_per_image) if self.counts else 0.0
        return inception * (1 + OVERHEAD_SHARE) + OVERHEAD_SECONDS

    def _log_plan(self) -> None:
        left = self.seconds_left()
        counts = ", ".join(f"{'val' if s == 'validate' else s} FID on {n} vs {n} images" for s, n in self.counts.items())
        speed = f"; Inception {self.seconds_per_image:.3f} s/image" if self.counts else ""
        log.info(
            f"time budget {self.minutes:g} min: {left / 60:.1f} min left, of which the evaluation after training is "
            f"predicted to take {self.eval_seconds / 60:.1f} min ({counts or 'no FID'}{speed})"
        )
        if left <= self.eval_seconds:
            log.warning(
                f"the {self.minutes:g} min budget leaves no time to train before the evaluation: training stops after "
                "one iteration; raise time_budget_minutes or lower data.max_eval_samples"
            )

    # -- the stop -------------------------------------------------------------------------------
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if not self.enabled or trainer.should_stop:
            return
        out_of_time = self.seconds_left() <= self.eval_seconds
        if trainer.world_size > 1:  # clocks differ between processes: any one out of time stops all
            out_of_time = trainer.strategy.reduce_boolean_decision(out_of_time, all=False)
        if out_of_time:
            stop_training(trainer)
            self.stopped_by_budget = True
            if trainer.is_global_zero:
                log.info(
                    f"time budget: stopping training at iteration {getattr(pl_module, 'iteration', trainer.global_step)} "
                    f"with {self.seconds_left() / 60:.1f} min left for the evaluation"
                )

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled and not trainer.sanity_checking:
            self._validation_started = _now()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or self._validation_started is None:
            return
        self._evaluation_time += _now() - self._validation_started
        self._validation_started = None
        self.eval_seconds = self.predicted_evaluation()  # its real features are cached now

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled:
            self._train_ended = _now()
            # what training reached: the test may load the best checkpoint, an earlier iteration
            self._trained_to = self._progress(trainer, pl_module)

    @staticmethod
    def _progress(trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[int, int]:
        """(iterations, images seen) of the module as it is now."""
        return getattr(pl_module, "iteration", trainer.global_step), getattr(pl_module, "images_seen", 0)

    # -- the summary ----------------------------------------------------------------------------
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled and not self.test:
            self._log_summary(trainer, pl_module, "val", "validate")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled and self.test:
            self._log_summary(trainer, pl_module, "test", "test")

    def _log_summary(self, trainer: L.Trainer, pl_module: L.LightningModule, prefix: str, stage: str) -> None:
        if not trainer.is_global_zero or self._train_started is None:
            return
        now_at = self._progress(trainer, pl_module)
        last_iteration, last_images = self._trained_to or now_at
        fid = trainer.callback_metrics.get(f"{prefix}/fid")
        score = None
        if fid is not None and math.isfinite(float(fid)):
            generated = int(trainer.callback_metrics.get(f"{prefix}/fid_samples", 0))
            scored = now_at[0] if now_at[0] != last_iteration else None
            score = (prefix, float(fid), generated, trainer.datamodule.eval_size(stage), scored)
        ended = self._train_ended if self._train_ended is not None else _now()
        train_minutes = (ended - self._train_started - self._evaluation_time) / 60
        images = last_images - self._first_images
        iterations = last_iteration - self._first_iteration
        total = (_now() - self.started) / 60
        log.info(summary_line(iterations, images / 1000, train_minutes, self.stopped_by_budget, score, total, self.minutes))
