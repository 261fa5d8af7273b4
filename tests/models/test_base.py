"""The adversarial base module, driven by Lightning on a tiny random data set (DCGAN as the subject)."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from gans.errors import NonFiniteLossError
from gans.models.dcgan import DCGAN
from gans.nets.dcgan import Discriminator, Generator

adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


def make_model(**kwargs) -> DCGAN:
    torch.manual_seed(0)
    kwargs.setdefault("eval_fid", False)
    return DCGAN(Generator(16, 16, 1, width=8), Discriminator(16, 1, width=8), adam, adam, **kwargs)


def make_trainer(tmp_path, **kwargs) -> L.Trainer:
    kwargs.setdefault("max_epochs", 1)
    kwargs.setdefault("logger", False)
    kwargs.setdefault("enable_checkpointing", False)
    return L.Trainer(
        accelerator="cpu",
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        log_every_n_steps=1,
        **kwargs,
    )


def test_each_update_computes_only_its_own_network_gradients(tmp_path, random_images):
    model = make_model()
    phase, fired = {"now": None}, []
    for name, net in (("G", model.generator), ("D", model.discriminator)):
        for p in net.parameters():
            p.register_hook(lambda g, name=name: fired.append((phase["now"], name)))
    for loss_name, step in (("discriminator_loss", "d_step"), ("generator_loss", "g_step")):
        original = getattr(model, loss_name)

        def traced(batch, original=original, step=step):
            phase["now"] = step
            return original(batch)

        setattr(model, loss_name, traced)
    make_trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(model, datamodule=random_images())
    assert {name for step, name in fired if step == "d_step"} == {"D"}
    assert {name for step, name in fired if step == "g_step"} == {"G"}


def test_n_critic_discriminator_updates_per_generator_update(tmp_path, random_images):
    model = make_model(n_critic=2)
    make_trainer(tmp_path, limit_train_batches=4, limit_val_batches=0).fit(model, datamodule=random_images())
    opt_g, opt_d = model.optimizers()
    step = lambda opt: int(next(iter(opt.optimizer.state.values()))["step"])
    assert (step(opt_d), step(opt_g)) == (4, 2)
    assert model.global_step == 6  # Lightning counts every optimizer step


def test_ema_generator_is_used_for_sampling(tmp_path, random_images):
    model = make_model(ema_decay=0.5)
    make_trainer(tmp_path, limit_train_batches=3, limit_val_batches=0).fit(model, datamodule=random_images())
    assert model.sampler is model.ema.module
    g, e = next(model.generator.parameters()), next(model.ema.module.parameters())
    assert not torch.equal(g, e) and not e.requires_grad
    assert int(model.ema.n_averaged) == 3
    images = model.generate(5)
    assert images.shape == (5, 1, 16, 16) and images.abs().max() <= 1


def test_generate_from_is_deterministic_and_keeps_train_mode():
    model = make_model()
    model.train()
    a, b = model.generate_from(model.fixed_z[:4]), model.generate_from(model.fixed_z[:4])
    assert torch.equal(a, b) and model.generator.training


def test_checkpoint_holds_plain_values_and_loads_with_weights_only(tmp_path, random_images):
    model = make_model(label_smoothing=0.1)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = make_trainer(
        tmp_path, limit_train_batches=2, limit_val_batches=0, enable_checkpointing=True, callbacks=[ckpt]
    )
    trainer.fit(model, datamodule=random_images())
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert state["hyper_parameters"]["label_smoothing"] == 0.1
    assert torch.equal(state["state_dict"]["fixed_z"], model.fixed_z)
    assert not any(key.startswith("_distances") or "inception" in key for key in state["state_dict"])


def test_diverged_training_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path, random_images):
    class PoisonAtSecondEpoch(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                with torch.no_grad():
                    next(pl_module.discriminator.parameters()).fill_(float("nan"))

    model = make_model()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = make_trainer(
        tmp_path,
        max_epochs=3,
        limit_train_batches=2,
        limit_val_batches=0,
        enable_checkpointing=True,
        callbacks=[ckpt, PoisonAtSecondEpoch()],
    )
    with pytest.raises(NonFiniteLossError, match=r"d_loss became nan at step \d+.*last good checkpoint"):
        trainer.fit(model, datamodule=random_images())
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert state["epoch"] == 0 and state["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


def test_seeded_cpu_runs_reproduce(tmp_path, random_images):
    def run():
        L.seed_everything(7)
        model = make_model()
        make_trainer(tmp_path, limit_train_batches=3, limit_val_batches=0).fit(model, datamodule=random_images())
        return torch.cat([p.flatten() for p in model.parameters()])

    assert torch.equal(run(), run())


def test_schedulers_step_once_per_epoch(tmp_path, random_images):
    step_lr = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    model = make_model(scheduler_g=step_lr, scheduler_d=step_lr)
    make_trainer(tmp_path, max_epochs=2, limit_train_batches=2, limit_val_batches=0).fit(
        model, datamodule=random_images()
    )
    for opt in model.optimizers():
        assert opt.optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.25)
