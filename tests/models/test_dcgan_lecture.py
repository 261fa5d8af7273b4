"""`model=dcgan_lecture`: the lecture's DCGAN trains on the base at its 64x64 RGB size and at
Fashion-MNIST's 28x28 (the layer-for-layer check of its networks is tests/nets/test_dcgan.py)."""

from torch import nn

from tests.models.test_dcgan import assert_trained_and_samples, train_config_briefly


def test_lecture_dcgan_trains_at_64x64_rgb(tmp_path, random_images):
    model, before = train_config_briefly(tmp_path, random_images, "model=dcgan_lecture")
    assert_trained_and_samples(model, before)
    convs = [m for m in model.generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert {m.kernel_size for m in convs} == {(4, 4)} and len(convs) == 4
    assert isinstance(model.discriminator.features[1], nn.BatchNorm2d)  # batch norm after D's first conv


def test_lecture_dcgan_trains_at_fashion_mnist_size(tmp_path, random_images):
    model, before = train_config_briefly(tmp_path, random_images, "model=dcgan_lecture", size=28, channels=1)
    assert_trained_and_samples(model, before, size=28, channels=1)
