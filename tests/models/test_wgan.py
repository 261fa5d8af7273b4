"""WGAN (Arjovsky et al. 2017): the critic and generator losses by hand, clipping after every
critic step, and one-line errors for a bad clip value or n_critic."""

import functools

import pytest
import torch

from gans.errors import GansError
from gans.models.wgan import WGAN
from gans.nets.dcgan import Discriminator, Generator
from tests.models.test_base import make_trainer

rmsprop = functools.partial(torch.optim.RMSprop, lr=5e-5)


def make_wgan(**kwargs) -> WGAN:
    torch.manual_seed(0)
    kwargs.setdefault("eval_fid", False)
    return WGAN(Generator(16, 16, 1, width=8), Discriminator(16, 1, width=8), rmsprop, rmsprop, **kwargs)


def test_losses_are_the_wasserstein_estimates():
    model = make_wgan()
    real = torch.rand(6, 1, 16, 16) * 2 - 1
    torch.manual_seed(1)
    d_loss, stats = model.discriminator_loss({"image": real})
    torch.manual_seed(1)
    fake = model.generator(torch.randn(6, 16))
    expected = model.discriminator(fake).mean() - model.discriminator(real).mean()
    assert d_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["wasserstein"].item() == pytest.approx(-expected.item(), rel=1e-5)
    torch.manual_seed(2)
    g_loss, _ = model.generator_loss({"image": real})
    torch.manual_seed(2)
    assert g_loss.item() == pytest.approx(-model.discriminator(model.generator(torch.randn(6, 16))).mean().item())


def test_critic_weights_are_clipped_after_every_critic_step_and_the_generator_is_not(tmp_path, random_images):
    model = make_wgan(clip_value=0.01, n_critic=2)
    with torch.no_grad():  # start outside the box, so an unclipped parameter would show
        for p in model.parameters():
            p.mul_(100.0)
    make_trainer(tmp_path, limit_train_batches=3, limit_val_batches=0).fit(model, datamodule=random_images())
    critic = torch.cat([p.flatten() for p in model.discriminator.parameters()])
    assert critic.abs().max() <= 0.01 and (critic.abs() == 0.01).any()
    assert max(p.abs().max() for p in model.generator.parameters()) > 0.01


@pytest.mark.parametrize("clip_value", [0, -0.01, float("nan"), "big"])
def test_a_clip_value_that_is_not_positive_is_one_clear_error(clip_value):
    with pytest.raises(GansError, match=r"model.clip_value=.* must be a positive number"):
        make_wgan(clip_value=clip_value)


@pytest.mark.parametrize("n_critic", [2.5, 0, True, "5"])
def test_n_critic_must_be_a_positive_integer(n_critic):
    with pytest.raises(GansError, match=r"model.n_critic=.* must be a positive integer"):
        make_wgan(n_critic=n_critic)
