"""The conditional GAN: the losses by hand with the batch's labels, one grid row per class with
the same latent down each column, and its conditions in evaluation."""

import functools

import pytest
import torch

from gans import losses
from gans.errors import GansError
from gans.models.cgan import CGAN
from gans.nets.cgan import ConditionalDiscriminator, ConditionalGenerator

adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


def make_cgan(conditioning: str = "projection", **kwargs) -> CGAN:
    torch.manual_seed(0)
    kwargs.setdefault("eval_fid", False)
    g = ConditionalGenerator(4, latent_dim=16, embed_dim=8, image_size=16, channels=1, width=8)
    d = ConditionalDiscriminator(4, conditioning, image_size=16, channels=1, width=8)
    return CGAN(g, d, adam, adam, num_classes=4, num_fixed_samples=12, **kwargs)


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_losses_judge_each_image_with_its_label(conditioning):
    model = make_cgan(conditioning)
    batch = {"image": torch.rand(6, 1, 16, 16) * 2 - 1, "label": torch.tensor([0, 1, 2, 3, 0, 1])}
    torch.manual_seed(1)
    d_loss, _ = model.discriminator_loss(batch)
    torch.manual_seed(1)
    fake = model.generator(torch.randn(6, 16), batch["label"])
    expected = losses.bce_discriminator_loss(
        model.discriminator(batch["image"], batch["label"]), model.discriminator(fake, batch["label"])
    )
    assert d_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.manual_seed(2)
    g_loss, _ = model.generator_loss(batch)
    torch.manual_seed(2)
    fake_logits = model.discriminator(model.generator(torch.randn(6, 16), batch["label"]), batch["label"])
    assert g_loss.item() == pytest.approx(losses.nonsaturating_generator_loss(fake_logits).item(), rel=1e-5)


def test_mixed_batches_carry_the_labels_of_both_halves():
    model = make_cgan("concat", mixed_batches=True)
    model.discriminator.eval()  # no batch statistics: one pass over both halves equals two passes
    batch = {"image": torch.rand(4, 1, 16, 16) * 2 - 1, "label": torch.tensor([3, 2, 1, 0])}
    torch.manual_seed(1)
    mixed, _ = model.discriminator_loss(batch)
    model.mixed_batches = False
    torch.manual_seed(1)
    separate, _ = model.discriminator_loss(batch)
    assert mixed.item() == pytest.approx(separate.item(), rel=1e-5)


def test_grid_has_one_row_per_class_and_one_latent_per_column():
    model = make_cgan()
    images, columns, names = model.visuals(nrow=3, interpolation_rows=2, interpolation_steps=4)["samples"]
    assert images.shape == (4 * 3, 1, 16, 16) and columns == 3 and names == ["0", "1", "2", "3"]
    grid = images.view(4, 3, -1)
    assert not torch.allclose(grid[0], grid[1])  # rows: classes differ
    torch.nn.init.zeros_(model.generator.embed.weight)  # the label no longer matters...
    images, _, _ = model.visuals(nrow=3, interpolation_rows=2, interpolation_steps=4)["samples"]
    grid = images.view(4, 3, -1)
    assert torch.allclose(grid[0], grid[3])  # ...so each column is one latent's image, in every row
    assert not torch.allclose(grid[0, 0], grid[0, 1])


def test_conditions_of_evaluation_and_sampling():
    model = make_cgan()
    assert model.class_conditional and torch.equal(
        model.condition_of({"label": torch.tensor([2, 0])}), torch.tensor([2, 0])
    )
    drawn = model.sample_condition(500)
    assert drawn.min() == 0 and drawn.max() == 3
    assert model.generate(5, condition=torch.full((5,), 2)).shape == (5, 1, 16, 16)


def test_unlabelled_data_is_one_clear_error():
    with pytest.raises(GansError, match="needs labelled data"):
        CGAN(None, None, adam, adam, num_classes=0)
