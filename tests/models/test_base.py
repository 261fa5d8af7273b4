"""The adversarial base module, driven by Lightning on a tiny random data set (DCGAN as the subject)."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from gans.errors import NonFiniteLossError
from gans.models.base import eval_mode
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


def test_eval_mode_restores_the_mode_it_found_even_after_an_error():
    net = torch.nn.Sequential(torch.nn.BatchNorm2d(2))
    for training in (True, False):
        net.train(training)
        with pytest.raises(RuntimeError), eval_mode(net) as inside:
            assert inside is net and not net[0].training
            raise RuntimeError("stop")
        assert net.training is training and net[0].training is training


def test_checkpoint_holds_plain_values_and_loads_with_weights_only(tmp_path, random_images):
    model = make_model(real_label=0.9)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = make_trainer(
        tmp_path, limit_train_batches=2, limit_val_batches=0, enable_checkpointing=True, callbacks=[ckpt]
    )
    trainer.fit(model, datamodule=random_images())
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert state["hyper_parameters"]["real_label"] == 0.9
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
    with pytest.raises(NonFiniteLossError, match=r"d_loss became nan at iteration \d+.*last good checkpoint"):
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


# -- issue 6: the generative base --------------------------------------------------------------------
def test_ema_copies_batch_norm_buffers_instead_of_averaging_them(tmp_path, random_images):
    # Defect 8: AveragedModel(use_buffers=True) averaged running statistics and num_batches_tracked.
    model = make_model(ema_decay=0.5)
    make_trainer(tmp_path, limit_train_batches=3, limit_val_batches=0).fit(model, datamodule=random_images())
    for (name, ema_buffer), buffer in zip(model.ema.module.named_buffers(), model.generator.buffers()):
        assert torch.equal(ema_buffer, buffer), name
    tracked = [b for n, b in model.ema.module.named_buffers() if n.endswith("num_batches_tracked")]
    assert tracked and all(int(b) == 6 for b in tracked)  # G runs twice per iteration (D and G losses)


def test_progress_counts_iterations_and_images_and_is_checkpointed(tmp_path, random_images):
    model = make_model(n_critic=2)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = make_trainer(
        tmp_path, limit_train_batches=5, limit_val_batches=0, enable_checkpointing=True, callbacks=[ckpt]
    )
    trainer.fit(model, datamodule=random_images())
    assert (model.iteration, model.images_seen, model.global_step) == (5, 40, 7)  # 5 D steps + 2 G steps
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert state["progress"] == {"iteration": 5, "images_seen": 40}
    restored = make_model(n_critic=2)
    restored.on_load_checkpoint(state)
    assert (restored.iteration, restored.kimg) == (5, 0.04)


def test_iteration_schedulers_step_once_per_iteration(tmp_path, random_images):
    step_lr = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5)
    model = make_model(scheduler_g=step_lr, scheduler_d=step_lr, scheduler_interval="iteration")
    make_trainer(tmp_path, limit_train_batches=5, limit_val_batches=0).fit(model, datamodule=random_images())
    for opt in model.optimizers():
        assert opt.optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5**2)  # 5 iterations: 2 halvings


class RecordingDCGAN(DCGAN):
    """Records the discriminator's gradient norm after each of its steps (the after-step hook)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.after = []

    def after_step(self, network: str) -> None:
        grads = [p.grad for p in getattr(self, network).parameters() if p.grad is not None]
        self.after.append((network, float(torch.nn.utils.get_total_norm(grads))))


def test_gradient_clipping_per_optimizer_and_the_after_step_hook(tmp_path, random_images):
    torch.manual_seed(0)
    model = RecordingDCGAN(
        Generator(16, 16, 1, width=8), Discriminator(16, 1, width=8), adam, adam, eval_fid=False, gradient_clip_d=1e-3
    )
    make_trainer(tmp_path, limit_train_batches=3, limit_val_batches=0).fit(model, datamodule=random_images())
    assert [name for name, _ in model.after] == ["discriminator", "generator"] * 3
    assert all(norm <= 1e-3 * 1.0001 for name, norm in model.after if name == "discriminator")
    assert any(norm > 1e-2 for name, norm in model.after if name == "generator")  # G is not clipped


class FixedImagesGenerator(torch.nn.Module):
    """Images read off the latent through tanh: no convolution or matmul, so autocast cannot change them."""

    latent_dim = 256

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z * self.scale).view(-1, 1, 16, 16)


