"""ProGAN's training through the growth: the stage follows the images shown, real images are
brought to the stage's side, and a run resumed inside a fade-in continues exactly."""

import functools

import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from gans.models.progan import ProGAN
from gans.nets.progan import Discriminator, Generator
from tests.models.test_base import make_trainer

adam = functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.99), eps=1e-8)


def make_progan(stable_images: int = 64, **kwargs) -> ProGAN:
    torch.manual_seed(0)
    kwargs.setdefault("eval_fid", False)
    g = Generator(8, 16, 1, base_channels=32, max_channels=8)
    d = Discriminator(16, 1, base_channels=32, max_channels=8)
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
