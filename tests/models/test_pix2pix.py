"""Pix2pix on tiny random image pairs: the paper's objective with a conditional D, one G forward
per step, the evaluation metrics against the targets, grids, checkpoints and the YAML config."""

from __future__ import annotations

import functools

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure

from gans import losses
from gans.models.pix2pix import Pix2Pix
from gans.nets.patchgan import PatchDiscriminator
from gans.nets.unet import UnetGenerator
from tests.models.test_base import make_trainer
from tests.models.test_cyclegan import RandomPairs, batch_of, compose

adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


def make_pix2pix(**kwargs) -> Pix2Pix:
    torch.manual_seed(0)
    kwargs.setdefault("eval_fid", False)
    net_kwargs = kwargs.pop("net_kwargs", {})
    generator = UnetGenerator(32, 1, width=4, **net_kwargs)
    discriminator = PatchDiscriminator(1, condition_channels=1, width=4, n_layers=2, norm="batch")
    return Pix2Pix(generator, discriminator, adam, adam, **kwargs)


def test_losses_are_the_paper_s_with_the_input_as_condition():
    model = make_pix2pix()
    batch = batch_of(RandomPairs(paired=True))
    a, b = batch["A"], batch["B"]
    seen = []
    model.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    batch["fake_B"] = fake = model.generator(a)
    d_loss, stats = model.discriminator_loss(batch)
    assert [x.shape[1] for x in seen] == [2, 2]  # D sees concat(input, output)
    torch.testing.assert_close(seen[0], torch.cat([a, b], 1))
    torch.testing.assert_close(seen[1], torch.cat([a, fake.detach()], 1))
    D = model.discriminator
    bce = nn.functional.binary_cross_entropy_with_logits
    real, fake_logits = D(torch.cat([a, b], 1)), D(torch.cat([a, fake], 1))
    expected_d = 0.5 * (bce(real, torch.ones_like(real)) + bce(fake_logits, torch.zeros_like(fake_logits)))
    assert d_loss.item() == pytest.approx(expected_d.item(), rel=1e-5)
    assert 0 < stats["D(A,B)"] < 1
    g_loss, g_stats = model.generator_loss(batch)
    expected_g = -nn.functional.logsigmoid(fake_logits).mean() + 100 * (b - fake).abs().mean()
    assert g_loss.item() == pytest.approx(expected_g.item(), rel=1e-5)
    assert g_stats["l1_loss"].item() == pytest.approx(losses.l1_loss(fake, b).item(), rel=1e-6)


def test_one_generator_forward_per_step_and_each_update_its_own_network(tmp_path):
    model = make_pix2pix()
    forwards, phase, grads = [], {"now": None}, []
    model.generator.register_forward_hook(lambda *args: forwards.append(1))
    for name, net in (("G", model.generator), ("D", model.discriminator)):
        for p in net.parameters():
            p.register_hook(lambda g, name=name: grads.append((phase["now"], name)))
    for loss_name in ("discriminator_loss", "generator_loss"):
        original = getattr(model, loss_name)

        def traced(batch, original=original, loss_name=loss_name):
            phase["now"] = loss_name
            return original(batch)

        setattr(model, loss_name, traced)
    make_trainer(tmp_path, max_steps=4, limit_val_batches=0).fit(model, datamodule=RandomPairs(paired=True))
    assert len(forwards) == 2  # two training steps (a D and a G update each), one G(A) each
    assert {name for step, name in grads if step == "discriminator_loss"} == {"D"}
    assert {name for step, name in grads if step == "generator_loss"} == {"G"}
    metrics = model.trainer.callback_metrics
    for key in ("g_loss", "d_loss", "l1_loss", "gan_loss", "D(A,B)", "D(A,G(A))"):
        assert torch.isfinite(metrics[f"train/{key}"]), key


def test_validation_and_test_log_l1_psnr_ssim_against_the_target(tmp_path):
    # Deterministic translations, so the metrics can be recomputed here.
    model = make_pix2pix(net_kwargs={"dropout_at_test": False})
    dm = RandomPairs(val=6, paired=True)
    trainer = make_trainer(tmp_path)
    trainer.validate(model, datamodule=dm, verbose=False)
    metrics = dict(trainer.callback_metrics)
    a, b = dm.a[dm.num :], dm.b[dm.num :]
    with torch.no_grad():
        # Batch statistics at test time, one image at a time (defect 7): each image is normalised
        # with its own statistics, not with those of its evaluation batch of 4 or 2.
        model.generator.eval()
        fake = torch.cat([model.generator(a[i : i + 1]) for i in range(len(a))])
    fake01, b01 = (fake + 1) / 2, (b + 1) / 2
    psnr = (10 * torch.log10(1 / ((fake01 - b01) ** 2).flatten(1).mean(1))).mean()
    assert metrics["val/l1"].item() == pytest.approx((fake - b).abs().mean().item(), rel=1e-4)
    assert metrics["val/psnr"].item() == pytest.approx(psnr.item(), rel=1e-4)
    ssim = structural_similarity_index_measure(fake01, b01, data_range=1.0)
    assert metrics["val/ssim"].item() == pytest.approx(ssim.item(), rel=1e-4)
    trainer.test(model, datamodule=dm, verbose=False)
    assert {"test/l1", "test/psnr", "test/ssim"} <= set(trainer.callback_metrics)
    assert trainer.callback_metrics["test/l1"].item() == pytest.approx(metrics["val/l1"].item(), rel=1e-4)

    images, columns = model.visuals(nrow=2, interpolation_rows=8, interpolation_steps=10)["A2B"]
    assert columns == 3 and images.shape == (6, 1, 32, 32)
    assert images[0::3].equal(a[:2]) and images[2::3].equal(b[:2])  # input | output | target


