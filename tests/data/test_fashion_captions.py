"""The offline captions of Fashion-MNIST items: the measured attributes (tone, size per class),
their buckets, the caption text and its parse, and hits of generated images at another side."""

from __future__ import annotations

import pytest
import torch

from gans.data import fashion_captions as fc


def item(side: int, box: int, value: int) -> torch.Tensor:
    """A uint8 (1, side, side) image: a centred box x box square of `value` on black."""
    image = torch.zeros(1, side, side, dtype=torch.uint8)
    start = (side - box) // 2
    image[:, start : start + box, start : start + box] = value
    return image


def test_tone_is_the_foreground_mean_and_size_the_foreground_share():
    image = item(10, 4, 200)
    image[0, 0, 0] = 10  # below FOREGROUND: background, counted in neither
    tone, size = fc.foreground_stats(image[None])
    assert tone.item() == 200.0 and size.item() == pytest.approx(16 / 100)
    assert fc.foreground_stats(torch.zeros(1, 1, 4, 4, dtype=torch.uint8))[0].item() == 0.0


def test_buckets_split_at_the_tertiles_tone_over_all_items_and_size_per_class():
    # Class 0: boxes of 2, 4 and 6 pixels; class 1: boxes of 6, 8 and 10; tones 60, 150, 240.
    images = torch.stack(
        [item(12, box, value) for box, value in [(2, 60), (4, 150), (6, 240), (6, 60), (8, 150), (10, 240)]]
    )
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    thresholds = fc.fit_thresholds(images, labels, num_classes=2)
    tone, size = fc.measure(images, labels, thresholds)
    assert tone.tolist() == [0, 1, 2, 0, 1, 2]  # dark, grey, light
    assert size.tolist() == [0, 1, 2, 0, 1, 2]  # a 6-pixel box: large for class 0, small for class 1
    captions = [fc.caption(int(y), int(t), int(s), 0) for y, t, s in zip(labels, tone, size)]
    assert captions[0] == "a small dark t-shirt" and captions[5] == "a large light pair of trousers"
    assert (
        fc.caption(9, 0, 1, 2) == "an ankle boot: dark, mid-size"
        and fc.caption(9, 0, 0, 1) == "a dark ankle boot, small"
    )
    for label, t, s, template in [(9, 0, 2, 0), (2, 1, 0, 1), (8, 2, 1, 2)]:
        assert fc.parse(fc.caption(label, t, s, template)) == (label, t, s)
    assert fc.parse("a dark ankle boot") is None


def test_generated_images_at_another_side_are_measured_at_the_datas():
    data = fc.FashionCaptionsDataModule.__new__(fc.FashionCaptionsDataModule)
    data.train_images = torch.zeros(1, 1, 16, 16, dtype=torch.uint8)
    data.thresholds = fc.Thresholds(tone=torch.tensor([100.0, 200.0]), size=torch.tensor([[0.1, 0.2]]))
    small_light = item(8, 2, 250)[None]  # at 8x8; 1/16 of the image at any side
    tone_hit, size_hit = data.attribute_hits(small_light, torch.tensor([0]), torch.tensor([2]), torch.tensor([0]))
    assert tone_hit.item() and size_hit.item()
    tone_hit, size_hit = data.attribute_hits(small_light, torch.tensor([0]), torch.tensor([0]), torch.tensor([2]))
    assert not tone_hit.item() and not size_hit.item()
