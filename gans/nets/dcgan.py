"""DCGAN networks (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks"), parametrised by resolution, width and the few
choices on which the paper, its authors' code and the course lecture differ.

The image side is halved until it is odd or 4: that many stride-2 stages. At 64x64 with
`width=64`: z -> dense 4x4x1024 -> transposed convolutions 512/256/128/3 (stride 2, batch norm,
tanh out) and a discriminator of stride-2 convolutions 64/128/256/512 -> dense logit. At 28x28
(Fashion-MNIST) the same design gives dense 7x7x256 -> 128 -> 1 and a 64/128 discriminator.

The choices (the defaults are `conf/model/dcgan.yaml`'s; `dcgan_paper.yaml` and
`dcgan_lecture.yaml` set the two references):

| argument | default | paper (sec. 3; the authors' code) | lecture (tf.keras code) |
|---|---|---|---|
| G `kernel_size` | 5 | 5 | 4 |
| G `activation` | leaky_relu (0.2) | relu | leaky_relu (0.2) |
| G `project_batch_norm` (after the dense layer) | yes | yes | no |
| D `kernel_size` | 5 | 5 | 5 |
| D `input_batch_norm` (after the first convolution) | no | no (sec. 3) | yes |
| D `width` | 64 | 128 in the code (ndf) | 64 |
| `bias_with_batch_norm` (a bias before batch norm too) | no | no | yes (Keras' default) |

The lecture's stabilising tricks that live in the networks are switches too, each on by default
(the ablation in experiments/README.md turns them off one at a time): `norm` (batch norm; the
critic of WGAN-GP takes `layer` or `none`), LeakyReLU (`activation`), strided convolutions
rather than pooling (`downsample`, `upsample`) and a tanh output for images in [-1, 1] (`output`).
"""

from __future__ import annotations

from torch import Tensor, nn

from gans.errors import check_choice
from gans.nets.init import dcgan_init

ACTIVATIONS = ("relu", "leaky_relu")
GENERATOR_NORMS = ("batch", "none")
DISCRIMINATOR_NORMS = ("batch", "layer", "none")
UPSAMPLES = ("transposed", "nearest")
DOWNSAMPLES = ("stride", "max_pool")
OUTPUTS = ("tanh", "sigmoid", "linear")


def stride2_stages(image_size: int) -> tuple[int, int]:
    """(number of stride-2 stages, side of the smallest feature map) for an image side."""
    if image_size < 4:
        raise ValueError(f"image_size must be at least 4, got {image_size}")
    stages, side = 0, image_size
    while side % 2 == 0 and side > 4:
        side //= 2
        stages += 1
    if stages == 0:
        raise ValueError(f"image_size {image_size} is odd: DCGAN needs an even side (e.g. 28, 32, 64)")
    return stages, side


def same_padding(kernel_size: int) -> int:
    """Padding of a stride-2 convolution that halves an even side (and of the transposed one that
    doubles it, with `2 + 2p - k` output padding): Keras' 'same' for even kernels. For odd kernels
    Keras pads one pixel less before than after; here both sides get (k - 1) / 2, which samples
    the same grid shifted by one pixel."""
    if kernel_size < 2:
        raise ValueError(f"kernel_size must be at least 2 for a stride-2 layer, got {kernel_size}")
    return (kernel_size - 1) // 2


def hidden_activation(activation: str, slope: float, key: str = "model.generator.activation") -> nn.Module:
    """A hidden activation: ReLU or LeakyReLU(slope)."""
    if check_choice(key, activation, ACTIVATIONS) == "relu":
        return nn.ReLU(inplace=True)
    return nn.LeakyReLU(slope, inplace=True)


