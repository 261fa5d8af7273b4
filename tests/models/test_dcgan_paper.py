"""`model=dcgan_paper`: Radford et al.'s DCGAN trains on the base at 64x64 RGB and at 28x28
(the network details are checked in tests/nets/test_dcgan.py)."""

from torch import nn

from tests.models.test_dcgan import assert_trained_and_samples, train_config_briefly


def test_paper_dcgan_trains_at_64x64_rgb(tmp_path, random_images):
    model, before = train_config_briefly(tmp_path, random_images, "model=dcgan_paper")
    assert_trained_and_samples(model, before)
    assert any(isinstance(m, nn.ReLU) for m in model.generator.modules())
    assert not any(isinstance(m, nn.LeakyReLU) for m in model.generator.modules())
    assert not isinstance(model.discriminator.features[1], nn.BatchNorm2d)  # none on D's input


def test_paper_dcgan_trains_at_fashion_mnist_size(tmp_path, random_images):
    model, before = train_config_briefly(tmp_path, random_images, "model=dcgan_paper", size=28, channels=1)
    assert_trained_and_samples(model, before, size=28, channels=1)
