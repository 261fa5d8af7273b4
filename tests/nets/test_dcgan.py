"""DCGAN networks: shapes per resolution, the lecture's 64x64 layout, initialisation."""

import pytest
import torch
from torch import nn

from gans.nets.dcgan import Discriminator, Generator, stride2_stages


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3)])
def test_shapes_and_output_range(size, channels):
    g, d = Generator(100, size, channels), Discriminator(size, channels)
    images = g(torch.randn(3, 100))
    assert images.shape == (3, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert d(images).shape == (3,)


def test_64x64_is_the_lecture_architecture():
    g, d = Generator(100, 64, 3, width=64), Discriminator(64, 3, width=64)
    assert g.base_shape == (1024, 4, 4)
    up = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in up] == [512, 256, 128, 3]
    assert all(m.kernel_size == (5, 5) and m.stride == (2, 2) for m in up)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512]
    assert all(m.kernel_size == (5, 5) and m.stride == (2, 2) for m in convs)
    assert isinstance(list(g.modules())[-1], nn.Tanh)
    slopes = {m.negative_slope for m in g.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}


def test_fashion_mnist_resolution_uses_the_same_design():
    g, d = Generator(100, 28, 1), Discriminator(28, 1)
    assert g.base_shape == (256, 7, 7)
    assert [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)] == [64, 128]


def test_batch_norm_not_on_generator_output_nor_discriminator_input():
    d = Discriminator(64, 3)
    first_conv_then = list(d.features)[:2]
    assert isinstance(first_conv_then[0], nn.Conv2d) and isinstance(first_conv_then[1], nn.LeakyReLU)
    g = Generator(100, 64, 3)
    assert not isinstance(list(g.upsample)[-2], nn.BatchNorm2d)


def test_weights_initialised_from_normal_0_02():
    torch.manual_seed(0)
    g = Generator(100, 64, 3)
    weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert weights.mean().abs() < 1e-3 and weights.std().item() == pytest.approx(0.02, rel=0.05)
    bn = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert bn.mean().item() == pytest.approx(1.0, abs=0.01)


def test_stride2_stages():
    assert stride2_stages(64) == (4, 4) and stride2_stages(28) == (2, 7) and stride2_stages(32) == (3, 4)
    with pytest.raises(ValueError, match="odd"):
        stride2_stages(27)
