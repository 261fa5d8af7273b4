"""`model.compile`: the base's networks under `torch.compile` train as the eager ones do."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch

from gans.models.base import GenerativeModule
from tests.toys import ConditionalToyGAN, TinyGenerator, TinyProjectionDiscriminator

adam = functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.999))


@functools.cache
def inductor_unavailable() -> str | None:
    """Why torch.compile's default backend (inductor) cannot compile on this machine, or None."""
    try:
        torch.compile(lambda x: x.sin() + 1)(torch.ones(2))
    except Exception as error:  # noqa: BLE001 - any failure: no C compiler, no Python headers, a platform...
        return f"inductor cannot compile here: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return None


class LossRecorder(L.Callback):
    """The losses of every update, read after each iteration."""

    def __init__(self) -> None:
        self.losses: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append({k: float(v) for k, v in pl_module._last_losses.items()})


def train(compile: bool, random_images, tmp_path, steps: int = 3) -> tuple[GenerativeModule, list[dict[str, float]]]:
    torch.manual_seed(0)
    model = ConditionalToyGAN(
        TinyGenerator(8, 8, 1, num_classes=10), TinyProjectionDiscriminator(8, 1, num_classes=10), adam, adam,
        num_classes=10, eval_fid=False, ema_decay=0.9, compile=compile,
    )  # fmt: skip
    recorder = LossRecorder()
    trainer = L.Trainer(
        accelerator="cpu", max_steps=2 * steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1, default_root_dir=tmp_path,
        callbacks=[recorder],
    )  # fmt: skip
    L.seed_everything(3)
    trainer.fit(model, datamodule=random_images(num=48, size=8, batch_size=4, val_size=4))
    return model, recorder.losses


def test_compiled_networks_train_as_the_eager_ones_and_share_checkpoints(tmp_path, random_images):
    reason = inductor_unavailable()
    if reason:
        pytest.skip(reason)
    eager, eager_losses = train(False, random_images, tmp_path)
    compiled, compiled_losses = train(True, random_images, tmp_path)
    # Compiled for real: the networks run through dynamo, and the EMA copy stays eager.
    assert compiled.generator._compiled_call_impl is not None
    assert compiled.discriminator._compiled_call_impl is not None
    assert getattr(compiled.ema.module, "_compiled_call_impl", None) is None
    assert len(compiled_losses) == 3 and set(compiled_losses[0]) == {"d", "g"}
    for step_eager, step_compiled in zip(eager_losses, compiled_losses, strict=True):
        for name in step_eager:
            assert step_compiled[name] == pytest.approx(step_eager[name], rel=1e-4, abs=1e-5), name
    # The same parameters, EMA included, and the same checkpoint keys (no `_orig_mod.`): each loads into the other.
    eager_state, compiled_state = eager.state_dict(), compiled.state_dict()
    assert list(compiled_state) == list(eager_state)
    assert not any("_orig_mod" in key for key in compiled_state)
    # Parameters within what Adam can move one whose gradient is rounding noise (a bias before batch
    # norm has a true gradient of 0, and Adam turns noise of either sign into steps of lr).
    for key, value in eager_state.items():
        if value.is_floating_point():
            torch.testing.assert_close(compiled_state[key], value, rtol=0, atol=2 * 3 * 1e-3, msg=key)
    eager.load_state_dict(compiled_state)
    compiled.load_state_dict(eager_state)
