"""DCGAN's losses as the paper states them, and its options."""

import pytest
import torch

from gans import losses
from gans.errors import GansError
from gans.models.dcgan import DCGAN
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


def test_a_sigmoid_generator_trains_on_images_in_0_1_and_samples_in_minus_1_1():
    from gans.nets.dcgan import Discriminator, Generator
    from tests.models.test_base import adam

    torch.manual_seed(0)
    g = Generator(16, 16, 1, width=8, output="sigmoid")
    model = DCGAN(g, Discriminator(16, 1, width=8), adam, adam, output="sigmoid", eval_fid=False)
    batch = model.prepare_batch({"image": torch.tensor([-1.0, 0.0, 1.0]).view(3, 1, 1, 1).expand(3, 1, 16, 16)})
    assert batch["image"][:, 0, 0, 0].tolist() == [0.0, 0.5, 1.0]
    samples = model.generate(64)
    assert samples.min() < 0 < samples.max() and samples.abs().max() <= 1
    with pytest.raises(GansError, match="model.output=tanh but model.generator.output=sigmoid"):
        DCGAN(g, Discriminator(16, 1, width=8), adam, adam, output="tanh")


def test_uniform_noise_is_a_switch_of_every_latent():
    model = make_model(latent_distribution="uniform")
    z = model.sample_latent(5000)
    assert z.min() >= -1 and z.max() <= 1 and z.std().item() == pytest.approx(1 / 3**0.5, rel=0.03)
    assert model.fixed_z.abs().max() <= 1
    assert make_model().sample_latent(5000).abs().max() > 2  # normal by default
    with pytest.raises(GansError, match="latent_distribution must be one of normal, uniform"):
        make_model(latent_distribution="cauchy")


def test_mixed_batches_pass_real_and_fake_through_one_call():
    model = make_model(mixed_batches=True)
    sizes = []
    model.discriminator.register_forward_hook(lambda module, inputs, output: sizes.append(len(inputs[0])))
    model.discriminator_loss({"image": torch.rand(6, 1, 16, 16) * 2 - 1})
    assert sizes == [12]
    model.mixed_batches = False
    sizes.clear()
    model.discriminator_loss({"image": torch.rand(6, 1, 16, 16) * 2 - 1})
    assert sizes == [6, 6]


def test_label_settings_are_checked():
    assert make_model(real_label=[0.7, 1.2], fake_label=[0.0, 0.3]).real_label == (0.7, 1.2)
    with pytest.raises(GansError, match=r"model.real_label=\[1.2, 0.7\] must be a number or a range"):
        make_model(real_label=[1.2, 0.7])
    with pytest.raises(GansError, match=r"model.label_flip=0.7 must be a probability in \[0, 0.5\)"):
        make_model(label_flip=0.7)


def test_d_statistics_are_computed_on_logging_steps_only():
    model = make_model()
    batch = {"image": torch.rand(4, 1, 16, 16) * 2 - 1}
    model._logging = False  # inside a training step that does not log
    assert model.discriminator_loss(batch)[1] == {}
    model._logging = True
    assert set(model.discriminator_loss(batch)[1]) == {"D(x)", "D(G(z))"}
