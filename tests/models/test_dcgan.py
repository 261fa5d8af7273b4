"""DCGAN's losses as the paper states them, and its options."""

import pytest
import torch

from gans import losses
from tests.models.test_base import make_model


def test_losses_match_the_gan_objective():
    model = make_model()
    batch = {"image": torch.rand(6, 1, 16, 16) * 2 - 1}
    torch.manual_seed(1)
    d_loss, stats = model.discriminator_loss(batch)
    torch.manual_seed(1)
    fake = model.generator(torch.randn(6, 16))
    expected = losses.bce_discriminator_loss(model.discriminator(batch["image"]), model.discriminator(fake))
    assert d_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert 0 < stats["D(x)"] < 1 and 0 < stats["D(G(z))"] < 1
    torch.manual_seed(2)
    g_loss, _ = model.generator_loss(batch)
    torch.manual_seed(2)
    fake_logits = model.discriminator(model.generator(torch.randn(6, 16)))
    assert g_loss.item() == pytest.approx(losses.nonsaturating_generator_loss(fake_logits).item(), rel=1e-5)


def test_minimax_objective_and_unknown_objective():
    assert make_model(generator_objective="minimax").generator_objective is losses.minimax_generator_loss
    with pytest.raises(ValueError, match="generator_objective must be one of"):
        make_model(generator_objective="wasserstein")


def train_config_briefly(tmp_path, random_images, *overrides: str, size: int = 64, channels: int = 3):
    """The model a config composes (at size x size x channels), after two Lightning iterations on
    random images, and its parameters before training."""
    from hydra.utils import instantiate

    from tests.conftest import compose_config
    from tests.models.test_base import make_trainer

    cfg = compose_config(*overrides, f"data.image_size={size}", f"data.channels={channels}", "model.eval_fid=false")
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    before = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    data = random_images(num=48, channels=channels, size=size, val_size=8, test_size=8, batch_size=8)
    make_trainer(tmp_path, limit_train_batches=2, limit_val_batches=0).fit(model, datamodule=data)
    return model, before


def assert_trained_and_samples(model, before, size: int = 64, channels: int = 3) -> None:
    assert model.iteration == 2 and model.global_step == 4  # a D and a G step per iteration
    for name in ("generator", "discriminator"):
        changed = [not torch.equal(v, before[f"{name}.{k}"]) for k, v in getattr(model, name).state_dict().items()
                   if v.is_floating_point()]  # fmt: skip
        assert any(changed), name
    images = model.generate(3)
    assert images.shape == (3, channels, size, size) and images.abs().max() <= 1 and torch.isfinite(images).all()
