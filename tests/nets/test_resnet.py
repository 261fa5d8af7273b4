"""CycleGAN's ResNet generator: the c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-3 layout."""

import pytest
import torch
from torch import nn

from gans.nets.resnet import ResidualBlock, ResnetGenerator, default_n_blocks


@pytest.mark.parametrize("size,channels", [(32, 1), (64, 3), (256, 3)])
def test_shapes_and_output_range(size, channels):
    g = ResnetGenerator(size, channels, width=8, n_blocks=2)
    out = g(torch.randn(2, channels, size, size))
    assert out.shape == (2, channels, size, size)
    assert out.abs().max() <= 1


def test_block_count_follows_the_image_size():
    assert default_n_blocks(256) == 9 and default_n_blocks(512) == 9
    assert default_n_blocks(128) == 6 and default_n_blocks(32) == 6
    blocks = lambda g: sum(isinstance(m, ResidualBlock) for m in g.modules())
    assert blocks(ResnetGenerator(256, width=4)) == 9
    assert blocks(ResnetGenerator(128, width=4)) == 6
    assert blocks(ResnetGenerator(32, width=4, n_blocks=3)) == 3


def test_256_layout_matches_the_paper_and_the_reference_size():
    g = ResnetGenerator(256, 3)
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    outer = [convs[0], convs[1], convs[2], convs[-3], convs[-2], convs[-1]]
    assert [(m.out_channels, m.kernel_size[0], m.stride[0]) for m in outer] == [
        (64, 7, 1),
        (128, 3, 2),
        (256, 3, 2),
        (128, 3, 2),
        (64, 3, 2),
        (3, 7, 1),
    ]
    assert isinstance(convs[-3], nn.ConvTranspose2d) and isinstance(convs[-2], nn.ConvTranspose2d)
    assert len(convs) == 6 + 2 * 9 and all(m.out_channels == 256 for m in convs[3:-3])
    # The authors' implementation prints 11.378 M parameters for resnet_9blocks.
    assert sum(p.numel() for p in g.parameters()) == 11_378_179
    assert isinstance(list(g.model)[-1], nn.Tanh)
    pads = [m for m in g.modules() if isinstance(m, nn.ReflectionPad2d)]
    assert len(pads) == 2 + 2 * 9  # reflection padding, no zero padding, for every stride-1 conv
    norms = [m for m in g.modules() if isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d))]
    assert norms and all(isinstance(m, nn.InstanceNorm2d) and not m.affine for m in norms)
    assert not any(isinstance(m, nn.Dropout) for m in g.modules())


def test_residual_block_adds_its_input():
    block = ResidualBlock(4)
    for p in block.parameters():
        nn.init.zeros_(p)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(block(x), x)


def test_weights_initialised_from_normal_0_02():
    torch.manual_seed(0)
    g = ResnetGenerator(128, 3)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.Conv2d)])
    assert w.std().item() == pytest.approx(0.02, rel=0.05)
