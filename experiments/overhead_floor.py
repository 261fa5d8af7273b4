"""How much of the framework's per-iteration overhead is Lightning's own: issue 13's host-bound
DCGAN (tiny networks, batch 2) timed per iteration in four loops, each against the plain loop of
`benchmark.py`:

  - framework: the project's DCGAN through `Trainer.fit` (what `benchmark.py` times);
  - lightning + plain body: a bare `LightningModule` (manual optimization, no hooks of its own)
    whose `training_step` is the plain loop's step on the same networks, stepping Lightning's
    optimizer wrappers (`lightning_optimizer`) or the wrapped optimizers (`inner`);
  - lightning, empty step: the same module doing nothing: Lightning's loop alone, against a plain
    `for` over the same DataLoader (`plain_empty`).

Each loop's per-iteration wall times are pooled over `--repeats` runs and compared at low
percentiles (default the 10th): on a shared CPU, load only ever adds time to an iteration, so the
fastest iterations show the cost of the code rather than of the machine's other jobs, where
medians of whole runs moved by more than the differences measured here.

`--segments` splits each Lightning iteration at `on_train_batch_start`, the start and end of
`training_step` and `on_train_batch_end`: Lightning's code before the step, the step, Lightning's
code after it, and between batches (the logger connector, the next batch's fetch); and it
reports the steps that log (every `log_every_n_steps`) apart from the others.

    OMP_NUM_THREADS=1 python experiments/overhead_floor.py
    OMP_NUM_THREADS=1 python experiments/overhead_floor.py --segments --repeats 2
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `gans`
import benchmark

from gans import losses
from gans.data.base import IndexBatches, TensorImages

LOOPS = ("framework", "lightning_optimizer", "inner", "empty")


class IterationClock(L.Callback):
    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.ends: list[float] = []
        self.step_stamps: list[tuple[float, float]] = []

    def on_train_batch_start(self, *args) -> None:
        self.stamps.append(time.perf_counter())

    def on_train_batch_end(self, *args) -> None:
        self.ends.append(time.perf_counter())

    def time_training_step(self, model: L.LightningModule) -> None:
        """Stamp the start and end of each `training_step` of `model` (an instance attribute, so
        Lightning calls the wrapper; `functools.wraps` keeps the signature Lightning inspects)."""
        step = model.training_step

        @functools.wraps(step)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            output = step(*args, **kwargs)
            self.step_stamps.append((start, time.perf_counter()))
            return output

        model.training_step = timed

    def segments(self, warmup: int) -> dict[str, np.ndarray]:
        """Per iteration after `warmup` (ms): the whole iteration and its four parts."""
        n = len(self.stamps) - 1  # the last batch has no next start
        start, end = np.array(self.stamps), np.array(self.ends[:n])
        step_start, step_end = (np.array([s[i] for s in self.step_stamps[:n]]) for i in (0, 1))
        parts = {
            "iteration": start[1:] - start[:-1],
            "lightning_before_step": step_start - start[:-1],
            "step": step_end - step_start,
            "lightning_after_step": end - step_end,
            "lightning_between_batches": start[1:] - end,
        }
        return {name: 1e3 * part[warmup:] for name, part in parts.items()}


class PlainBody(L.LightningModule):
    """The plain loop's DCGAN step inside Lightning's loop, with nothing of the project's base."""

    def __init__(self, generator, discriminator, latent_dim: int, mode: str) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator, self.discriminator, self.latent_dim, self.mode = generator, discriminator, latent_dim, mode

    def configure_optimizers(self):
        return [benchmark.adam(self.generator.parameters()), benchmark.adam(self.discriminator.parameters())]

    def training_step(self, batch, batch_idx) -> None:
        if self.mode == "empty":
            return
        opt_g, opt_d = self.optimizers()
        if self.mode == "inner":
            opt_g, opt_d = opt_g.optimizer, opt_d.optimizer
        real, n = batch["image"], len(batch["image"])
        with torch.no_grad():
            fake = self.generator(torch.randn(n, self.latent_dim))
        d_loss = losses.bce_discriminator_loss(self.discriminator(real), self.discriminator(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        self.discriminator.requires_grad_(False)
        fake = self.generator(torch.randn(n, self.latent_dim))
        g_loss = losses.nonsaturating_generator_loss(self.discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        self.discriminator.requires_grad_(True)


def lightning_iterations(args, loop: str, clock: IterationClock | None = None) -> np.ndarray:
    model, data = benchmark.framework_model_and_data(args)
    if loop != "framework":
        model = PlainBody(model.generator, model.discriminator, args.latent_dim, loop)
    clock = clock or IterationClock()
    if args.segments:
        clock.time_training_step(model)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=args.log_every,
        use_distributed_sampler=False, callbacks=[clock],
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    return np.diff(clock.stamps[args.warmup :])


def plain_iterations(args) -> np.ndarray:
    generator, discriminator = benchmark.networks(args)
    n = args.batch_size * (args.warmup + args.steps + 1)
    step = benchmark.plain_dcgan(args, torch.device("cpu"), lambda: torch.autocast("cpu", enabled=False),
                                 generator, discriminator, n)  # fmt: skip
    stamps = []
    for i in range(args.warmup + args.steps):
        stamps.append(time.perf_counter())
        step(i)
    return np.diff(stamps[args.warmup :])


def plain_empty_iterations(args) -> np.ndarray:
    """The framework's DataLoader (in-memory images, batches of indices), iterated doing nothing."""
    n = args.batch_size * (args.warmup + args.steps + 1)
    images = benchmark.random_images((n, args.channels, args.image_size, args.image_size))
    dataset = TensorImages(images, torch.zeros(n, dtype=torch.long))
    stamps = []
    for _ in DataLoader(dataset, batch_size=None, sampler=IndexBatches(n, args.batch_size)):
        stamps.append(time.perf_counter())
    return np.diff(stamps[args.warmup :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--percentiles", type=float, nargs="+", default=[5, 10, 25, 50])
    parser.add_argument("--segments", action="store_true", help="where in each Lightning iteration the time goes")
    args = parser.parse_args()
    args.__dict__.update(model="dcgan", device="cpu", image_size=28, channels=1, width=2, latent_dim=4, batch_size=2,
                         precision="32-true", channels_last=False, log_every=50, compile=None)  # fmt: skip
    if args.segments:
        return print_segments(args)
    times: dict[str, list[np.ndarray]] = {name: [] for name in ("plain", "plain_empty", *LOOPS)}
    for _ in range(args.repeats):  # interleaved, so that the machine's load hits every loop alike
        times["plain"].append(plain_iterations(args))
        times["plain_empty"].append(plain_empty_iterations(args))
        for loop in LOOPS:
            times[loop].append(lightning_iterations(args, loop))
    ms = {name: np.concatenate(runs) * 1e3 for name, runs in times.items()}
    for name in ("plain", "plain_empty", *LOOPS):
        row = {"loop": name, "iterations": len(ms[name])}
        reference = {"empty": "plain_empty"}.get(name, "plain")
        for q in args.percentiles:
            row[f"q{q:g}_ms"] = round(float(np.percentile(ms[name], q)), 4)
            if not name.startswith("plain"):
                extra = np.percentile(ms[name], q) - np.percentile(ms[reference], q)
                row[f"q{q:g}_overhead_ms"] = round(float(extra), 4)
        if not name.startswith("plain"):
            row["against"] = reference
        print(json.dumps(row), flush=True)


def print_segments(args) -> None:
    """One JSON line per loop and part: q10, q50 and mean (ms), pooled over the repeats; the
    iteration row also gives the mean of the logging steps and of the others."""
    pooled: dict[str, dict[str, list[np.ndarray]]] = {}
    for _ in range(args.repeats):
        pooled.setdefault("plain", {}).setdefault("iteration", []).append(1e3 * plain_iterations(args))
        for loop in LOOPS:
            clock = IterationClock()
            lightning_iterations(args, loop, clock)
            for name, part in clock.segments(args.warmup).items():
                pooled.setdefault(loop, {}).setdefault(name, []).append(part)
    for loop, parts in pooled.items():
        for name, runs in parts.items():
            ms = np.concatenate(runs)
            row = {"loop": loop, "part": name, "q10_ms": round(float(np.percentile(ms, 10)), 4),
                   "q50_ms": round(float(np.percentile(ms, 50)), 4), "mean_ms": round(float(ms.mean()), 4)}  # fmt: skip
            if name == "iteration" and loop != "plain":
                # batch i (from args.warmup on) logs when (i + 1) % log_every == 0 (Lightning's
                # should_update_logs counts optimizer-stepping batches; every batch steps here)
                index = np.concatenate([np.arange(len(run)) + args.warmup for run in runs])
                logs = (index + 1) % args.log_every == 0
                row["logging_steps_mean_ms"] = round(float(ms[logs].mean()), 4)
                row["other_steps_mean_ms"] = round(float(ms[~logs].mean()), 4)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
