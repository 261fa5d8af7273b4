"""ProGAN's training through the growth: the stage follows the images shown, real images are
brought to the stage's side, and a run resumed inside a fade-in continues exactly."""

import functools

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint

from gans.errors import GansError
from gans.models.progan import ProGAN
from gans.nets.progan import Discriminator, Generator
from tests.models.test_base import make_trainer

adam = functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.99), eps=1e-8)


def make_progan(stable_images: int = 64, num_classes: int = 0, **kwargs) -> ProGAN:
    torch.manual_seed(0)
    kwargs.setdefault("eval_fid", False)
    g = Generator(8, 16, 1, base_channels=32, max_channels=8, num_classes=num_classes)
    d = Discriminator(16, 1, base_channels=32, max_channels=8, num_classes=num_classes)
    kwargs["num_classes"] = num_classes
    return ProGAN(g, d, adam, adam, fade_images=64, stable_images=stable_images, batch_sizes=[8, 8, 4], num_fixed_samples=4,
                  **kwargs)  # fmt: skip


def test_training_grows_through_three_resolutions(tmp_path, random_images):
    model = make_progan()
    # 64 training images, 8 iterations an epoch: 64 images at 4x4, 64 + 64 at 8x8 (batch 8), then
    # 16x16 fading in at 4 images an iteration.
    make_trainer(tmp_path, max_epochs=4, limit_val_batches=0).fit(model, datamodule=random_images())
    assert model.images_seen == 192 + 4 * 8 and model.stage.level == 2 and model.stage.alpha == 0.5
    assert model.generate(3).shape == (3, 1, 16, 16)


def test_a_run_resumed_inside_a_fade_in_continues_exactly(tmp_path, random_images):
    # Phases: 32 images at 4x4; 8x8 fading in over 64, stable for 32; 16x16 from 128 images.
    straight = make_progan(stable_images=32)
    make_trainer(tmp_path / "a", max_epochs=4, limit_val_batches=0).fit(straight, datamodule=random_images())
    first = make_progan(stable_images=32)
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    make_trainer(tmp_path / "b", max_epochs=1, limit_val_batches=0, enable_checkpointing=True, callbacks=[saver]).fit(
        first, datamodule=random_images())  # fmt: skip
    assert (first.stage.level, first.stage.alpha) == (1, 0.5)  # stopped inside the fade-in
    resumed = make_progan(stable_images=32)
    make_trainer(tmp_path / "c", max_epochs=4, limit_val_batches=0).fit(
        resumed, datamodule=random_images(), ckpt_path=tmp_path / "ckpt" / "last.ckpt", weights_only=True)  # fmt: skip
    assert resumed.images_seen == straight.images_seen == 192 and straight.stage.level == 2
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_validation_scores_each_side_it_reaches(tmp_path, random_images):
    # Validation at 8x8 (64 images shown), then twice at 16x16: the 8x8 stream, now unfed, is skipped.
    model = make_progan(stable_images=16, eval_fid=True)
    trainer = make_trainer(tmp_path, max_epochs=3, check_val_every_n_epoch=None, val_check_interval=8)
    trainer.fit(model, datamodule=random_images())
    logged = trainer.callback_metrics
    assert model.stage.level == 2 and "val/fid_16" in logged and torch.isfinite(logged["val/fid_16"])
    assert set(model._distances["validate"]) == {"8", "16"}


def test_with_classes_both_losses_add_the_auxiliary_classifier_terms(tmp_path, random_images):
    model = make_progan(num_classes=10)
    assert torch.equal(model.fixed_condition, torch.arange(4))  # the grid's classes
    data = random_images()
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    model.optimizer_phase = model.stage.phase  # no optimizers to reset outside a trainer
    batch = model.prepare_batch(batch)
    assert len(batch["label"]) == len(batch["image"]) == 8  # labels are cut to the phase's batch with the images
    losses = {}
    for weight in (0.0, 2.0):
        model.class_weight = weight
        for name in ("discriminator", "generator"):
            torch.manual_seed(1)
            losses[name, weight] = getattr(model, f"{name}_loss")(batch)
    stage, labels = batch["stage"], batch["label"]
    torch.manual_seed(1)
    fake = model.generator(model.sample_latent(8), stage.level, stage.alpha, labels)
    real_classes = model.discriminator(batch["image"], stage.level, stage.alpha, with_classes=True)[1]
    fake_classes = model.discriminator(fake, stage.level, stage.alpha, with_classes=True)[1]
    by_hand = F.cross_entropy(real_classes, labels) + F.cross_entropy(fake_classes, labels)
    (d0, _), (d2, stats) = losses["discriminator", 0.0], losses["discriminator", 2.0]
    torch.testing.assert_close(stats["class_loss"], by_hand.detach())
    torch.testing.assert_close(d2 - d0, 2.0 * by_hand, rtol=1e-4, atol=1e-4)
    (g0, _), (g2, stats) = losses["generator", 0.0], losses["generator", 2.0]
    torch.testing.assert_close(g2 - g0, 2.0 * stats["class_loss"], rtol=1e-4, atol=1e-4)
    model.class_weight = 1.0
    make_trainer(tmp_path, max_epochs=2, limit_val_batches=0).fit(model, datamodule=random_images())
    assert model.generate(3, torch.tensor([0, 5, 9])).shape == (3, 1, 8, 8)


def test_networks_of_other_classes_than_the_model_are_one_line():
    g = Generator(8, 16, 1, base_channels=32, max_channels=8, num_classes=10)
    d = Discriminator(16, 1, base_channels=32, max_channels=8)
    with pytest.raises(GansError, match=r"model.generator.num_classes=10 but model.num_classes=0"):
        ProGAN(g, d, adam, adam, fade_images=64, stable_images=64, num_fixed_samples=4, eval_fid=False)
