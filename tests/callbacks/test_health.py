"""The training-health monitor: each signal on hand-made numbers, each diagnosis provoked on purpose
in a tiny run (one warning per episode, and the stop), and a healthy default run that raises none."""

from __future__ import annotations

import csv
import functools
import logging
import math
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import open_dict

from gans.callbacks.health import (
    TrainingHealth,
    diversity_ratio,
    discriminator_wins,
    fid_rising,
    oscillation,
    pairwise_spread,
    remedies,
)
from gans.config import register_resolvers
from gans.errors import GansError, NonFiniteLossError
from gans.models.dcgan import DCGAN
from gans.nets.dcgan import Discriminator, Generator
from tests.models.test_base import make_model, make_trainer

ROOT = Path(__file__).resolve().parents[2]
adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


# -- the signals on hand-made numbers ----------------------------------------------------------------
def test_pairwise_spread_is_the_mean_squared_distance_over_distinct_pairs():
    features = torch.randn(7, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    distances = torch.cdist(features, features).pow(2)
    brute = distances.sum() / (7 * 6)  # the diagonal is zero
    spread = pairwise_spread(features.sum(0), features.T @ features, 7)
    assert spread == pytest.approx(float(brute), rel=1e-9)
    # Two points at distance 2 apart: every distinct pair is at squared distance 4.
    two = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    assert pairwise_spread(two.sum(0), two.T @ two, 2) == pytest.approx(4.0)
    assert math.isnan(pairwise_spread(two[:1].sum(0), two[:1].T @ two[:1], 1))


def test_diversity_ratio_of_a_constant_set_is_zero_and_of_the_same_set_one():
    assert diversity_ratio(0.0, 3.5) == 0.0
    assert diversity_ratio(3.5, 3.5) == 1.0
    assert math.isnan(diversity_ratio(math.nan, 3.5)) and math.isnan(diversity_ratio(1.0, 0.0))


def test_discriminator_wins_only_when_confident_on_both_sides():
    assert discriminator_wins(0.99, 0.01, 0.9, 0.1)
    assert not discriminator_wins(0.99, 0.5, 0.9, 0.1)  # fooled by the generated images
    assert not discriminator_wins(0.6, 0.01, 0.9, 0.1)


def test_fid_rising_needs_every_step_up_and_a_large_enough_rise():
    assert fid_rising([50.0, 40.0, 42.0, 45.0, 48.0], evaluations=3, rise_fraction=0.1)
    assert not fid_rising([40.0, 42.0, 41.0, 48.0], evaluations=3, rise_fraction=0.1)  # one step down
    assert not fid_rising([40.0, 40.5, 41.0, 41.5], evaluations=3, rise_fraction=0.1)  # 3.75% in all
    assert not fid_rising([40.0, 45.0, 50.0], evaluations=3, rise_fraction=0.1)  # too few validations


def test_oscillation_is_the_standard_deviation_of_the_window():
    assert oscillation([1.0, 3.0, 1.0, 3.0]) == pytest.approx(float(torch.tensor([1.0, 3.0, 1.0, 3.0]).std()))
    assert math.isnan(oscillation([2.0])) and oscillation([2.0, 2.0, 2.0]) == 0.0


def test_remedies_are_the_lecture_s_and_only_those_not_on_already():
    saturating = remedies(make_model(generator_objective="minimax"), "vanishing_gradients")
    assert any("non-saturating" in r for r in saturating) and any("noisy labels" in r for r in saturating)
    tricks_on = remedies(make_model(real_label=[0.7, 1.2], fake_label=[0.0, 0.3]), "vanishing_gradients")
    assert not any("non-saturating" in r or "noisy labels" in r for r in tricks_on)
    assert any("Wasserstein" in r for r in tricks_on)
    assert any("model=cgan" in r for r in remedies(make_model(), "collapse"))
    assert any("mixed_batches=false" in r for r in remedies(make_model(mixed_batches=True), "divergence"))


def test_unknown_diagnoses_to_stop_on_are_refused_in_one_line():
    with pytest.raises(GansError, match=r"stop_on names colapse: the diagnoses are vanishing_gradients, collapse"):
        TrainingHealth(stop_on=["colapse"])


# -- diagnoses provoked on purpose -------------------------------------------------------------------
def health_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "health/" in r.getMessage()]


