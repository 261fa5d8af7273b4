"""The offline Fashion-MNIST edges <-> items sets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gans.data.base import to_float
from gans.data.fashion_edges import FashionEdgesDataModule, FashionEdgesUnpairedDataModule, edge_map
from gans.data.fashion_mnist import read_idx

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_edge_map_is_integer_sobel():
    image = torch.zeros(1, 1, 6, 6, dtype=torch.uint8)
    image[..., :, 3:] = 100  # a vertical step of 100: Sobel magnitude 400 beside it, 0 elsewhere
    edges = edge_map(image)
    assert edges.dtype == torch.uint8 and set(edges.unique().tolist()) == {0, 255}
    assert (edges[0, 0] == 0).nonzero()[:, 1].unique().tolist() == [2, 3]
    assert edge_map(image, threshold=400).unique().tolist() == [255]  # strictly above the threshold
    rgb = image.expand(-1, 3, -1, -1)
    assert torch.equal(edge_map(rgb), edges)


@pytest.fixture(scope="module")
def fashion_edges(tmp_path_factory) -> FashionEdgesDataModule:
    root = tmp_path_factory.mktemp("fm")
    dm = FashionEdgesDataModule(root=str(root), download=False, train_size=300, val_size=40, max_eval_samples=30)
    dm.on_device = False
    dm.setup("fit")
    return dm


def test_fashion_edges_pairs(fashion_edges):
    dm = fashion_edges
    assert dm.train_a.shape == dm.train_b.shape == (300, 1, 32, 32) and dm.train_a.dtype == torch.uint8
    assert torch.equal(dm.train_a, edge_map(dm.train_b))  # A is a function of B
    assert dm.aligned_eval and FashionEdgesUnpairedDataModule.aligned_eval
    assert dm.eval_size("validate") == dm.eval_size("test") == 30
    assert len(dm.eval_sets["validate"][0]) == 40 and len(dm.eval_sets["test"][0]) == 10000
    for stage in ("validate", "test"):
        a, b = dm.eval_images(stage)
        assert torch.equal(a, edge_map(b))  # evaluation batches are true pairs
    items = torch.from_numpy(read_idx(Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"))[:30].copy())
    resized = torch.nn.functional.interpolate(items[:, None].float(), size=(32, 32), mode="bilinear", antialias=True)
    assert torch.equal(dm.eval_images("test")[1], resized.round().clamp(0, 255).to(torch.uint8))  # B: the items
    edge_share = (dm.train_a == 0).float().mean()
    assert 0.05 < edge_share < 0.4  # outlines, neither empty nor solid
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"A", "B", "index"} and batch["A"].shape == (64, 1, 32, 32)
    assert torch.equal(batch["A"], to_float(dm.train_a[batch["index"]]))
    assert torch.equal(batch["B"], to_float(dm.train_b[batch["index"]]))
    assert dm.steps_per_epoch() == 300 // 64


def test_fashion_edges_deterministic_and_unpaired_halves_disjoint(fashion_edges, tmp_path):
    kwargs = {"root": str(tmp_path), "download": False, "train_size": 300, "val_size": 40, "on_device": False}
    dm = FashionEdgesUnpairedDataModule(max_eval_samples=30, **kwargs)
    dm.setup("fit")
    index_a, index_b = dm.train_indices
    assert len(index_a) == len(index_b) == 150 and not set(index_a.tolist()) & set(index_b.tolist())
    assert sorted(index_a.tolist() + index_b.tolist()) == list(range(300))
    # the same items as the paired module's (same split), divided: edges of one half, items of the other
    assert torch.equal(dm.train_a, fashion_edges.train_a[index_a]) and torch.equal(
        dm.train_b, fashion_edges.train_b[index_b]
    )
    assert dm.eval_fingerprint("test") == fashion_edges.eval_fingerprint("test")  # same evaluation pairs
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"A", "B", "index", "index_B"} and batch["A"].shape == (16, 1, 32, 32)
    assert dm.steps_per_epoch() == 150 // 16
    jittered = FashionEdgesDataModule(jitter=True, channels=3, max_eval_samples=30, **kwargs)
    jittered.setup()
    assert jittered.train_a.shape == (300, 3, 36, 36) and jittered.eval_images("test")[0].shape == (30, 3, 32, 32)
    assert torch.equal(jittered.train_a[:, :1], edge_map(jittered.train_b[:, :1]))
    batch = next(iter(jittered.train_dataloader()))
    assert batch["A"].shape == (64, 3, 32, 32) and batch["B"].shape == (64, 3, 32, 32)
