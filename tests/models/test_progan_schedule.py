"""ProGAN's growth schedule: phases in images shown, alpha linear through each fade-in, and the
stage a function of images shown alone (so a resumed run continues in the same stage)."""

import pytest

from gans.errors import GansError
from gans.models.progan_schedule import Phase, describe, growth_schedule, stage_at


def test_phases_fade_in_then_stabilise_and_the_last_runs_to_the_end():
    phases = growth_schedule(3, fade_images=100, stable_images=200, batch_sizes=[16, 16, 8, 4])
    assert phases == [
        Phase(0, 0, 0, 200, 16),
        Phase(1, 200, 100, 200, 16),
        Phase(2, 500, 100, 200, 8),
        Phase(3, 800, 100, None, 4),
    ]
    assert [p.side for p in phases] == [4, 8, 16, 32] and phases[-1].end is None


@pytest.mark.parametrize(
    ("images", "phase", "level", "alpha"),
    [(0, 0, 0, 1.0), (199, 0, 0, 1.0), (200, 1, 1, 0.0), (225, 1, 1, 0.25), (299, 1, 1, 0.99),
     (300, 1, 1, 1.0), (650, 2, 2, 1.0), (850, 3, 3, 0.5), (10**9, 3, 3, 1.0)],
)  # fmt: skip
def test_the_stage_follows_the_images_shown(images, phase, level, alpha):
    stage = stage_at(growth_schedule(3, 100, 200, 16), images)
    assert (stage.phase, stage.level) == (phase, level) and stage.alpha == pytest.approx(alpha)


def test_bad_lengths_and_batch_sizes_are_one_line_errors():
    with pytest.raises(GansError, match="must be positive numbers of images"):
        growth_schedule(2, 0, 100, 16)
    with pytest.raises(GansError, match=r"one per resolution \(3: 4x4 to 16x16\)"):
        growth_schedule(2, 100, 100, [16, 8])


def test_the_schedule_prints_one_line_per_resolution():
    text = describe(growth_schedule(2, 800_000, 800_000, [32, 32, 16]))
    assert text.splitlines()[1:] == [
        "     4x4    from          0: fade-in 0, stabilise 800,000, batch 32",
        "     8x8    from    800,000: fade-in 800,000, stabilise 800,000, batch 32",
        "    16x16   from  2,400,000: fade-in 800,000, stabilise until the end, batch 16",
    ]
