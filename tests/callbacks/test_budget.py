"""The wall-time budget: sample counts that fit, the stop that leaves time for the evaluation, the
summary line, and bad settings. Time is a fake clock here: no assertion depends on this machine's speed."""

import re

import pytest

import gans.callbacks.budget as budget
from gans.callbacks.budget import (
    OVERHEAD_SECONDS,
    OVERHEAD_SHARE,
    TimeBudget,
    choose_sample_counts,
    evaluation_seconds,
    sample_ladder,
    summary_line,
)
from gans.errors import GansError
from tests.models.test_base import make_model, make_trainer
from tests.test_run import assert_ok, run


def nothing_cached(stage, n):
    return False


def test_sample_ladder_starts_at_the_wanted_count():
    assert sample_ladder(1000) == [1000, 500, 250, 100]
    assert sample_ladder(700) == [700, 500, 250, 100]
    assert sample_ladder(32) == [32]


def test_evaluation_counts_real_images_only_where_not_cached():
    counts = {"validate": 250, "test": 1000}
    assert evaluation_seconds(counts, nothing_cached, 0.1) == pytest.approx(0.1 * (500 + 2000))
    test_cached = lambda stage, n: stage == "test" and n == 1000  # noqa: E731
    assert evaluation_seconds(counts, test_cached, 0.1) == pytest.approx(0.1 * (500 + 1000))


def test_sample_counts_keep_the_wanted_counts_when_they_fit():
    wanted = {"validate": 250, "test": 1000}
    # 0.14 s/image, nothing cached: (250 + 1000) * 2 * 0.14 = 350 s fit in 355 s.
    assert choose_sample_counts(355.0, 0.14, wanted, nothing_cached) == wanted


def test_validation_gives_way_before_the_test():
    wanted = {"validate": 1000, "test": 1000}
    # 0.2 s/image, nothing cached; 610 s: 1000 + 1000 need 800 s, val 500 600 s.
    assert choose_sample_counts(610.0, 0.2, wanted, nothing_cached) == {"validate": 500, "test": 1000}
    # 450 s: val 250 needs 500 s, val 100 440 s.
    assert choose_sample_counts(450.0, 0.2, wanted, nothing_cached) == {"validate": 100, "test": 1000}
    # 300 s: val 100 (40 s) + test 500 (200 s) = 240 s; test 1000 would need 440 s.
    assert choose_sample_counts(300.0, 0.2, wanted, nothing_cached) == {"validate": 100, "test": 500}


def test_a_cached_reference_set_is_kept_rather_than_shrunk():
    wanted = {"validate": 250, "test": 1000}
    test_cached = lambda stage, n: stage == "test" and n == 1000  # noqa: E731
    # 0.14 s/image: val 250 uncached (70 s) + test 1000 cached (140 s) = 210 s fits in 220 s;
    # uncached, the test alone would need 280 s.
    assert choose_sample_counts(220.0, 0.14, wanted, test_cached) == wanted
    assert choose_sample_counts(220.0, 0.14, wanted, nothing_cached) == {"validate": 100, "test": 500}


def test_nothing_fits_gives_the_smallest_counts():
    wanted = {"validate": 250, "test": 1000}
    assert choose_sample_counts(1.0, 0.14, wanted, nothing_cached) == {"validate": 100, "test": 100}
    assert choose_sample_counts(1.0, 0.14, {"test": 1000}, nothing_cached) == {"test": 100}


def test_summary_line():
    line = summary_line(2817, 180.288, 10.84, True, ("test", 61.234, 1000, 1000, None), 14.71, 15)
    assert line == (
        "trained 2817 iterations (180.3 kimg) in 10.8 min; the budget stopped training; "
        "test FID 61.2 (1000 generated vs 1000 test images); total 14.7 min of a 15 min budget"
    )
    line = summary_line(1802, 28.832, 63.2, True, ("test", 182.282, 117, 117, 1096), 64.5, 65)
    assert line == (  # the test scored the best checkpoint, not the last iteration trained
        "trained 1802 iterations (28.8 kimg) in 63.2 min; the budget stopped training; "
        "test FID of the best checkpoint, iteration 1096, 182.3 (117 generated vs 117 test images); "
        "total 64.5 min of a 65 min budget"
    )
    line = summary_line(4, 0.256, 0.02, False, None, 0.5, 2.5)
    assert line == "trained 4 iterations (0.3 kimg) in 0.0 min; no FID computed; total 0.5 min of a 2.5 min budget"


class Clock:
    """A fake `budget._now`: 10 s per training iteration of `model`."""

    def __init__(self, model):
        self.model = model

    def __call__(self):
        return 10.0 * self.model.iteration


def test_the_budget_stops_training_leaving_the_evaluation_its_time(tmp_path, random_images, monkeypatch):
    model = make_model(eval_fid=True)
    monkeypatch.setattr(budget, "_now", Clock(model))
    monkeypatch.setattr(budget, "inception_seconds_per_image", lambda images, antialias: (1.0, "tf-bilinear"))
    callback = TimeBudget(minutes=3, test=True)
    trainer = make_trainer(tmp_path, max_epochs=100, limit_val_batches=0, callbacks=[callback])
    trainer.fit(model, datamodule=random_images())
    # Only the test is scored (validation is off): 16 test images, none cached, 1 s each, twice.
    assert callback.counts == {"test": 16}
    reserved = 32 * (1 + OVERHEAD_SHARE) + OVERHEAD_SECONDS
    assert callback.eval_seconds == pytest.approx(reserved)
    # The first iteration whose end leaves at most `reserved` of the 180 s: 10 s per iteration.
    expected = next(i for i in range(1, 100) if 180 - 10 * i <= reserved)
    assert model.iteration == expected and callback.stopped_by_budget
    assert expected == 14  # in the second epoch of the 100 allowed (8 iterations each)


def test_no_budget_does_nothing(tmp_path, random_images, monkeypatch):
    model = make_model()
    monkeypatch.setattr(budget, "_now", Clock(model))
    callback = TimeBudget(minutes=None)
    trainer = make_trainer(tmp_path, max_epochs=2, limit_val_batches=0, callbacks=[callback])
    trainer.fit(model, datamodule=random_images())
    assert model.iteration == 2 * 8 and not callback.stopped_by_budget


@pytest.mark.parametrize("minutes", [0, -1, "soon", float("inf"), True])
def test_bad_budgets_are_refused(minutes):
    with pytest.raises(GansError, match=r"time_budget_minutes=.* must be a positive number of minutes"):
        TimeBudget(minutes=minutes)


def test_a_budgeted_cli_run_ends_with_its_summary_line(tmp_path):
    """The config wiring: `time_budget_minutes` reaches the callback, which times Inception, keeps
    the smoke run's 32 vs 32 test images (they fit) and ends with the summary line."""
    result = run("debug=smoke", "time_budget_minutes=20", "logger=none", f"hydra.run.dir={tmp_path}")
    assert_ok(result)
    output = result.stdout + result.stderr
    assert re.search(r"time budget 20 min: [\d.]+ min left, .*test FID on 32 vs 32 images; Inception [\d.]+ s/image", output)
    assert re.search(
        r"trained 4 iterations \(0\.3 kimg\) in [\d.]+ min; test FID [\d.]+ \(32 generated vs 32 test images\); "
        r"total [\d.]+ min of a 20 min budget",
        output,
    )
