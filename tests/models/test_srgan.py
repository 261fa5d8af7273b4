"""SRGAN as a module: the perceptual loss, the generator started from an SRResNet
checkpoint, and the frozen content network kept out of checkpoints, optimizers and DDP."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from gans.errors import GansError
from gans.models.srgan import SRGAN
from gans.models.srresnet import SRResNet
from gans.nets.srgan import SRDiscriminator
from gans.nets.srgan import SRResNet as Generator
from tests.models.test_srresnet import batch, srresnet

ADAM = functools.partial(torch.optim.Adam, lr=1e-4, betas=(0.9, 0.999))


def srgan(side: int = 16, **kwargs) -> SRGAN:
    kwargs.setdefault("content_loss", "mse")
    return SRGAN(Generator(4, blocks=1, width=8), SRDiscriminator(side, width=4), ADAM, ADAM, eval_fid=False, **kwargs)


def test_srgan_generator_loss_is_content_plus_1e_3_adversarial():
    model = srgan()
    b = model.prepare_batch(batch())
    loss, stats = model.generator_loss(b)
    adversarial = F.softplus(-model.discriminator(b["fake"])).mean()  # -log D(G(I_LR))
    assert stats["gan_loss"].item() == pytest.approx(adversarial.item(), rel=1e-5)
    assert stats["content_loss"].item() == pytest.approx(F.mse_loss(b["fake"], b["hr"]).item(), rel=1e-5)
    assert loss.item() == pytest.approx(stats["content_loss"].item() + 1e-3 * adversarial.item(), rel=1e-5)
    d_loss, _ = model.discriminator_loss(b)
    real, fake = model.discriminator(b["hr"]), model.discriminator(b["fake"])
    assert d_loss.item() == pytest.approx((F.softplus(-real).mean() + F.softplus(fake).mean()).item(), rel=1e-5)


def test_srgan_starts_from_an_srresnet_checkpoint(tmp_path):
    pretrained = srresnet()
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": pretrained.state_dict()}, path)
    model = srgan(generator_init=str(path))
    for key, value in pretrained.generator.state_dict().items():
        assert torch.equal(model.generator.state_dict()[key], value), key
    with pytest.raises(GansError) as info:
        srgan(generator_init=str(tmp_path / "absent.ckpt"))
    assert str(info.value) == (f"model.generator_init={tmp_path / 'absent.ckpt'} does not exist: give the last.ckpt of "
                               "a model=srresnet run")  # fmt: skip
    wider = SRResNet(Generator(4, blocks=1, width=16), ADAM, eval_fid=False)
    torch.save({"state_dict": wider.state_dict()}, path)
    with pytest.raises(GansError, match="does not fit this generator") as info:
        srgan(generator_init=str(path))
    assert "\n" not in str(info.value)
    residual = SRResNet(Generator(4, blocks=1, width=8, residual="bicubic"), ADAM, eval_fid=False)
    torch.save({"state_dict": residual.state_dict()}, path)
    with pytest.raises(GansError, match="does not fit this generator.*bicubic_residual") as info:
        srgan(generator_init=str(path))  # a residual SRResNet into the paper's generator
    assert "\n" not in str(info.value)
    model = SRGAN(Generator(4, blocks=1, width=8, residual="bicubic"), SRDiscriminator(16, width=4), ADAM, ADAM,
                  eval_fid=False, content_loss="mse", generator_init=str(path))  # fmt: skip
    assert torch.equal(model.generator.tail.weight, residual.generator.tail.weight)


def test_the_content_network_is_frozen_float32_and_out_of_checkpoints_optimizers_and_ddp():
    model = srgan(48, content_loss="inception")
    net = model.content_net
    assert net is not None and all(not p.requires_grad for p in net.parameters())
    content_params = {id(p) for p in net.parameters()}
    assert not content_params & {id(p) for p in model.parameters()}  # not a submodule: DDP never sees it
    optimizers, _ = model.configure_optimizers()
    assert not content_params & {id(p) for o in optimizers for group in o.param_groups for p in group["params"]}
    assert all(k.split(".")[0] in ("generator", "discriminator") for k in model.state_dict())
    model.to(torch.bfloat16)  # a dtype cast of the model (Lightning's bf16-true) leaves it float32
    assert all(p.dtype == torch.float32 for p in model.content_net.parameters())
    model.float()
    b = model.prepare_batch(batch(side=48))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert net(b["fake"]).dtype == torch.float32
        loss, stats = model.generator_loss(b)
    assert stats["content_loss"].dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is None for p in net.parameters())
    assert model.generator.tail.weight.grad is not None
