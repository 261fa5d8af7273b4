"""Nearest-neighbour memorisation measures: the chunked search against a direct one, exact copies,
fresh draws against copies, and the closest pairs."""

from __future__ import annotations

import pytest
import torch

from gans.errors import GansError
from gans.metrics.memorisation import closest_pairs, fraction_closer, memorisation_summary, nearest_neighbours


def gaussian_images(n: int, seed: int) -> torch.Tensor:
    """n float images (1, 4, 4) from one fixed distribution (scaled into [-1, 1] mostly)."""
    return 0.3 * torch.randn(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed))


def test_chunked_search_equals_a_direct_cdist():
    queries, reference = gaussian_images(50, 0), gaussian_images(300, 1)
    distances, indices = nearest_neighbours(queries, reference, query_chunk=7, reference_chunk=64)
    # on the [0, 1] scale: (x + 1) / 2, so distances halve
    direct = torch.cdist(queries.flatten(1).double(), reference.flatten(1).double(),
                         compute_mode="donot_use_mm_for_euclid_dist") / 2  # fmt: skip
    expected_distances, expected_indices = direct.min(dim=1)
    assert torch.equal(indices, expected_indices)
    assert torch.allclose(distances.double(), expected_distances, atol=1e-6)


def test_an_exact_copy_is_at_distance_zero_and_counted():
    g = torch.Generator().manual_seed(2)
    train = torch.randint(0, 256, (200, 1, 8, 8), dtype=torch.uint8, generator=g)
    test = torch.randint(0, 256, (100, 1, 8, 8), dtype=torch.uint8, generator=g)
    generated = torch.randint(0, 256, (20, 1, 8, 8), dtype=torch.uint8, generator=g)
    generated[3] = train[17]
    generated_nn, generated_index = nearest_neighbours(generated, train)
    assert generated_nn[3] == 0.0 and generated_index[3] == 17
    # the float form of the same copy, as a model's output would be before quantisation: rounding only
    float_nn, float_index = nearest_neighbours(generated.float() / 127.5 - 1, train)
    assert float_nn[3] < 1e-6 and float_index[3] == 17
    assert memorisation_summary(float_nn, float_nn + 1)["copies"] == 1
    assert (generated_nn[torch.arange(20) != 3] > 0.5).all()  # random 64-pixel images are far apart
    test_nn, _ = nearest_neighbours(test, train)
    summary = memorisation_summary(generated_nn, test_nn)
    assert summary["copies"] == 1
    assert summary["fraction_closer"] == pytest.approx(1 / 20)  # the copy, and no fresh random image
    assert fraction_closer(generated_nn[3:4], test_nn) == 1.0


def test_fresh_draws_read_as_the_test_set_and_copies_do_not():
    train, test, fresh = gaussian_images(2000, 0), gaussian_images(1000, 1), gaussian_images(1000, 2)
    test_nn, _ = nearest_neighbours(test, train)
    fresh_summary = memorisation_summary(nearest_neighbours(fresh, train)[0], test_nn)
    assert fresh_summary["median_ratio"] == pytest.approx(1.0, abs=0.08)
    assert 0.02 < fresh_summary["fraction_closer"] < 0.09  # 0.05 expected
    near_copies = train[:1000] + 0.01 * gaussian_images(1000, 3)
    copier = memorisation_summary(nearest_neighbours(near_copies, train)[0], test_nn)
    assert copier["median_ratio"] < 0.2 and copier["fraction_closer"] > 0.9 and copier["copies"] == 0


def test_closest_pairs_are_sorted_nearest_first():
    distances, indices = torch.tensor([0.5, 0.1, 0.9, 0.3]), torch.tensor([7, 8, 9, 10])
    samples, training, d = closest_pairs(distances, indices, 2)
    assert samples.tolist() == [1, 3] and training.tolist() == [8, 10] and d.tolist() == pytest.approx([0.1, 0.3])


def test_shapes_must_agree():
    with pytest.raises(GansError, match="against"):
        nearest_neighbours(torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 5, 5))
