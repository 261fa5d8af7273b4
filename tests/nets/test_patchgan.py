"""The PatchGAN discriminator: 70x70 receptive field, layer layout, conditioning, norms."""

import pytest
import torch
from torch import nn

from gans.nets.patchgan import PatchDiscriminator, default_n_layers, receptive_field


def test_70x70_layout_receptive_field_and_reference_size():
    d = PatchDiscriminator(3, norm="instance")
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size[0], m.stride[0]) for m in convs] == [
        (64, 4, 2),
        (128, 4, 2),
        (256, 4, 2),
        (512, 4, 1),
        (1, 4, 1),
    ]
    # Backwards from one output value: r <- (r - 1) * stride + kernel.
    field = 1
    for stride in (1, 1, 2, 2, 2):
        field = (field - 1) * stride + 4
    assert field == 70 == d.receptive_field == receptive_field(d.model)
    assert sum(p.numel() for p in d.parameters()) == 2_764_737  # the authors' basic D: 2.765 M
    assert [m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)] == [0.2] * 4


def test_receptive_field_measured_by_gradients():
    torch.manual_seed(0)
    d = PatchDiscriminator(1, width=4, n_layers=3, norm="batch").eval()  # eval: norm acts per pixel
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero()
    cols = x.grad[0, 0].abs().sum(0).nonzero()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


@pytest.mark.parametrize("n_layers,field", [(1, 16), (2, 34), (3, 70), (4, 142)])
def test_fewer_layers_for_small_images(n_layers, field):
    assert PatchDiscriminator(1, width=4, n_layers=n_layers).receptive_field == field


def test_layers_chosen_by_image_size_and_output_maps():
    assert [default_n_layers(s) for s in (16, 32, 64, 256)] == [1, 2, 3, 3]
    for size, side in ((32, 6), (64, 6), (256, 30)):
        d = PatchDiscriminator(3, width=4, n_layers=None, image_size=size)
        assert d(torch.randn(2, 3, size, size)).shape == (2, 1, side, side)


def test_norms_and_conditioning_channels():
    d = PatchDiscriminator(3, condition_channels=3, width=8, norm="batch")
    assert d.in_channels == 6 and d.model[0].in_channels == 6
    assert not isinstance(d.model[1], (nn.BatchNorm2d, nn.InstanceNorm2d))  # none on C64
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3
    inst = PatchDiscriminator(3, width=8, norm="instance")
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in inst.modules()) == 3
    with pytest.raises(ValueError, match="norm must be one of"):
        PatchDiscriminator(3, norm="layer")
