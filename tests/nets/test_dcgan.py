"""DCGAN networks: shapes per resolution, the default (recorded) network, the lecture's and the
paper's networks through their configs, initialisation."""

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from gans.errors import GansError
from gans.nets.dcgan import Discriminator, Generator, same_padding, stride2_stages
from tests.conftest import compose_config


def layer_list(net: nn.Module) -> list[str]:
    """The leaf layers of a network in forward order, with the attributes the references fix."""
    described = []
    for m in net.modules():
        if list(m.children()):
            continue
        bias = ", bias" if getattr(m, "bias", None) is not None else ""
        if isinstance(m, nn.Linear):
            described.append(f"Linear({m.in_features}->{m.out_features}{bias})")
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
            described.append(f"{type(m).__name__}({m.in_channels}->{m.out_channels}, k{k} s{s} p{p}{bias})")
        elif isinstance(m, nn.BatchNorm2d):
            described.append(f"BatchNorm2d({m.num_features})")
        elif isinstance(m, nn.LeakyReLU):
            described.append(f"LeakyReLU({m.negative_slope})")
        elif isinstance(m, nn.Unflatten):
            described.append(f"Unflatten{tuple(m.unflattened_size)}")
        else:
            described.append(type(m).__name__)
    return described


def trainable(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def nets_of(*overrides: str) -> tuple[nn.Module, nn.Module]:
    cfg = compose_config(*overrides).model
    return instantiate(cfg.generator), instantiate(cfg.discriminator)


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3)])
def test_shapes_and_output_range(size, channels):
    g, d = Generator(100, size, channels), Discriminator(size, channels)
    images = g(torch.randn(3, 100))
    assert images.shape == (3, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert d(images).shape == (3,)


@pytest.mark.parametrize("kernel_size", [2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("size", [28, 64])
def test_every_kernel_size_halves_and_doubles_the_side_exactly(kernel_size, size):
    g = Generator(8, size, 1, width=2, kernel_size=kernel_size)
    d = Discriminator(size, 1, width=2, kernel_size=kernel_size)
    images = g(torch.randn(2, 8))
    assert images.shape == (2, 1, size, size) and d(images).shape == (2,)
    assert same_padding(4) == 1 and same_padding(5) == 2


def test_default_is_the_recorded_network():
    # The project default, unchanged by defect 12 (recorded results stay valid): the paper's 5x5
    # kernels and batch-norm placement, with LeakyReLU(0.2) in G.
    g, d = nets_of("model=dcgan", "data.image_size=64", "data.channels=3")
    assert g.base_shape == (1024, 4, 4)
    up = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in up] == [512, 256, 128, 3]
    assert all(m.kernel_size == (5, 5) and m.stride == (2, 2) for m in up)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512]
    assert all(m.kernel_size == (5, 5) and m.stride == (2, 2) for m in convs)
    assert isinstance(list(g.modules())[-1], nn.Tanh)
    assert {m.negative_slope for m in g.modules() if isinstance(m, nn.LeakyReLU)} == {0.2}
    # Parameter counts of the network the records were measured with (before the nets had options).
    assert (trainable(g), trainable(d)) == (18_855_043, 4_315_649)
    g28, d28 = nets_of("model=dcgan")  # Fashion-MNIST, the default data
    assert (trainable(g28), trainable(d28)) == (2_077_569, 212_993)


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


# Defect 12: the lecture's network, exactly as its tf.keras code (lecture 4) lists it.
LECTURE_GENERATOR = [
    "Linear(100->16384, bias)",  # layers.Dense(4 * 4 * 1024, input_shape=(latent_dim,))
    "Unflatten(1024, 4, 4)",  # layers.Reshape((4, 4, 1024)), after the activation there: same thing
    "LeakyReLU(0.2)",  # layers.LeakyReLU(alpha=0.2); no batch norm after the dense layer
    "ConvTranspose2d(1024->512, k4 s2 p1, bias)",  # Conv2DTranspose(512, (4, 4), strides=(2, 2), 'same')
    "BatchNorm2d(512)",
    "LeakyReLU(0.2)",
    "ConvTranspose2d(512->256, k4 s2 p1, bias)",
    "BatchNorm2d(256)",
    "LeakyReLU(0.2)",
    "ConvTranspose2d(256->128, k4 s2 p1, bias)",
    "BatchNorm2d(128)",
    "LeakyReLU(0.2)",
    "ConvTranspose2d(128->3, k4 s2 p1, bias)",  # Conv2DTranspose(3, (4, 4), ..., activation='tanh')
    "Tanh",
]
LECTURE_DISCRIMINATOR = [
    "Conv2d(3->64, k5 s2 p2, bias)",  # Conv2D(64, (5, 5), strides=(2, 2), padding='same')
    "BatchNorm2d(64)",  # batch norm on the first convolution too
    "LeakyReLU(0.2)",
    "Conv2d(64->128, k5 s2 p2, bias)",
    "BatchNorm2d(128)",
    "LeakyReLU(0.2)",
    "Conv2d(128->256, k5 s2 p2, bias)",
    "BatchNorm2d(256)",
    "LeakyReLU(0.2)",
    "Conv2d(256->512, k5 s2 p2, bias)",
    "BatchNorm2d(512)",
    "LeakyReLU(0.2)",
    "Flatten",
    "Linear(8192->1, bias)",  # layers.Dense(1): a logit, no sigmoid
]


def test_lecture_config_is_the_lecture_s_network_layer_for_layer():
    g, d = nets_of("model=dcgan_lecture", "data.image_size=64", "data.channels=3")
    assert layer_list(g) == LECTURE_GENERATOR
    assert layer_list(d) == LECTURE_DISCRIMINATOR
    # Keras' trainable parameter counts of the lecture's code, layer by layer (Conv2DTranspose
    # weights are k*k*in*out plus out biases; batch norm trains 2 per channel).
    generator_count = (
        (100 * 4 * 4 * 1024 + 4 * 4 * 1024)
        + (4 * 4 * 1024 * 512 + 512) + 2 * 512
        + (4 * 4 * 512 * 256 + 256) + 2 * 256
        + (4 * 4 * 256 * 128 + 128) + 2 * 128
        + (4 * 4 * 128 * 3 + 3)
    )
    discriminator_count = (
        (5 * 5 * 3 * 64 + 64) + 2 * 64
        + (5 * 5 * 64 * 128 + 128) + 2 * 128
        + (5 * 5 * 128 * 256 + 256) + 2 * 256
        + (5 * 5 * 256 * 512 + 512) + 2 * 512
        + (4 * 4 * 512 + 1)
    )
    assert (generator_count, discriminator_count) == (12_673_667, 4_316_673)
    assert (trainable(g), trainable(d)) == (generator_count, discriminator_count)
    # Keras' non-trainable count: a moving mean and variance per batch-norm channel.
    running = lambda net: sum(m.running_mean.numel() + m.running_var.numel() for m in net.modules()
                              if isinstance(m, nn.BatchNorm2d))  # fmt: skip
    assert (running(g), running(d)) == (2 * (512 + 256 + 128), 2 * (64 + 128 + 256 + 512))
    images = g(torch.randn(2, 100))
    assert images.shape == (2, 3, 64, 64) and d(images).shape == (2,)


def test_lecture_config_follows_the_data_at_fashion_mnist_size():
    g, d = nets_of("model=dcgan_lecture")  # the default data: 28x28 gray
    assert g.base_shape == (256, 7, 7)
    assert layer_list(g)[:3] == ["Linear(100->12544, bias)", "Unflatten(256, 7, 7)", "LeakyReLU(0.2)"]
    assert layer_list(d)[:3] == ["Conv2d(1->64, k5 s2 p2, bias)", "BatchNorm2d(64)", "LeakyReLU(0.2)"]
    images = g(torch.randn(2, 100))
    assert images.shape == (2, 1, 28, 28) and d(images).shape == (2,)


def test_paper_config_has_relu_in_g_and_no_batch_norm_on_d_s_input():
    # Defect 12: Radford et al. 2016, sec. 3 (ReLU in G but tanh at its output; batch norm
    # everywhere except G's output and D's input); 5x5 kernels and ndf = 128 as the authors' code.
    g, d = nets_of("model=dcgan_paper", "data.image_size=64", "data.channels=3")
    g_layers, d_layers = layer_list(g), layer_list(d)
    assert "ReLU" in g_layers and not any(name.startswith("LeakyReLU") for name in g_layers)
    assert g_layers[:4] == ["Linear(100->16384)", "Unflatten(1024, 4, 4)", "BatchNorm2d(1024)", "ReLU"]
    assert g_layers[-2:] == ["ConvTranspose2d(128->3, k5 s2 p2, bias)", "Tanh"]
    assert all(m.kernel_size == (5, 5) for m in g.modules() if isinstance(m, nn.ConvTranspose2d))
    assert d_layers[:3] == ["Conv2d(3->128, k5 s2 p2, bias)", "LeakyReLU(0.2)", "Conv2d(128->256, k5 s2 p2)"]
    assert [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)] == [128, 256, 512, 1024]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3
    assert trainable(d) == (
        (5 * 5 * 3 * 128 + 128)  # the input layer: a bias, no batch norm
        + 5 * 5 * 128 * 256 + 2 * 256
        + 5 * 5 * 256 * 512 + 2 * 512
        + 5 * 5 * 512 * 1024 + 2 * 1024
        + (4 * 4 * 1024 + 1)
    )
    images = g(torch.randn(2, 100))
    assert images.shape == (2, 3, 64, 64) and d(images).shape == (2,)
    g28, d28 = nets_of("model=dcgan_paper")
    assert d28(g28(torch.randn(2, 100))).shape == (2,)


