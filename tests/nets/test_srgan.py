"""The SRGAN networks (Ledig et al. 2017, fig. 4): pixel-shuffle shapes, block counts, the
discriminator's layers, and the one-line errors of a scale or crop they cannot do."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gans.errors import GansError
from gans.nets.srgan import SRDiscriminator, SRResNet, Upsample


def test_pixel_shuffle_doubles_the_side_per_upsampling_block():
    block = Upsample(8)
    assert block(torch.zeros(2, 8, 5, 7)).shape == (2, 8, 10, 14)
    for scale, steps in ((2, 1), (4, 2), (8, 3)):
        net = SRResNet(scale=scale, blocks=2, width=8)
        assert len(net.upsample) == steps
        assert net(torch.zeros(1, 3, 6, 5)).shape == (1, 3, 6 * scale, 5 * scale)


def test_the_paper_generator_has_16_residual_blocks_and_a_global_skip():
    net = SRResNet()
    assert len(net.blocks) == 16 and net.head[0].kernel_size == (9, 9) and net.tail.kernel_size == (9, 9)
    body = net.blocks[0].body
    assert [type(m) for m in body] == [nn.Conv2d, nn.BatchNorm2d, nn.PReLU, nn.Conv2d, nn.BatchNorm2d]
    assert isinstance(net.output, nn.Identity) and isinstance(SRResNet(output="tanh").output, nn.Tanh)
    small = SRResNet(blocks=1, width=4).eval()
    with torch.no_grad():  # zero blocks and fuse: the global skip carries the head's features on
        for p in [*small.blocks.parameters(), *small.fuse.parameters()]:
            p.zero_()
        x = torch.randn(1, 3, 4, 4)
        assert torch.allclose(small(x), small.tail(small.upsample(small.head(x))))


def test_discriminator_is_eight_convs_64_to_512_then_dense_1024_and_one_logit():
    net = SRDiscriminator(96)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2] * 4
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.features) == 7
    assert all(m.negative_slope == 0.2 for m in net.modules() if isinstance(m, nn.LeakyReLU))
    assert net.head[1].in_features == 512 * 6 * 6 and net.head[1].out_features == 1024
    assert net(torch.zeros(3, 3, 96, 96)).shape == (3,)


@pytest.mark.parametrize("scale", [3, 6, 1])
def test_a_scale_the_generator_cannot_do_is_one_line(scale):
    with pytest.raises(GansError) as info:
        SRResNet(scale=scale)
    assert str(info.value) == (f"data.scale={scale} cannot be done by the SRResNet generator: it upsamples in x2 "
                               "pixel-shuffle steps, so the scale must be a power of two (2, 4 or 8)")  # fmt: skip
    with pytest.raises(GansError, match="multiple of 16"):
        SRDiscriminator(40)


def test_icnr_starts_each_sub_pixel_conv_as_nearest_neighbour_upsampling():
    torch.manual_seed(0)
    block = Upsample(4).eval()
    out = block(torch.randn(2, 4, 5, 6))
    # every 2x2 cell of the output is one value: the conv's output repeated (Aitken et al. 2017)
    assert torch.equal(out, nn.functional.interpolate(out[..., ::2, ::2], scale_factor=2, mode="nearest"))
    plain = Upsample(4, icnr=False).eval()(torch.randn(2, 4, 5, 6))
    assert not torch.equal(plain, nn.functional.interpolate(plain[..., ::2, ::2], scale_factor=2, mode="nearest"))


def test_a_bicubic_residual_generator_starts_at_bicubic_and_learns_the_difference():
    torch.manual_seed(0)
    net = SRResNet(scale=4, blocks=1, width=4, residual="bicubic").eval()
    lr = torch.rand(1, 3, 6, 5) * 2 - 1
    bicubic = nn.functional.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.equal(net(lr), bicubic)
    with torch.no_grad():
        net.tail.bias.fill_(0.1)
    assert torch.allclose(net(lr), bicubic + 0.1)


def test_residual_and_plain_weights_do_not_load_into_each_other():
    plain, residual = SRResNet(blocks=1, width=4), SRResNet(blocks=1, width=4, residual="bicubic")
    with pytest.raises(RuntimeError, match="bicubic_residual"):
        plain.load_state_dict(residual.state_dict())
    with pytest.raises(RuntimeError, match="bicubic_residual"):
        residual.load_state_dict(plain.state_dict())


def test_a_residual_option_it_cannot_do_is_one_line():
    with pytest.raises(GansError, match=r"model.generator.residual must be one of none, bicubic, got 'vdsr'"):
        SRResNet(residual="vdsr")
    with pytest.raises(GansError, match="needs model.generator.output=linear"):
        SRResNet(residual="bicubic", output="tanh")


def test_without_batch_norm_the_generator_keeps_its_layers_and_drops_every_bn():
    net = SRResNet(blocks=2, width=4, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    convs = lambda n: [m.weight.shape for m in n.modules() if isinstance(m, nn.Conv2d)]
    assert convs(net) == convs(SRResNet(blocks=2, width=4))
    # no batch statistics: an image's output does not depend on the rest of its batch in training
    lr = torch.randn(3, 3, 6, 6)
    assert torch.allclose(net.train()(lr)[:1], net(lr[:1]), atol=1e-6)
    with pytest.raises(RuntimeError, match="Missing key"):  # batch-norm weights do not load into it silently
        SRResNet(blocks=2, width=4).load_state_dict(net.state_dict())
    with pytest.raises(GansError, match=r"model.generator.norm must be one of batch, none, got 'instance'"):
        SRResNet(norm="instance")