def test_bf16_validation_scores_the_same_fid_as_float32(tmp_path, random_images):
    # Defect 1: validation ran Inception under bf16 autocast; the FID must be the float32 one.
    scores = {}
    for precision in ("32-true", "bf16-mixed"):
        model = DCGAN(FixedImagesGenerator(), Discriminator(16, 1, width=8), adam, adam, eval_fid=True)
        trainer = make_trainer(tmp_path, precision=precision, limit_train_batches=0)
        trainer.validate(model, datamodule=random_images())
        scores[precision] = float(trainer.callback_metrics["val/fid"])
    # The second run also compares its fakes with the float32 real features cached by the first.
    assert scores["bf16-mixed"] == pytest.approx(scores["32-true"], rel=1e-6)


def test_conditional_evaluation_takes_each_real_image_s_label(random_images):
    from tests.toys import ConditionalToyGAN, TinyGenerator, TinyProjectionDiscriminator

    model = ConditionalToyGAN(
        TinyGenerator(8, 16, 1, num_classes=10), TinyProjectionDiscriminator(16, 1, 10), adam, adam, num_fixed_samples=20
    )
    assert torch.equal(model.fixed_condition, torch.arange(20) % 10)  # grid latents carry their classes
    seen = []
    model.synthesize = lambda network, z, condition: seen.append(condition) or network(z, condition)
    model._eval_latents = torch.randn(16, 8)
    batch = {"image": torch.zeros(4, 1, 16, 16), "label": torch.tensor([3, 1, 4, 1]), "index": torch.arange(4)}
    (reals, fakes) = model.evaluation_pairs(batch)[""]
    assert torch.equal(seen[0], batch["label"]) and fakes.shape == reals.shape
    labels = model.visuals(nrow=10, interpolation_rows=2, interpolation_steps=3) and seen[-1]
    assert torch.equal(labels, torch.tensor([0, 0, 0, 1, 1, 1]))  # each interpolation row keeps its class


def test_ema_decay_warms_up_so_early_samples_are_not_the_initial_weights():
    # Issue 7: a fixed 0.999 kept 37% of the random initial generator after 1,000 iterations.
    from gans.errors import GansError
    from gans.models.base import ema_with_warmup

    average, current = [torch.zeros(3)], [torch.ones(3)]
    update = ema_with_warmup(0.999)
    expected = 0.0
    for n in range(3):
        update(average, current, torch.tensor(n))
        expected += (1 - min(0.999, (1 + n) / (10 + n))) * (1 - expected)
        assert torch.allclose(average[0], torch.full((3,), expected))
    assert expected == pytest.approx(0.99545, abs=1e-5)
    late = [torch.zeros(1)]
    update(late, [torch.ones(1)], torch.tensor(100_000))
    assert late[0].item() == pytest.approx(0.001, rel=1e-4)  # the configured decay, once warmed up
    with pytest.raises(GansError, match=r"model.ema_decay=1.5 must be in \(0, 1\)"):
        ema_with_warmup(1.5)


class StepListener(L.Callback):
    """A callback that listens to the backward and the optimizer step: Lightning's own path is taken."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.calls.append("backward")

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.calls.append("step")


def test_the_direct_backward_and_step_train_exactly_as_lightning_s_path(tmp_path, random_images):
    """`backward_of` and `step_of` skip Lightning's dispatch where it would only call this module:
    the same weights bit for bit, the same global_step, clipping and logged gradient norms."""

    def run(*callbacks):
        L.seed_everything(3)
        model = RecordingDCGAN(Generator(16, 16, 1, width=8), Discriminator(16, 1, width=8), adam, adam,
                               eval_fid=False, gradient_clip_d=1e-3)  # fmt: skip
        trainer = make_trainer(tmp_path, limit_train_batches=3, limit_val_batches=0, callbacks=list(callbacks))
        trainer.fit(model, datamodule=random_images())
        logged = {k: float(v) for k, v in trainer.logged_metrics.items() if "grad_norm" in k}
        return model, trainer, logged

    direct, direct_trainer, direct_logged = run()
    listener = StepListener()
    lightning, lightning_trainer, lightning_logged = run(listener)
    assert (direct._direct_backward, direct._direct_step) == (True, True)
    assert (lightning._direct_backward, lightning._direct_step) == (False, False)
    assert listener.calls == ["backward", "step"] * 6
    assert direct_trainer.global_step == lightning_trainer.global_step == 6  # two optimizer steps an iteration
    for a, b in zip(direct.parameters(), lightning.parameters(), strict=True):
        assert torch.equal(a, b)
    assert direct.after == lightning.after and all(n <= 1e-3 * 1.0001 for k, n in direct.after if k == "discriminator")
    assert direct_logged == lightning_logged and set(direct_logged) == {"train/grad_norm_d", "train/grad_norm_g"}