def overpowered_discriminator_model() -> DCGAN:
    """The lecture's failure: the saturating generator loss against a discriminator whose learning
    rate is 250 times the generator's, so D soon tells every image apart."""
    torch.manual_seed(0)
    fast = functools.partial(torch.optim.Adam, lr=0.05, betas=(0.5, 0.999))
    return DCGAN(
        Generator(16, 16, 1, width=8), Discriminator(16, 1, width=8), adam, fast,
        eval_fid=False, generator_objective="minimax",
    )  # fmt: skip


def test_a_winning_discriminator_warns_vanishing_gradients_once(tmp_path, random_images, caplog):
    health = TrainingHealth(window_iterations=4)
    trainer = make_trainer(tmp_path, max_epochs=3, limit_val_batches=0, callbacks=[health])
    with caplog.at_level(logging.WARNING, logger="gans.callbacks.health"):
        trainer.fit(overpowered_discriminator_model(), datamodule=random_images())
    (line,) = health_lines(caplog)  # one episode, many logged steps after its onset: one line
    assert line.startswith("health/vanishing_gradients: discriminator wins: D(x)=0.9")
    assert "model.generator_objective=nonsaturating" in line and "model.real_label=[0.7,1.2]" in line
    assert health.episodes["vanishing_gradients"].active and health.episodes["vanishing_gradients"].episodes == 1
    assert float(trainer.callback_metrics["health/vanishing_gradients"]) == 1.0


def test_stop_on_vanishing_gradients_ends_the_run_with_a_validated_checkpoint(tmp_path, random_images, caplog):
    health = TrainingHealth(window_iterations=4, stop_on=["vanishing_gradients"])
    validated = []
    on_validation = type("V", (L.Callback,), {"on_validation_end": lambda s, t, m: validated.append(m.iteration)})
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    model = overpowered_discriminator_model()
    trainer = make_trainer(
        tmp_path, max_epochs=10, check_val_every_n_epoch=5, limit_val_batches=1, enable_checkpointing=True,
        callbacks=[health, on_validation(), checkpoint],
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="gans.callbacks.health"):
        trainer.fit(model, datamodule=random_images())
    (line,) = health_lines(caplog)
    assert line.endswith("(stopping: callbacks.health.stop_on includes vanishing_gradients)")
    assert model.iteration < 10 * 12 and validated == [model.iteration]  # stopped early, validated there
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert state["progress"]["iteration"] == model.iteration


class ConstantGenerator(torch.nn.Module):
    """A generator forced to mode collapse: one learnable image, whatever the latent."""

    latent_dim = 8

    def __init__(self) -> None:
        super().__init__()
        self.image = torch.nn.Parameter(torch.linspace(-1, 1, 256).view(1, 1, 16, 16))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.image).expand(len(z), -1, -1, -1) + 0.0 * z.sum()


def test_a_constant_generator_is_diagnosed_collapsed_and_stopped(tmp_path, random_images, caplog):
    torch.manual_seed(0)
    model = DCGAN(ConstantGenerator(), Discriminator(16, 1, width=8), adam, adam, eval_fid=True, eval_classes=False)
    health = TrainingHealth(stop_on=["collapse"], collapse_evaluations=2)
    trainer = make_trainer(tmp_path, max_epochs=6, limit_train_batches=2, callbacks=[health])
    with caplog.at_level(logging.WARNING, logger="gans.callbacks.health"):
        trainer.fit(model, datamodule=random_images())
    (line,) = health_lines(caplog)
    assert line.startswith("health/collapse: mode collapse: sample diversity 0.00 of the real images'")
    assert "at 2 validations in a row" in line and "model=cgan" in line and line.endswith("includes collapse)")
    assert model.iteration == 4  # stopped at the second validation (two iterations per epoch), not the sixth


