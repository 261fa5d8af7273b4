"""Summarise a `py-spy record --format raw` profile of `profile_overhead.py --no-cprofile`: the
share of the training loop's samples that the plain loop also spends (network forwards, losses,
backward, the optimizers' arithmetic, noise) and where the rest, the framework's own host time,
goes (inclusive, by function). Usage: python summarize_pyspy.py RAW [TOP] [--plain]
(--plain: a profile of `profile_overhead.py --plain`, the plain loop's own share for comparison)."""

from __future__ import annotations

import re
import sys
from collections import Counter

LOOP = "advance (lightning/pytorch/loops/training_epoch_loop.py"
# Work the plain loop does too: a sample inside any of these is not framework overhead.
SHARED = re.compile(
    r"\((gans/nets/|gans/losses\.py|torch/nn/modules/|torch/nn/functional\.py|torch/autograd/|"
    r"torch/optim/adam\.py|torch/optim/optimizer\.py:\d+\)|torch/_tensor\.py)"
)
SHARED_NAMES = ("run_backward", "_single_tensor_adam", "zero_grad (torch/optim")


def frame_name(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame.strip())


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--plain"]
    path, top = args[0], int(args[1]) if len(args) > 1 else 30
    loop = "step (benchmark.py" if "--plain" in sys.argv else LOOP
    loop_samples, shared = 0, 0
    own: Counter[str] = Counter()
    with open(path) as f:
        lines = f.readlines()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        start = next((i for i, f in enumerate(frames) if loop in f), None)
        start = start - 1 if start is not None and loop != LOOP else start  # the plain step's own frame counts
        if start is None:
            continue
        n = int(count)
        loop_samples += n
        inner = frames[start + 1 :]
        cut = next((i for i, f in enumerate(inner) if SHARED.search(f) or any(s in f for s in SHARED_NAMES)), None)
        if cut is not None:
            shared += n
            inner = inner[:cut]  # the framework frames above the shared work still count for the path
            continue
        for name in dict.fromkeys(frame_name(f) for f in inner):
            own[name] += n
    overhead = loop_samples - shared
    print(
        f"training-loop samples: {loop_samples}; in work the plain loop shares: {shared} "
        f"({shared / loop_samples:.1%}); the loop's own (framework + glue): {overhead} ({overhead / loop_samples:.1%})"
    )
    print(f"\nthe loop's own samples by function (inclusive), top {top}:")
    for name, n in own.most_common(top):
        print(f"{n:7d} {n / loop_samples:6.1%}  {name}")


if __name__ == "__main__":
    main()
