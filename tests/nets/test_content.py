"""SRGAN's content-loss networks: VGG54 from torchvision's weights when they can be had, the
stated offline substitute (the FID Inception up to Mixed_5d) with one line when not; frozen and
float32 under every precision."""

from __future__ import annotations

import logging

import pytest
import torch
import torchvision
from torch import nn

from gans.errors import GansError
from gans.nets import content


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # an empty hub cache
    monkeypatch.setattr(content, "host_reachable", lambda url, timeout=3.0: False)


def test_offline_vgg_falls_back_to_the_inception_substitute_with_one_line(offline, caplog):
    with caplog.at_level(logging.INFO, logger="gans.nets.content"):
        net = content.content_network("vgg")
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "\n" not in warning and "VGG19's ImageNet weights cannot be had" in warning
    assert "download.pytorch.org unreachable" in warning and "FID Inception v3 up to Mixed_5d" in warning
    assert net.kind == "inception" and net.scale == content.INCEPTION_SCALE
    assert all(not p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training and not any(m.training for m in net.modules())  # batch norm keeps ImageNet statistics
    x = torch.rand(2, 3, 48, 48, requires_grad=True) * 2 - 1
    x.retain_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = net(x)
    assert features.dtype == torch.float32 and features.shape == (2, 288, 3, 3)
    features.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the loss reaches the SR image
    assert content.content_network("mse") is None


def test_vgg54_is_conv5_4_after_its_relu_scaled_by_1_over_12_75(monkeypatch):
    state = torchvision.models.vgg19().state_dict()
    monkeypatch.setattr(content, "vgg_weights", lambda path=None: state)
    net = content.content_network("vgg")
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == 16 and isinstance(net.features[-1], nn.ReLU)  # conv5_4 is VGG19's 16th conv
    assert net.kind == "vgg" and net.scale == pytest.approx(1 / 12.75)
    assert torch.equal(net.features[34].weight, state["features.34.weight"])
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 2, 2)


def test_a_missing_weights_file_or_kind_is_one_line(tmp_path):
    with pytest.raises(GansError, match=r"model.content_weights=.*does not exist"):
        content.vgg_weights(str(tmp_path / "vgg19.pth"))
    with pytest.raises(GansError, match="model.content_loss='lpips' must be one of vgg, inception, mse"):
        content.content_network("lpips")