def test_rising_fid_warns_divergence_once_per_episode_and_stops(caplog):
    # The evaluation diagnoses read only the trainer's metrics: a stand-in trainer feeds a FID series.
    health, model = TrainingHealth(fid_rising_evaluations=2, stop_on=["divergence"]), make_model()
    trainer = SimpleNamespace(
        state=SimpleNamespace(fn="fit"), sanity_checking=False, loggers=[], is_global_zero=True,
        should_stop=False, fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(_batches_that_stepped=0)),
        callback_metrics={},
    )  # fmt: skip
    stops = []
    with caplog.at_level(logging.WARNING, logger="gans.callbacks.health"):
        for fid in (60.0, 50.0, 55.0, 61.0, 70.0, 65.0, 72.0, 80.0):
            trainer.callback_metrics = {"val/fid": torch.tensor(fid)}
            trainer.should_stop = False
            health.on_validation_end(trainer, model)
            stops.append(trainer.should_stop)
    lines = health_lines(caplog)
    # Episodes: 50 -> 55 -> 61 (on through 70), then 65 ends it, and 65 -> 72 -> 80 is a second one.
    assert len(lines) == 2 and health.episodes["divergence"].episodes == 2
    assert lines[0].startswith("health/divergence: FID rising at 2 validations in a row: 50.0 -> 55.0 -> 61.0")
    assert "Adam" not in lines[0]  # beta1 is 0.5 already
    assert stops == [False, False, False, True, False, False, False, True]


def test_low_class_coverage_is_collapse_when_it_lasts():
    health, model = TrainingHealth(collapse_evaluations=2), make_model()
    trainer = SimpleNamespace(
        state=SimpleNamespace(fn="fit"), sanity_checking=False, loggers=[], is_global_zero=True, should_stop=False,
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(_batches_that_stepped=0)), callback_metrics={},
    )  # fmt: skip
    for coverage in (0.2, 0.8, 0.15, 0.1):
        trainer.callback_metrics = {"val/class_coverage": torch.tensor(coverage)}
        health.on_validation_end(trainer, model)
    assert health.episodes["collapse"].episodes == 1 and "class coverage 0.10" in health.warnings[0]


def test_a_nan_loss_is_diagnosed_divergence_with_the_lecture_s_remedies(tmp_path, random_images, caplog):
    class PoisonAtSecondEpoch(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                with torch.no_grad():
                    next(pl_module.discriminator.parameters()).fill_(float("nan"))

    health = TrainingHealth()
    trainer = make_trainer(
        tmp_path, max_epochs=3, limit_train_batches=2, limit_val_batches=0, callbacks=[health, PoisonAtSecondEpoch()]
    )
    with caplog.at_level(logging.WARNING, logger="gans.callbacks.health"), pytest.raises(NonFiniteLossError):
        trainer.fit(make_model(real_label=[0.7, 1.2], fake_label=[0.0, 0.3]), datamodule=random_images())
    (line,) = health_lines(caplog)
    assert line.startswith("health/divergence: d_loss became nan at iteration")
    assert "every trick of the lecture that fits is on already" in line


def test_the_monitor_is_silent_for_a_model_without_a_discriminator(tmp_path, random_images):
    from tests.toys import MomentMatchingModel, TinyGenerator

    model = MomentMatchingModel(TinyGenerator(8, 16, 1), adam, eval_fid=False)
    health = TrainingHealth(window_iterations=1, grad_norm_g_below=1e9)  # would fire on any G gradient
    trainer = make_trainer(tmp_path, limit_train_batches=3, limit_val_batches=0, callbacks=[health])
    trainer.fit(model, datamodule=random_images())
    assert health.warnings == [] and not any(k.startswith("health/") for k in trainer.callback_metrics)


# -- the default configuration -------------------------------------------------------------------
def test_a_healthy_default_smoke_run_raises_no_warning(tmp_path, caplog):
    """`python run.py debug=smoke` in process: the real DCGAN on Fashion-MNIST with its evaluation."""
    from gans.tasks.train import train

    register_resolvers()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config", overrides=["debug=smoke", "logger=csv", "test=false", "callbacks.health.stop_on=[collapse]"],
            return_hydra_config=True,
        )  # fmt: skip
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)
        cfg.hydra.runtime.cwd = str(ROOT)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    assert instantiate(cfg.callbacks.health).stop_on == ("collapse",)
    with caplog.at_level(logging.INFO, logger="gans.callbacks.health"):
        train(cfg)
    assert health_lines(caplog) == []
    # The monitor ran: its signals and diagnoses are in the log, every diagnosis 0.
    (metrics,) = tmp_path.glob("csv/*/metrics.csv")
    rows = list(csv.DictReader(metrics.open()))
    logged = {k: float(v) for row in rows for k, v in row.items() if k.startswith("health/") and v}
    assert 0.0 < logged["health/diversity_ratio"] < 2.0 and logged["health/oscillation_g"] > 0.0
    assert logged["health/collapse"] == logged["health/divergence"] == logged["health/vanishing_gradients"] == 0.0
