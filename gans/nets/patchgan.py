"""The PatchGAN discriminator of pix2pix and CycleGAN (Isola et al. 2017, "Image-to-Image
Translation with Conditional Adversarial Networks", sec. 3.2.2 and appendix 6.1.2; Zhu et al.
2017, appendix 7.2): a fully convolutional net that classifies each NxN patch of an image as
real or fake, and outputs the map of patch scores (the losses average over it).

The 70x70 discriminator: C64-C128-C256-C512, 4x4 convolutions with strides 2, 2, 2, 1, then a
4x4 convolution to one channel (a logit per patch); LeakyReLU 0.2; no normalisation on C64.
Each output value sees a 70x70 window of the input (`receptive_field`): n_layers=3 stride-2
layers plus the two stride-1 layers. `n_layers` sets the stride-2 layers: 1 gives 16x16
patches, 2 gives 34x34, 3 gives 70x70, 4 gives 142x142 (286x286 at 5: an "ImageGAN" at 256).
Normalisation: batch norm for pix2pix, instance norm for CycleGAN. For pix2pix, D is
conditional: it sees the input image concatenated to the real or translated output
(`condition_channels` extra input channels).
"""

from __future__ import annotations

from torch import Tensor, nn

from gans.nets.init import dcgan_init
from gans.nets.layers import conv_bias, norm_layer


def receptive_field(layers) -> int:
    """Side of the input window one output value sees, from the convolutions in order."""
    field = 1
    for conv in reversed([m for m in layers if isinstance(m, nn.Conv2d)]):
        field = (field - 1) * conv.stride[0] + conv.kernel_size[0]
    return field


def default_n_layers(image_size: int | None) -> int:
    """3 (70x70 patches, the papers') for images of 64x64 and above; on smaller images fewer, so
    the discriminator still judges patches rather than one whole, padded image: 2 (34x34) at
    32x32, 1 (16x16) below."""
    if image_size is None or image_size >= 64:
        return 3
    return 2 if image_size >= 32 else 1


class PatchDiscriminator(nn.Module):
    """images (N, channels + condition_channels, H, W) -> patch logits (N, 1, H', W').

    Args:
        channels: channels of the judged image.
        condition_channels: channels of the conditioning input concatenated in front (pix2pix: the
            input image's channels; CycleGAN: 0).
        width: filters of the first layer (64); doubled per layer up to 8 * width.
        n_layers: stride-2 layers (3: the 70x70 PatchGAN); None = `default_n_layers(image_size)`.
        norm: "batch" (pix2pix), "instance" (CycleGAN) or "none".
        image_size: only used to choose `n_layers` when it is None.
    """

    def __init__(
        self,
        channels: int = 3,
        condition_channels: int = 0,
        width: int = 64,
        n_layers: int | None = 3,
        norm: str = "instance",
        image_size: int | None = None,
        slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.n_layers = default_n_layers(image_size) if n_layers is None else n_layers
        self.in_channels = channels + condition_channels
        bias = conv_bias(norm)
        layers: list[nn.Module] = [  # C64: no normalisation
            nn.Conv2d(self.in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(slope, inplace=True),
        ]
        w = width
        for i in range(1, self.n_layers + 1):  # C128-C256 with stride 2, then C512 with stride 1
            w_out = width * min(2**i, 8)
            stride = 2 if i < self.n_layers else 1
            layers += [
                nn.Conv2d(w, w_out, 4, stride=stride, padding=1, bias=bias),
                norm_layer(norm, w_out),
                nn.LeakyReLU(slope, inplace=True),
            ]
            w = w_out
        layers.append(nn.Conv2d(w, 1, 4, stride=1, padding=1))  # one logit per patch
        self.model = nn.Sequential(*layers)
        self.receptive_field = receptive_field(self.model)
        self.apply(dcgan_init)

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)
