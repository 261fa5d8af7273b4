"""Where the framework's per-iteration host time goes: the benchmark's framework run (DCGAN via
`Trainer.fit`) under cProfile, in the host-bound setting of issue 13 (tiny networks, batch 2).

Prints the functions with the most own time and the most cumulative time per iteration (ms),
restricted to the timed steps. Take absolute numbers with salt: cProfile adds its own per-call
cost, so it inflates Python-heavy paths; use it to rank, and `benchmark.py` to measure.

    OMP_NUM_THREADS=1 python experiments/profile_overhead.py --steps 1000 > experiments/profiles/overhead.txt
    # a sampling profile instead (no per-call cost): py-spy record -o out.speedscope --format speedscope -- \
    #   python experiments/profile_overhead.py --no-cprofile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `gans`
import benchmark


class ProfiledTimer(benchmark.StepTimer):
    """The benchmark's timer, switching cProfile on for the timed steps only."""

    def __init__(self, warmup: int, steps: int, profiler: cProfile.Profile | None) -> None:
        super().__init__(warmup, steps)
        self.profiler = profiler

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        if batch_idx == self.warmup and self.profiler is not None:
            self.profiler.enable()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.warmup + self.steps - 1 and self.profiler is not None:
            self.profiler.disable()
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument(
        "--plain", action="store_true", help="time the plain loop instead (with --no-cprofile, for py-spy)"
    )
    parser.add_argument("--no-cprofile", dest="cprofile", action="store_false")
    parser.add_argument("--dump", help="also write the raw cProfile stats here (for pstats' print_callers)")
    args = parser.parse_args()
    bench = argparse.Namespace(
        model="dcgan", device="cpu", image_size=28, channels=1, width=2, latent_dim=4, batch_size=2,
        precision="32-true", channels_last=False, warmup=args.warmup, steps=args.steps, log_every=50,
        compile="default" if args.compile else None,
    )  # fmt: skip
    if args.plain:
        ms = 1000 * bench.batch_size / benchmark.time_plain(bench)["wall"]
        print(f"plain: {ms:.3f} ms/iteration over {args.steps} iterations")
        return
    profiler = cProfile.Profile() if args.cprofile else None
    original = benchmark.StepTimer
    benchmark.StepTimer = lambda warmup, steps: ProfiledTimer(warmup, steps, profiler)
    try:
        images_per_s = benchmark.time_framework(bench)
    finally:
        benchmark.StepTimer = original
    ms = 1000 * bench.batch_size / images_per_s["wall"]
    print(f"framework: {ms:.3f} ms/iteration over {args.steps} iterations (with cProfile: {args.cprofile})")
    if profiler is None:
        return
    if args.dump:
        profiler.dump_stats(args.dump)
    stats = pstats.Stats(profiler)
    for key, title in (("tottime", "own time"), ("cumtime", "cumulative time")):
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats(key).print_stats(args.top)
        print(f"\n== top {args.top} by {title}; times are totals over {args.steps} iterations (s) ==")
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        print("\n".join(line.replace(str(Path(sys.prefix)), "<venv>") for line in lines[start:]))


if __name__ == "__main__":
    main()
