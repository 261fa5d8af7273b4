"""Small pieces shared by the image-to-image networks (ResNet and U-Net generators, PatchGAN)."""

from __future__ import annotations

from torch import nn

NORMS = ("batch", "instance", "none")


def norm_layer(norm: str, channels: int, batch_stats_at_test: bool = False) -> nn.Module:
    """The normalisation after a convolution, as the CycleGAN/pix2pix reference implementation
    builds it: "batch" (learned scale and shift, running statistics), "instance" (Ulyanov et al.
    2016; no learned affine, no running statistics: the reference default), or "none".

    batch_stats_at_test: batch norm without running statistics, so evaluation normalises with
    the statistics of the test batch, as pix2pix does (Isola et al. 2017, sec. 3.3).
    """
    if norm == "batch":
        return nn.BatchNorm2d(channels, track_running_stats=not batch_stats_at_test)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def conv_bias(norm: str) -> bool:
    """Whether a convolution followed by `norm` gets a bias: not before batch norm, whose shift
    replaces it; the reference keeps it before instance norm (where it cancels) and without norm."""
    return norm != "batch"
