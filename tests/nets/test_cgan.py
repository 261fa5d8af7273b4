"""The class-conditional DCGAN networks: shapes, and that the label reaches the output."""

import pytest
import torch

from gans.errors import GansError
from gans.nets.cgan import ConditionalDiscriminator, ConditionalGenerator


def test_generator_draws_each_requested_class():
    torch.manual_seed(0)
    g = ConditionalGenerator(10, latent_dim=16, embed_dim=8, image_size=28, channels=1, width=8).eval()
    z = torch.randn(1, 16).expand(3, -1)
    images = g(z, torch.tensor([0, 1, 1]))
    assert images.shape == (3, 1, 28, 28) and g.latent_dim == 16
    assert not torch.equal(images[0], images[1]) and torch.equal(images[1], images[2])


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_discriminator_scores_depend_on_the_label(conditioning):
    torch.manual_seed(0)
    d = ConditionalDiscriminator(10, conditioning, image_size=28, channels=1, width=8).eval()
    if conditioning == "projection":
        torch.nn.init.normal_(d.embed.weight)  # starts at zero: an unconditional discriminator
    x = torch.randn(1, 1, 28, 28).expand(2, -1, -1, -1)
    scores = d(x, torch.tensor([2, 7]))
    assert scores.shape == (2,) and scores[0] != scores[1]


def test_projection_starts_as_the_unconditional_discriminator():
    # Miyato & Koyama 2018, eq. 3 with a zero class embedding: psi(phi(x)) alone.
    torch.manual_seed(0)
    d = ConditionalDiscriminator(10, "projection", image_size=28, channels=1, width=8).eval()
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(d(x, torch.tensor([0, 4, 9])), d.net(x))


def test_unlabelled_data_and_unknown_conditioning_are_clear_errors():
    with pytest.raises(GansError, match="needs labelled data with at least 2 classes, got num_classes=0"):
        ConditionalGenerator(0, image_size=28, channels=1)
    with pytest.raises(GansError, match="conditioning must be one of concat, projection, got 'sum'"):
        ConditionalDiscriminator(10, "sum", image_size=28, channels=1)
