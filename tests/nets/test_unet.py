"""Pix2pix's U-Net: the paper's encoder/decoder widths, skips, norms and dropout as noise."""

import pytest
import torch
from torch import nn

from gans.nets.unet import NoiseDropout, UnetGenerator, depends_on_batch_at_test, downsamplings


@pytest.mark.parametrize("size,channels", [(32, 1), (64, 3), (256, 3)])
def test_shapes_and_output_range(size, channels):
    g = UnetGenerator(size, channels, width=4)
    out = g(torch.randn(2, channels, size, size))
    assert out.shape == (2, channels, size, size) and out.abs().max() <= 1
    assert g.n_downs == downsamplings(size)


def test_downsamplings_follow_the_image_side():
    assert downsamplings(256) == 8 and downsamplings(32) == 5
    with pytest.raises(ValueError, match="power-of-two"):
        downsamplings(28)
    assert UnetGenerator(28, 1, width=4, n_downs=2)(torch.randn(2, 1, 28, 28)).shape == (2, 1, 28, 28)


def test_256_layout_is_the_paper_s():
    g = UnetGenerator(256, 3)
    encoder = [next(m for m in layer if isinstance(m, nn.Conv2d)) for layer in g.encoder]
    assert [m.out_channels for m in encoder] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) for m in encoder)
    decoder = [next(m for m in layer if isinstance(m, nn.ConvTranspose2d)) for layer in g.decoder]
    decoder.append(next(m for m in g.output if isinstance(m, nn.ConvTranspose2d)))
    # CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128: widths after the skip concatenation.
    assert [m.in_channels for m in decoder] == [512, 1024, 1024, 1024, 1024, 512, 256, 128]
    assert [m.out_channels for m in decoder] == [512, 512, 512, 512, 256, 128, 64, 3]
    dropouts = [any(isinstance(m, NoiseDropout) and m.p == 0.5 for m in layer) for layer in g.decoder]
    assert dropouts == [True, True, True, False, False, False, False]
    # No batch norm on C64, nor on the 1x1 bottleneck; batch norm everywhere else in G.
    assert [any(isinstance(m, nn.BatchNorm2d) for m in layer) for layer in g.encoder] == [False] + [True] * 6 + [False]
    assert all(any(isinstance(m, nn.BatchNorm2d) for m in layer) for layer in g.decoder)
    # Leaky ReLUs (0.2) in the encoder, plain ReLUs in the decoder, tanh out.
    assert {m.negative_slope for layer in g.encoder for m in layer if isinstance(m, nn.LeakyReLU)} == {0.2}
    assert not any(isinstance(m, nn.LeakyReLU) for layer in g.decoder for m in layer)
    assert isinstance(g.output[-1], nn.Tanh)
    assert sum(p.numel() for p in g.parameters()) == 54_413_955  # the authors' unet_256: 54.414 M


def test_skip_connections_carry_the_image_past_the_bottleneck():
    torch.manual_seed(0)
    g = UnetGenerator(32, 1, width=4, dropout=0.0).eval()
    # Zero the bottleneck: without skips the output would no longer depend on the input.
    g.encoder[-1].register_forward_hook(lambda module, inputs, output: torch.zeros_like(output))
    a, b = g(torch.randn(2, 1, 32, 32)), g(torch.randn(2, 1, 32, 32))
    assert not torch.allclose(a, b)


def test_dropout_and_batch_statistics_stay_on_at_test_time_as_in_the_paper():
    torch.manual_seed(0)
    x = torch.randn(4, 1, 32, 32)
    g = UnetGenerator(32, 1, width=4).eval()
    assert not torch.equal(g(x), g(x))  # dropout is the noise z, also at test time
    assert not any(m.track_running_stats for m in g.modules() if isinstance(m, nn.BatchNorm2d))
    deterministic = UnetGenerator(32, 1, width=4, dropout_at_test=False, batch_stats_at_test=False)
    deterministic.train()
    deterministic(x)  # update the running statistics once
    deterministic.eval()
    torch.testing.assert_close(deterministic(x), deterministic(x))
    torch.testing.assert_close(deterministic(x[:1]), deterministic(x)[:1])  # eval: running statistics
    deterministic.train()
    assert not torch.equal(deterministic(x), deterministic(x))  # dropout while training


def test_which_generators_depend_on_their_batch_at_test_time():
    # Defect 7: what makes Pix2pix translate evaluation images one at a time.
    make = lambda **kwargs: UnetGenerator(32, 1, width=4, **kwargs)  # noqa: E731
    assert depends_on_batch_at_test(make())  # the paper's: batch statistics and dropout at test
    assert depends_on_batch_at_test(make(dropout_at_test=False))  # batch statistics
    assert depends_on_batch_at_test(make(batch_stats_at_test=False))  # noise
    assert not depends_on_batch_at_test(make(dropout_at_test=False, batch_stats_at_test=False))
    assert depends_on_batch_at_test(make(norm="instance"))  # noise, though statistics are per image
    assert not depends_on_batch_at_test(make(norm="instance", dropout_at_test=False))
    assert not depends_on_batch_at_test(make(dropout=0.0, batch_stats_at_test=False))
    # With batch statistics an image's output depends on its batch; alone, it is the same image.
    torch.manual_seed(0)
    g, x = make(dropout_at_test=False).eval(), torch.randn(4, 1, 32, 32)
    assert not torch.allclose(g(x)[:1], g(x[:1]))
    assert torch.equal(g(x[:1]), g(x[:1]))
