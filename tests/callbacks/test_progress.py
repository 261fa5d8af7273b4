"""Stopping by iteration count: the stop validates (and so checkpoints) where it happens; last.ckpt
is always the latest state."""

import lightning as L
import pytest
import torch

from gans.callbacks.progress import IterationLimit, ProgressCheckpoint
from gans.errors import GansError
from tests.models.test_base import make_model, make_trainer


class Validations(L.Callback):
    """The iterations at which validation ran."""

    def __init__(self) -> None:
        self.at = []

    def on_validation_end(self, trainer, pl_module) -> None:
        self.at.append(pl_module.iteration)


def test_a_stop_in_an_epoch_without_validation_still_validates(tmp_path, random_images):
    # Lightning validates on a stop only in the epochs check_val_every_n_epoch selects; iteration
    # 10 lies in the second epoch (8 iterations each), which every-4th-epoch validation skips.
    model, validations = make_model(), Validations()
    trainer = make_trainer(
        tmp_path, max_epochs=8, check_val_every_n_epoch=4, callbacks=[IterationLimit(10), validations]
    )
    trainer.fit(model, datamodule=random_images())
    assert model.iteration == 10 and validations.at == [10]


def test_a_run_resumed_at_the_limit_trains_no_further(tmp_path, random_images):
    model = make_model()
    trainer = make_trainer(tmp_path, max_epochs=8, limit_val_batches=0, callbacks=[IterationLimit(10)])
    trainer.fit(model, datamodule=random_images())
    saved = tmp_path / "at-limit.ckpt"
    trainer.save_checkpoint(saved)
    resumed, validations = make_model(), Validations()
    trainer = make_trainer(tmp_path, max_epochs=8, callbacks=[IterationLimit(10), validations])
    trainer.fit(resumed, datamodule=random_images(), ckpt_path=saved, weights_only=True)
    assert resumed.iteration == 10 and validations.at == []


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_iteration_limits_are_refused(bad):
    with pytest.raises(GansError, match=rf"max_iterations={bad} must be a positive number of iterations"):
        IterationLimit(bad)


class WorseningMetric(L.Callback):
    """Logs a monitored value that gets worse at every validation, so only the first is a best."""

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        pl_module.log("val/worse", float(pl_module.iteration))


@pytest.mark.parametrize("every", [1, 2])  # Lightning saves at epoch ends (1) or after validations (2)
def test_last_ckpt_is_the_latest_state_even_when_the_metric_did_not_improve(tmp_path, random_images, every):
    checkpoint = ProgressCheckpoint(dirpath=tmp_path / "checkpoints", filename="best-iter{iteration:07d}",
                                    auto_insert_metric_name=False, monitor="val/worse", mode="min",
                                    save_top_k=1, save_last=True)  # fmt: skip
    model = make_model()
    trainer = make_trainer(tmp_path, max_epochs=2 * every + 1, check_val_every_n_epoch=every, enable_checkpointing=True,
                           callbacks=[WorseningMetric(), checkpoint])  # fmt: skip
    trainer.fit(model, datamodule=random_images())
    assert model.iteration == 8 * (2 * every + 1)  # epochs of 8 iterations; the last one without validation if every=2
    best = sorted(p.name for p in (tmp_path / "checkpoints").glob("best-*.ckpt"))
    assert best == [f"best-iter{8 * every:07d}.ckpt"]  # the first validation's
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["progress"]["iteration"] == model.iteration and last["global_step"] == trainer.global_step
    for key, value in model.state_dict().items():
        assert torch.equal(last["state_dict"][key], value), key
