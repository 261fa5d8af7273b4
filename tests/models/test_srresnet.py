"""SRResNet (Ledig et al. 2017) as a module: the generator alone on the pixel MSE, scored on the
Y channel with a border of the scale."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from gans.models.srresnet import SRResNet
from gans.nets.srgan import SRResNet as Generator

ADAM = functools.partial(torch.optim.Adam, lr=1e-4, betas=(0.9, 0.999))


def srresnet(**kwargs) -> SRResNet:
    return SRResNet(Generator(4, blocks=1, width=8), ADAM, eval_fid=False, **kwargs)


def batch(seed: int = 0, side: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr, lr = torch.rand(2, 3, side, side, generator=g), torch.rand(2, 3, side // 4, side // 4, generator=g)
    return {"hr": hr * 2 - 1, "lr": lr * 2 - 1}


def test_srresnet_descends_the_pixel_mse():
    model = srresnet()
    b = batch()
    loss, _ = model.mse_loss(b)
    assert loss.item() == pytest.approx(F.mse_loss(model.generator(b["lr"]), b["hr"]).item())
    assert [u.network for u in model.updates()] == ["generator"] and model.border == 4 and model.channel == "y"
