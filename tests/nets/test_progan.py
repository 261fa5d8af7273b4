"""ProGAN's layers and networks (Karras et al. 2018): the equalized learning rate, pixel norm, the
minibatch standard deviation, the fade-in blend, and shapes at every stage of the growth."""

import math

import pytest
import torch
import torch.nn.functional as F

from gans.errors import GansError

from gans.nets.progan import (
    Discriminator,
    EqualizedConv2d,
    EqualizedLinear,
    Generator,
    MinibatchStdDev,
    PixelNorm,
    fade,
    levels_of,
)


def test_the_equalized_layers_scale_unit_weights_by_hes_constant_at_run_time():
    conv = EqualizedConv2d(8, 4, 3)
    x = torch.randn(2, 8, 5, 5)
    expected = F.conv2d(x, conv.weight * math.sqrt(2 / (8 * 9)), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.15) and (conv.bias == 0).all()
    linear = EqualizedLinear(100, 3, gain=1.0)
    torch.testing.assert_close(linear(torch.ones(1, 100)), (linear.weight.sum(1) * 0.1).unsqueeze(0))
    # The point of the scale (sec. 4.1): the gradient reaching the stored weight is scaled too, so
    # Adam's normalised step changes every layer's effective weight by the same relative amount.
    conv(x).sum().backward()
    plain = torch.nn.Parameter(conv.weight.detach() * conv.scale)
    F.conv2d(x, plain, conv.bias.detach(), padding=1).sum().backward()
    torch.testing.assert_close(conv.weight.grad, plain.grad * conv.scale)


def test_pixel_norm_gives_each_pixel_unit_mean_square_over_channels():
    x = torch.randn(3, 16, 4, 4) * 7
    y = PixelNorm()(x)
    torch.testing.assert_close(y.square().mean(1), torch.ones(3, 4, 4), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y * x.square().mean(1, keepdim=True).sqrt(), x, rtol=1e-5, atol=1e-5)


def test_minibatch_stddev_appends_the_mean_std_of_each_group():
    x = torch.arange(4 * 2 * 2 * 2, dtype=torch.float32).view(4, 2, 2, 2) ** 1.5
    y = MinibatchStdDev(group_size=2)(x)
    assert y.shape == (4, 3, 2, 2) and torch.equal(y[:, :2], x)
    for members in ([0, 2], [1, 3]):  # image i is in group i % (batch / group_size)
        std = x[members].std(dim=0, unbiased=False).mean()
        for i in members:
            torch.testing.assert_close(y[i, 2], torch.full((2, 2), std.item()), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="does not divide into minibatch-stddev groups of 4"):
        MinibatchStdDev(4)(torch.randn(6, 2, 2, 2))


def test_fade_blends_new_over_old():
    new, old = torch.full((2,), 4.0), torch.full((2,), 0.0)
    assert fade(0.0, new, old).tolist() == [0.0, 0.0] and fade(1.0, new, old).tolist() == [4.0, 4.0]
    assert fade(torch.tensor(0.25), new, old).tolist() == [1.0, 1.0]


def test_levels_of_power_of_two_sides():
    assert [levels_of(s) for s in (4, 8, 32, 256)] == [0, 1, 3, 6]
    for bad, fix in ((2, 4), (28, 32), (48, 64)):
        with pytest.raises(GansError, match=rf"data.image_size={bad} is not a power of two .* data.image_size={fix}"):
            levels_of(bad)


def small_networks():
    torch.manual_seed(0)
    return (Generator(16, 32, 1, base_channels=64, max_channels=16),
            Discriminator(32, 1, base_channels=64, max_channels=16))  # fmt: skip


def test_both_networks_run_at_every_level_and_the_fade_in_starts_at_the_previous_stage():
    g, d = small_networks()
    z = torch.randn(4, 16)
    for level in range(4):
        side = 4 * 2**level
        for alpha in (0.0, 0.5, 1.0):
            images = g(z, level, alpha)
            assert images.shape == (4, 1, side, side)
            assert d(images, level, alpha).shape == (4,)
    for level in (1, 2, 3):
        # alpha = 0: G's output is the previous stage's, upsampled; D reads the input through the
        # previous stage's path, on the average-pooled image.
        torch.testing.assert_close(g(z, level, 0.0), F.interpolate(g(z, level - 1, 1.0), scale_factor=2))
        x = torch.randn(4, 1, 4 * 2**level, 4 * 2**level)
        torch.testing.assert_close(d(x, level, 0.0), d(F.avg_pool2d(x, 2), level - 1, 1.0), rtol=1e-5, atol=1e-5)


def test_blocks_above_the_current_level_get_no_gradient():
    g, d = small_networks()
    d(g(torch.randn(4, 16), 1, 0.5), 1, 0.5).mean().backward()
    assert all(p.grad is None for p in g.blocks[1:].parameters()) and g.blocks[0][1].weight.grad is not None
    assert all(p.grad is None for p in d.blocks[1:].parameters()) and d.blocks[0][0].weight.grad is not None


def test_with_classes_the_generator_reads_the_label_and_the_discriminator_names_the_class():
    g = Generator(16, 8, 1, base_channels=64, max_channels=16, num_classes=3)
    d = Discriminator(8, 1, base_channels=64, max_channels=16, num_classes=3)
    z = torch.randn(1, 16).expand(3, 16)
    images = g(z, 1, 1.0, torch.tensor([0, 1, 2]))
    assert not torch.allclose(images[0], images[1]) and not torch.allclose(images[1], images[2])
    # The one-hot label joins z before the pixel norm: the authors' combo input.
    combo = PixelNorm()(torch.cat([z[:1], torch.tensor([[0.0, 1.0, 0.0]])], dim=1))
    by_hand = g.to_rgb[0](g.first(g.project(combo).view(1, g.widths[0], 4, 4)))
    torch.testing.assert_close(g(z[:1], 0, 1.0, torch.tensor([1])), by_hand)
    scores, classes = d(images, 1, 1.0, with_classes=True)
    assert scores.shape == (3,) and classes.shape == (3, 3)
    torch.testing.assert_close(d(images, 1, 1.0), scores)  # the critic's score is the first output
    with pytest.raises(ValueError, match="a generator of 3 classes got labels=False"):
        g(z, 1, 1.0)
