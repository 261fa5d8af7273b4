"""Learning-rate schedules for the `scheduler_g`/`scheduler_d` configs (partial callables of an
optimizer, stepped once per epoch by the base module)."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class LinearDecay:
    """The learning-rate factor at epoch e (0-based): 1 for the first `total - decay` epochs, then
    falling by 1 / (decay + 1) per epoch, on the line that reaches 0 after the last epoch:
    1 - max(0, e + 1 - (total - decay)) / (decay + 1), the authors' `lambda_rule`.

    A callable object with two ints, not a lambda: `LambdaLR.state_dict()` saves its `__dict__`,
    which keeps checkpoints loadable with `torch.load(weights_only=True)` (and resumable).
    """

    def __init__(self, total_epochs: int, decay_epochs: int) -> None:
        self.constant_epochs, self.decay_epochs = total_epochs - decay_epochs, decay_epochs

    def __call__(self, epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - self.constant_epochs) / (self.decay_epochs + 1)


def linear_decay(optimizer: Optimizer, total_epochs: int, decay_epochs: int | None = None) -> LambdaLR:
    """CycleGAN's schedule (Zhu et al. 2017, sec. 4: "keep the same learning rate for the first 100
    epochs and linearly decay the rate to zero over the next 100 epochs"); pix2pix's code uses it
    too. decay_epochs: None = the second half of `total_epochs`."""
    if total_epochs is None or total_epochs < 1:
        raise ValueError(f"linear_decay needs the number of epochs (trainer.max_epochs), got {total_epochs}")
    decay_epochs = total_epochs // 2 if decay_epochs is None else decay_epochs
    if not 0 <= decay_epochs <= total_epochs:
        raise ValueError(f"decay_epochs={decay_epochs} must lie in [0, total_epochs={total_epochs}]")
    return LambdaLR(optimizer, LinearDecay(total_epochs, decay_epochs))
