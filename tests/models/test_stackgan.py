"""StackGAN's training step: the matching-aware discriminator loss's three pairings, the
generator's KL term, and stage II on a frozen stage I."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from gans.errors import GansError
from gans.models.stackgan import StackGAN, matching_aware_loss
from gans.nets.stackgan import StackGANDiscriminator, Stage1Generator, Stage2Generator

SURE = 30.0  # a logit whose BCE against its own side is ~0


@pytest.mark.parametrize("pairing, weight", [(0, 1.0), (1, 0.5), (2, 0.5)])
def test_matching_aware_loss_charges_each_pairing_with_its_weight(pairing, weight):
    # A perfect D: real+match real, real+mismatch fake, fake+match fake: no loss.
    perfect = [torch.full((4,), SURE), torch.full((4,), -SURE), torch.full((4,), -SURE)]
    assert matching_aware_loss(*perfect).item() == pytest.approx(0.0, abs=1e-6)
    # One pairing undecided (logit 0, BCE = ln 2): the loss is that pairing's weight times ln 2.
    undecided = list(perfect)
    undecided[pairing] = torch.zeros(4)
    assert matching_aware_loss(*undecided).item() == pytest.approx(weight * math.log(2.0), rel=1e-4)


def tiny_stackgan(stage: int = 1, **kwargs) -> StackGAN:
    nets = {"embedding_dim": 8, "channels": 1, "condition_dim": 4}
    adam = partial(torch.optim.Adam, lr=1e-3)
    return StackGAN(
        stage1_generator=Stage1Generator(image_size=8, latent_dim=5, width=4, **nets),
        stage1_discriminator=StackGANDiscriminator(image_size=8, width=4, **nets),
        stage2_generator=Stage2Generator(image_size=16, scale=2, width=4, **nets),
        stage2_discriminator=StackGANDiscriminator(image_size=16, width=4, **nets),
        stage=stage, optimizer_g=adam, optimizer_d=adam, num_fixed_samples=4, **kwargs,
    )  # fmt: skip


def captioned_batch(n: int = 4) -> dict[str, torch.Tensor]:
    table = torch.randn(n, 3, 8)
    return {"image": torch.rand(n, 1, 16, 16) * 2 - 1, "label": torch.arange(n), "index": torch.arange(n),
            "caption_embeddings": table, "caption_count": torch.tensor([1, 2, 3, 3])}  # fmt: skip


def test_discriminator_sees_real_with_its_text_real_with_another_and_fake_with_its_text():
    model = tiny_stackgan()
    raw = captioned_batch()
    batch = model.prepare_batch(raw)
    # Each image's caption is one of its own (caption_count of them), the real images at stage I's side.
    table = raw["caption_embeddings"]
    drawn = [[torch.equal(batch["embedding"][i], table[i, k]) for k in range(3)].index(True) for i in range(4)]
    assert drawn[0] == 0 and drawn[1] < 2 and batch["image"].shape == (4, 1, 8, 8)
    calls = []
    forward = model.discriminator.forward
    model.discriminator.forward = lambda images, text: calls.append((images, text)) or forward(images, text)
    model.discriminator_loss(batch)
    (real, text), (real2, wrong), (fake, text2) = calls
    assert torch.equal(real, batch["image"]) and torch.equal(real2, batch["image"])
    assert torch.equal(text, batch["embedding"]) and torch.equal(text2, batch["embedding"])
    assert torch.equal(wrong, batch["embedding"].roll(1, 0)) and not torch.equal(wrong, text)
    assert fake.shape == real.shape and not torch.equal(fake, real)


def test_generator_loss_adds_the_weighted_kl():
    batch = captioned_batch()
    losses = []
    for weight in (0.0, 2.0):
        torch.manual_seed(2)
        model = tiny_stackgan(kl_weight=weight)
        torch.manual_seed(0)
        prepared = model.prepare_batch(batch)
        torch.manual_seed(1)
        loss, stats = model.generator_loss(prepared)
        losses.append((loss.item(), stats["kl"].item()))
    (plain, kl), (weighted, kl2) = losses
    assert kl == pytest.approx(kl2) and weighted == pytest.approx(plain + 2.0 * kl, rel=1e-5)


def test_stage_two_trains_on_a_frozen_stage_one_loaded_from_its_checkpoint(tmp_path):
    first = tiny_stackgan(stage=1)
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": first.state_dict(), "hyper_parameters": {"stage": 1}}, path)
    second = tiny_stackgan(stage=2, stage1_ckpt=str(path))
    second.setup("fit")
    assert torch.equal(second.stage1.project[0].weight, first.generator.project[0].weight)
    assert not any(p.requires_grad for p in second.stage1.parameters())
    assert "stage1_generator" not in second.hparams  # plain values only: weights_only checkpoints
    batch = second.prepare_batch(captioned_batch())
    assert batch["low"].shape == (4, 1, 8, 8) and batch["image"].shape == (4, 1, 16, 16)
    loss, _ = second.generator_loss(batch)
    loss.backward()
    assert all(p.grad is None for p in second.stage1.parameters())
    assert second.generator.to_image[0].weight.grad is not None
    with pytest.raises(GansError, match="model.stage=2 needs model.stage1_ckpt"):
        tiny_stackgan(stage=2).setup("fit")
    torch.save({"state_dict": second.state_dict(), "hyper_parameters": {"stage": 2}}, path)
    with pytest.raises(GansError, match="not a StackGAN stage-1 checkpoint"):
        tiny_stackgan(stage=2, stage1_ckpt=str(path)).setup("fit")


def test_sampling_takes_a_caption_and_refuses_without_one(monkeypatch):
    from gans import generation

    model = tiny_stackgan()
    seen = []
    monkeypatch.setattr(model, "embed_text", lambda texts: seen.append(texts) or torch.ones(len(texts), 8))
    images = generation.sample(model, 3, text="a dark ankle boot")
    assert images.shape == (3, 8, 8, 1) and seen == [["a dark ankle boot"]]
    with pytest.raises(GansError, match="--text 'a dark ankle boot'"):
        generation.sample(model, 3)  # no data attached, no caption: nothing to condition on
    with pytest.raises(GansError, match="not conditioned on text"):
        generation.text_condition(torch.nn.Linear(1, 1), "a bag", 2)


def test_evaluation_draws_the_same_augmented_conditions_every_time_and_leaves_the_rng_alone():
    model = tiny_stackgan()
    z, text = torch.randn(3, 5), torch.randn(3, 8)
    torch.manual_seed(0)
    first, _ = model.generate_stages(z, text, seed=7)
    state = torch.get_rng_state()
    torch.manual_seed(1)
    again, _ = model.generate_stages(z, text, seed=7)
    assert torch.equal(first, again)
    torch.manual_seed(0)
    model.generate_stages(z, text, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # training noise is not consumed
    assert not torch.equal(first, model.generate_stages(z, text, seed=8)[0])  # eps does matter


def test_real_features_are_named_by_their_side_so_the_stages_never_share_a_cache_file():
    first, second = tiny_stackgan(stage=1), tiny_stackgan(stage=2)
    assert first.reference_stream("") == second.reference_stream("stage1") == f"{first.low_side}px"
    assert second.reference_stream("") == f"{2 * first.low_side}px"