def test_generator_activation_is_a_switch():
    relu = Generator(100, 28, 1, activation="relu")
    assert not any(isinstance(m, nn.LeakyReLU) for m in relu.modules())
    assert sum(isinstance(m, nn.ReLU) for m in relu.modules()) == 2
    leaky = Generator(100, 28, 1, activation="leaky_relu", slope=0.1)
    assert {m.negative_slope for m in leaky.modules() if isinstance(m, nn.LeakyReLU)} == {0.1}
    with pytest.raises(GansError, match="activation must be one of relu, leaky_relu, got 'gelu'"):
        Generator(100, 28, 1, activation="gelu")


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


def test_the_lectures_network_tricks_are_switches():
    # Issue 7: batch norm, LeakyReLU, strided convolutions and tanh, each can be turned off.
    kinds = lambda net: {type(m) for m in net.modules()}
    plain_g = Generator(100, 28, 1, norm="none", upsample="nearest", output="sigmoid")
    assert nn.BatchNorm2d not in kinds(plain_g) and nn.ConvTranspose2d not in kinds(plain_g)
    assert nn.Upsample in kinds(plain_g) and nn.Sigmoid in kinds(plain_g) and nn.Tanh not in kinds(plain_g)
    images = plain_g(torch.randn(3, 100))
    assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    for norm, layer in (("none", None), ("layer", nn.GroupNorm), ("batch", nn.BatchNorm2d)):
        d = Discriminator(28, 1, norm=norm, activation="relu", downsample="max_pool")
        assert nn.MaxPool2d in kinds(d) and nn.LeakyReLU not in kinds(d) and nn.ReLU in kinds(d)
        norms = kinds(d) & {nn.BatchNorm2d, nn.GroupNorm}
        assert norms == ({layer} if layer else set())
        assert d(images * 2 - 1).shape == (3,)
    with pytest.raises(GansError, match="model.discriminator.norm must be one of batch, layer, none"):
        Discriminator(28, 1, norm="instance")
    with pytest.raises(GansError, match="model.generator.upsample must be one of transposed, nearest"):
        Generator(100, 28, 1, upsample="bilinear")


def test_layer_norm_keeps_the_samples_of_a_batch_independent():
    # Why WGAN-GP's critic takes layer norm: a sample's score must not depend on its batch.
    torch.manual_seed(0)
    d = Discriminator(28, 1, width=8, norm="layer")
    x = torch.randn(4, 1, 28, 28)
    assert torch.allclose(d(x)[:1], d(x[:1]), atol=1e-6)