def eval_batch(a: torch.Tensor, b: torch.Tensor, index: list[int]) -> dict[str, torch.Tensor]:
    index_ = torch.tensor(index)
    return {"A": a[index_], "B": b[index_], "index": index_}


def test_evaluation_translation_does_not_depend_on_the_batch():
    # Defect 7: with batch statistics at test time (and dropout, the paper's defaults), an image's
    # evaluation translation was normalised with its evaluation batch's statistics (facades: 16
    # images, while it trains at batch 1), so metrics moved with the batch size, the batch's other
    # images and the number of GPUs. Each image is now run alone, with seeded dropout noise.
    model = make_pix2pix()
    assert model.generator.training  # evaluation switches to eval mode and back
    dm = RandomPairs(num=0, val=16, paired=True)
    a, b = dm.a, dm.b

    def translations(index: list[int]) -> torch.Tensor:
        reals, fakes = model.evaluation_pairs(eval_batch(a, b, index))[""]
        assert reals.equal(b[torch.tensor(index)])
        return fakes

    rng = torch.get_rng_state()
    whole = translations(list(range(16)))  # one evaluation batch of 16
    assert torch.get_rng_state().equal(rng)  # the training's random stream is left alone
    alone = torch.cat([translations([i]) for i in range(16)])  # batches of 1
    assert whole.equal(alone)
    order = [5, 12, 0, 9, 3, 15, 7, 1, 14, 2, 10, 6, 13, 4, 11, 8]  # other batch compositions
    mixed = torch.cat([translations(order[:4]), translations(order[4:11]), translations(order[11:])])
    assert mixed.equal(whole[torch.tensor(order)])
    shards = [translations(list(range(rank, 16, 2))) for rank in (0, 1)]  # two DDP processes' shares
    assert shards[0].equal(whole[0::2]) and shards[1].equal(whole[1::2])
    assert model.generator.training
    # Still the paper's noise: another image index gives the same input another dropout sample.
    again = model.evaluation_pairs({"A": a[:1], "B": b[:1], "index": torch.tensor([100])})[""][1]
    assert not again.equal(whole[:1])
    # What the old evaluation did: the batch's statistics, another output for the same image.
    with torch.no_grad():
        model.generator.eval()
        torch.manual_seed(0)
        batched = model.generator(a)
    assert (batched - whole).abs().max() > 1e-3


def test_sample_grid_shows_the_evaluated_translation(tmp_path):
    # Defect 7: the grid's translations are the ones evaluation scores (same per-image statistics
    # and noise), not a batch-of-8 forward with fresh dropout.
    model = make_pix2pix()
    dm = RandomPairs(val=6, paired=True)
    make_trainer(tmp_path).validate(model, datamodule=dm, verbose=False)
    images, columns = model.visuals(nrow=3, interpolation_rows=0, interpolation_steps=0)["A2B"]
    a, b = dm.a[dm.num :], dm.b[dm.num :]
    evaluated = model.evaluation_pairs(eval_batch(a, b, [2, 1, 0]))[""][1].flip(0)
    assert columns == 3 and images[1::3].equal(evaluated)
    assert images[0::3].equal(a[:3]) and images[2::3].equal(b[:3])


def test_deterministic_generator_translates_the_batch_at_once():
    # Running statistics and no test-time dropout: nothing depends on the batch, one forward.
    model = make_pix2pix(net_kwargs={"dropout_at_test": False, "batch_stats_at_test": False})
    forwards = []
    model.generator.register_forward_hook(lambda module, args, out: forwards.append(len(args[0])))
    dm = RandomPairs(num=0, val=8, paired=True)
    fakes = model.evaluation_pairs(eval_batch(dm.a, dm.b, list(range(8))))[""][1]
    assert forwards == [8] and fakes.shape == (8, 1, 32, 32)


def test_visuals_before_any_validation_come_from_the_validation_loader(tmp_path):
    model = make_pix2pix()
    make_trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(model, datamodule=RandomPairs(paired=True))
    images, columns = model.visuals(nrow=8, interpolation_rows=0, interpolation_steps=0)["A2B"]
    assert columns == 3 and images.shape == (3 * 4, 1, 32, 32)  # the first validation batch: 4 items


def test_rgb_translation_grids_from_grayscale_inputs():
    images, columns = Pix2Pix.rows(torch.zeros(2, 1, 4, 4), torch.ones(2, 3, 4, 4), torch.ones(2, 3, 4, 4))
    assert columns == 3 and images.shape == (6, 3, 4, 4) and images[0].eq(0).all()


def test_checkpoint_loads_with_weights_only(tmp_path):
    model = make_pix2pix(lambda_l1=50.0)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = make_trainer(tmp_path, max_steps=2, limit_val_batches=1, enable_checkpointing=True, callbacks=[ckpt])
    trainer.fit(model, datamodule=RandomPairs(paired=True))
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert state["hyper_parameters"]["lambda_l1"] == 50.0
    assert not any("eval_metrics" in key for key in state["state_dict"])
    fresh = make_pix2pix()
    fresh.load_state_dict(state["state_dict"])  # strict: the same keys as a new model
    assert all(torch.equal(p, q) for p, q in zip(fresh.parameters(), model.parameters()))


def test_config_builds_the_paper_s_model():
    model = instantiate(compose("pix2pix"))
    assert isinstance(model, Pix2Pix) and model.lambda_l1 == 100
    assert model.generator.n_downs == 5 and model.discriminator.in_channels == 2
    assert model.discriminator.n_layers == 2 and "generator" not in model.scheduler_factories
    big = instantiate(compose("pix2pix", 256, 3))
    assert big.generator.n_downs == 8 and big.discriminator.receptive_field == 70 and big.discriminator.in_channels == 6
