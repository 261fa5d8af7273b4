"""Frozen feature networks for SRGAN's content loss (Ledig et al. 2017, sec. 2.2.1).

The paper's VGG54 loss is the mean squared distance between the feature maps of VGG19 (Simonyan
& Zisserman 2015, ImageNet weights) after the ReLU of conv5_4 (the 4th conv before the 5th
max-pool), the maps "rescaled with a factor of 1/12.75" so the loss is of the order of the pixel
MSE. The weights are torchvision's `VGG19_Weights.IMAGENET1K_V1`, taken from, in order: a file
the user gives (`weights`, a state dict), torch hub's cache, torchvision's download when its host
answers within seconds.

Where none can be had (an offline machine), `content_network` says so in one line and falls back
to the ImageNet-trained network this project already loads offline: the FID Inception v3 (the
TF 2015-12-05 weights, `gans.metrics.inception`) up to Mixed_5d (288 channels at about 1/10 of
the side), a mid-to-deep feature map as VGG54 is, at its own scale (`INCEPTION_SCALE`). That is a
stated substitute, not the paper's loss. `kind="mse"` is the pixel loss (SRGAN-MSE in table 1).

The feature network is frozen (no gradients for its weights), kept out of the model's modules
(so out of checkpoints, optimizers and DDP), and computes in float32 under every precision
(`exact_float32`); gradients flow through it to the SR image.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from gans.data.download import host_reachable
from gans.errors import GansError
from gans.metrics.inception import exact_float32, inception_weights_path

log = logging.getLogger(__name__)

KINDS = ("vgg", "inception", "mse")
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"  # torchvision VGG19_Weights.IMAGENET1K_V1
VGG54_LAYERS = 36  # vgg19.features[:36] ends with the ReLU after conv5_4
VGG_SCALE = 1.0 / 12.75  # Ledig et al. 2017, sec. 2.2.1
# Chosen so the Inception substitute's loss is of the order of the pixel MSE, as 1/12.75 makes
# VGG54's: measured on bicubic x4 reconstructions of the offline photographs (96x96 crops), the
# ratio content / pixel MSE was 43 unscaled, so the maps are scaled by 1 / sqrt(43) = 0.15.
INCEPTION_SCALE = 0.15
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
INCEPTION_BLOCKS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                    "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d")  # fmt: skip


def vgg_weights(path: str | None = None) -> dict[str, Tensor] | None:
    """torchvision's VGG19 ImageNet state dict, or None where it cannot be had (see the module)."""
    if path:
        if not Path(path).is_file():
            raise GansError(f"model.content_weights={path} does not exist: give torchvision's vgg19-dcbb9e9d.pth")
        return torch.load(path, map_location="cpu", weights_only=True)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(VGG19_URL).path).name
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    if host_reachable(VGG19_URL):
        return torch.hub.load_state_dict_from_url(VGG19_URL, map_location="cpu", progress=False, weights_only=True)
    return None


class ContentNetwork(nn.Module):
    """images in [-1, 1] -> scaled feature maps, frozen, float32 under every precision."""

    def __init__(self, features: nn.Module, scale: float, kind: str) -> None:
        super().__init__()
        self.features, self.scale, self.kind = features.eval().requires_grad_(False), scale, kind
        if kind == "vgg":
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> ContentNetwork:
        return super().train(False)  # batch norm (Inception's) keeps its ImageNet statistics

    def forward(self, images: Tensor) -> Tensor:
        with exact_float32(images.device):
            x = images.float()
            if self.kind == "vgg":  # torchvision's input: [0, 1] RGB normalised by ImageNet's statistics
                x = ((x + 1.0) / 2.0 - self.mean) / self.std
            else:  # the FID Inception's input: (x255 - 128) / 128
                x = ((x + 1.0) * 127.5 - 128.0) / 128.0
            return self.features(x) * self.scale


def content_network(kind: str = "vgg", weights: str | None = None) -> ContentNetwork | None:
    """The frozen feature network of the content loss (None for "mse"); falls back from "vgg" to
    "inception" with one log line when VGG19's weights cannot be had."""
    if kind not in KINDS:
        raise GansError(f"model.content_loss={kind!r} must be one of {', '.join(KINDS)}")
    if kind == "mse":
        return None
    if kind == "vgg":
        state = vgg_weights(weights)
        if state is not None:
            import torchvision

            vgg = torchvision.models.vgg19()
            vgg.load_state_dict(state)
            log.info("content loss: VGG54 (VGG19 conv5_4 after ReLU, ImageNet weights) / 12.75, as Ledig et al. 2017")
            return ContentNetwork(vgg.features[:VGG54_LAYERS], VGG_SCALE, "vgg")
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        log.warning(
            f"content loss: VGG19's ImageNet weights cannot be had (not in {hub}, "
            f"no model.content_weights, {urlparse(VGG19_URL).hostname} unreachable): using the FID Inception v3 up to "
            "Mixed_5d (ImageNet-trained, offline) instead of VGG54; model.content_loss=mse for the pixel loss"
        )
    return inception_content()


def inception_content() -> ContentNetwork:
    """The FID Inception v3 (TF 2015-12-05 weights) up to Mixed_5d, frozen."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)  # Lightning's `*-true` init contexts change the default
    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                          feature_extractor_weights_path=inception_weights_path())  # fmt: skip
    finally:
        torch.set_default_dtype(default_dtype)
    blocks = nn.Sequential(*(getattr(net, name) for name in INCEPTION_BLOCKS))
    log.info(f"content loss: FID Inception v3 features up to Mixed_5d x {INCEPTION_SCALE:g}")
    return ContentNetwork(blocks, INCEPTION_SCALE, "inception")
