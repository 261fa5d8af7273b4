"""ProGAN's growth schedule (Karras et al. 2018, sec. 3 and appendix A.1): a phase per resolution,
each a fade-in, in which the new block's weight alpha rises linearly from 0 to 1, then a
stabilisation; lengths are counted in real images shown (the paper: 800k + 800k).

The stage of training is a function of the images shown alone, which the base checkpoints, so a
run resumed at any iteration, inside a fade-in or between phases, continues in the same stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gans.errors import GansError


@dataclass(frozen=True)
class Phase:
    """Training at `level` (side 4 * 2^level) from `start` images shown: `fade` images of fade-in
    (0 at 4x4, where nothing fades in), then `stable` images (None: until training ends)."""

    level: int
    start: int
    fade: int
    stable: int | None
    batch_size: int

    @property
    def side(self) -> int:
        return 4 * 2**self.level

    @property
    def end(self) -> int | None:
        return None if self.stable is None else self.start + self.fade + self.stable


@dataclass(frozen=True)
class Stage:
    """Where training is: the phase's index, its level and the fade-in weight alpha."""

    phase: int
    level: int
    alpha: float


def growth_schedule(max_level: int, fade_images: int, stable_images: int,
                    batch_sizes: Sequence[int] | int) -> list[Phase]:  # fmt: skip
    """The phases from 4x4 to level `max_level`; the last phase stabilises until training ends.
    `batch_sizes`: one for all resolutions, or one per level."""
    if fade_images < 1 or stable_images < 1:
        raise GansError(f"model.fade_images={fade_images} and model.stable_images={stable_images} must be "
                        "positive numbers of images (the paper: 800000 each)")  # fmt: skip
    sizes = [batch_sizes] * (max_level + 1) if isinstance(batch_sizes, int) else list(batch_sizes)
    if len(sizes) != max_level + 1 or any(b < 1 for b in sizes):
        raise GansError(f"model.batch_sizes={batch_sizes!r} must be one positive size or one per resolution "
                        f"({max_level + 1}: 4x4 to {4 * 2**max_level}x{4 * 2**max_level})")  # fmt: skip
    phases, start = [], 0
    for level in range(max_level + 1):
        fade = 0 if level == 0 else fade_images
        stable = None if level == max_level else stable_images
        phases.append(Phase(level, start, fade, stable, sizes[level]))
        if stable is not None:
            start += fade + stable
    return phases


def stage_at(phases: Sequence[Phase], images_seen: int) -> Stage:
    """The stage after `images_seen` real images: the last phase that has started, and alpha =
    (images into its fade-in) / (fade-in length), 1 once stabilising."""
    index = max(i for i, phase in enumerate(phases) if phase.start <= images_seen)
    phase = phases[index]
    into = images_seen - phase.start
    alpha = 1.0 if phase.fade == 0 or into >= phase.fade else into / phase.fade
    return Stage(index, phase.level, alpha)


def describe(phases: Sequence[Phase]) -> str:
    """The schedule in lines, for the run's start: side, images from, fade-in, stabilisation, batch."""
    lines = ["growth schedule (images shown):"]
    for phase in phases:
        stable = "until the end" if phase.stable is None else f"{phase.stable:,}"
        lines.append(f"  {phase.side:>4}x{phase.side:<4} from {phase.start:>10,}: fade-in {phase.fade:,}, "
                     f"stabilise {stable}, batch {phase.batch_size}")  # fmt: skip
    return "\n".join(lines)
