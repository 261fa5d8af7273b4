"""Stopping by iteration count: the stop validates (and so checkpoints) where it happens."""

import lightning as L
import pytest

from gans.callbacks.progress import IterationLimit
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