def feature_norm(norm: str, channels: int) -> nn.Module | None:
    """Normalisation of a convolution's output: batch norm (Ioffe & Szegedy 2015), layer norm over
    (C, H, W) of each sample (Ba et al. 2016; `GroupNorm` with one group, as WGAN-GP's critic uses
    instead of batch norm, Gulrajani et al. 2017 sec. 4, because the penalty is per sample and batch
    norm couples the samples of a batch), or none."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    return None


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, channels, image_size, image_size) in [-1, 1].

    Args:
        latent_dim, image_size, channels: z's size and the images'.
        width: half the filters of the last hidden layer (64: 1024-512-256-128 at 64x64).
        kernel_size: of the transposed convolutions (paper 5, lecture 4).
        activation: "relu" (Radford et al. 2016, sec. 3: "ReLU activation in generator for all
            layers except for the output") or "leaky_relu" (the lecture's, slope `slope`).
        slope: the LeakyReLU's slope for negative inputs (0.2).
        project_batch_norm: batch norm after the dense projection of z (the paper's code does;
            the lecture's goes straight from the dense layer to its activation).
        bias_with_batch_norm: layers followed by batch norm keep a bias too. It is redundant
            (batch norm's shift replaces it) but Keras layers have one by default, so the
            lecture's network has it; the paper's code has none.
        norm: "batch" (Radford et al. 2016, sec. 3) or "none" (the lecture's trick turned off).
        upsample: "transposed" (fractionally-strided convolutions, Radford et al. 2016) or
            "nearest" (nearest-neighbour doubling, then a stride-1 convolution: the fixed,
            pooling-like resampling that the lecture's "strided convolutions" trick replaces).
        output: "tanh" for images in [-1, 1] (the lecture's trick), "sigmoid" for [0, 1], or
            "linear" for raw maps (an autoencoder's decoder, whose likelihood reads logits).
    """

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 64,
        channels: int = 3,
        width: int = 64,
        kernel_size: int = 5,
        activation: str = "leaky_relu",
        slope: float = 0.2,
        project_batch_norm: bool = True,
        bias_with_batch_norm: bool = False,
        norm: str = "batch",
        upsample: str = "transposed",
        output: str = "tanh",
    ) -> None:
        super().__init__()
        check_choice("model.generator.norm", norm, GENERATOR_NORMS)
        check_choice("model.generator.upsample", upsample, UPSAMPLES)
        self.output = check_choice("model.generator.output", output, OUTPUTS)
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        batch_norm = norm == "batch"
        project_batch_norm = project_batch_norm and batch_norm
        stages, side = stride2_stages(image_size)
        widths = [width * 2 ** (stages - i) for i in range(stages)]  # e.g. 1024, 512, 256, 128
        self.base_shape = (widths[0], side, side)
        project: list[nn.Module] = [
            nn.Linear(latent_dim, widths[0] * side * side, bias=bias_with_batch_norm or not project_batch_norm),
            # Channels first; Keras' Reshape((4, 4, 1024)) is channels last: a fixed permutation
            # of the dense layer's outputs, the same function class and parameter count.
            nn.Unflatten(1, self.base_shape),
        ]
        if project_batch_norm:
            project.append(nn.BatchNorm2d(widths[0]))
        project.append(hidden_activation(activation, slope))
        self.project = nn.Sequential(*project)
        blocks: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            blocks.append(_upsample(w_in, w_out, kernel_size, upsample, bias=bias_with_batch_norm or not batch_norm))
            if batch_norm:
                blocks.append(nn.BatchNorm2d(w_out))
            blocks.append(hidden_activation(activation, slope))
        # No batch norm on the output layer (Radford et al. 2016, sec. 3).
        blocks += [_upsample(widths[-1], channels, kernel_size, upsample, bias=True)]
        if output != "linear":
            blocks.append(nn.Tanh() if output == "tanh" else nn.Sigmoid())
        self.upsample = nn.Sequential(*blocks)
        self.apply(dcgan_init)

    def forward(self, z: Tensor) -> Tensor:
        return self.upsample(self.project(z))


class Discriminator(nn.Module):
    """images (N, channels, image_size, image_size) -> logits (N,).

    Args:
        image_size, channels: the images'.
        width: filters of the first convolution, doubled per stage (64: 64-128-256-512 at 64x64).
        kernel_size: of the stride-2 convolutions (5 in the paper's code and the lecture's).
        slope: LeakyReLU slope, "0.2 in all models" (Radford et al. 2016, sec. 4).
        input_batch_norm: normalisation after the first convolution too (the lecture's network);
            the paper leaves it out: "not applying batchnorm to the generator output layer and
            the discriminator input layer" avoided sample oscillation and instability (sec. 3).
        bias_with_batch_norm: convolutions followed by batch norm keep a bias (see `Generator`).
        norm: "batch", "layer" (WGAN-GP's critic) or "none" (see `feature_norm`).
        activation: "leaky_relu" (Radford et al. 2016; the lecture's trick) or "relu".
        downsample: "stride" (stride-2 convolutions, Radford et al. 2016) or "max_pool" (a
            stride-1 convolution, then 2x2 max pooling: what the lecture's trick replaces).
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        width: int = 64,
        kernel_size: int = 5,
        slope: float = 0.2,
        input_batch_norm: bool = False,
        bias_with_batch_norm: bool = False,
        norm: str = "batch",
        activation: str = "leaky_relu",
        downsample: str = "stride",
    ) -> None:
        super().__init__()
        check_choice("model.discriminator.norm", norm, DISCRIMINATOR_NORMS)
        check_choice("model.discriminator.downsample", downsample, DOWNSAMPLES)
        stages, side = stride2_stages(image_size)
        widths = [width * 2**i for i in range(stages)]  # e.g. 64, 128, 256, 512
        padding = same_padding(kernel_size)
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip([channels] + widths[:-1], widths)):
            normalise = feature_norm(norm, w_out) if i > 0 or input_batch_norm else None
            bias = bias_with_batch_norm or normalise is None
            if downsample == "stride":
                layers.append(nn.Conv2d(w_in, w_out, kernel_size, 2, padding, bias=bias))
            else:  # same-size convolution (odd padding kept symmetric), then 2x2 max pooling
                layers += [nn.Conv2d(w_in, w_out, kernel_size, 1, "same", bias=bias), nn.MaxPool2d(2)]
            if normalise is not None:
                layers.append(normalise)
            layers.append(hidden_activation(activation, slope, "model.discriminator.activation"))
        self.features = nn.Sequential(*layers)
        self.num_features = widths[-1] * side * side
        self.classify = nn.Sequential(nn.Flatten(), nn.Linear(self.num_features, 1))
        self.apply(dcgan_init)

    def forward(self, images: Tensor) -> Tensor:
        return self.classify(self.features(images)).squeeze(1)


def _upsample(w_in: int, w_out: int, kernel_size: int, mode: str, bias: bool) -> nn.Module:
    if mode == "nearest":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w_in, w_out, kernel_size, 1, "same", bias=bias)
        )
    # Doubles the side exactly: out = 2 (in - 1) - 2 p + k + output_padding = 2 in.
    padding = same_padding(kernel_size)
    return nn.ConvTranspose2d(
        w_in, w_out, kernel_size, stride=2, padding=padding, output_padding=2 + 2 * padding - kernel_size, bias=bias
    )
