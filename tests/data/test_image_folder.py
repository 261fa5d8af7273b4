"""ImageFolderDataModule: a user's own folder of images, built here with PIL in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gans.data.image_folder import ImageFolderDataModule
from gans.errors import DataError

SIZES = [(37, 23), (23, 37), (50, 50), (101, 7), (8, 64)]
MODES = ["RGB", "RGBA", "L", "P", "LA"]


def noise(size: tuple[int, int], mode: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "P":
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").convert("P")
    bands = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2}[mode]
    array = rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
    return Image.fromarray(array[:, :, 0] if bands == 1 else array, mode)


def make_folder(root: Path, n: int, prefix: str = "img", seed: int = 0) -> list[Path]:
    """n noise images of odd sizes and mixed modes, png and jpg (jpg only for modes it stores)."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        mode, size = MODES[i % len(MODES)], SIZES[i % len(SIZES)]
        ext = ".jpg" if mode in ("RGB", "L") and i % 2 else ".png"
        path = root / f"{prefix}{i:03d}{ext}"
        noise(size, mode, seed + i).save(path)
        paths.append(path)
    return paths


def solid(path: Path, color, size=(37, 23), mode="RGB", **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, **save)
    return path


def module(root, **kwargs) -> ImageFolderDataModule:
    kwargs = {"image_size": 16, "batch_size": 4, "on_device": False, **kwargs}
    return ImageFolderDataModule(root=str(root), **kwargs)


def all_images(dm: ImageFolderDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.cat([dm.train_images, dm.val_images, dm.test_images])
    return images, torch.cat([dm.train_labels, dm.val_labels, dm.test_labels])


# -- loading -----------------------------------------------------------------------------------
def test_flat_folder_shapes_split_and_labels(tmp_path):
    make_folder(tmp_path / "faces", 20)
    dm = module(tmp_path / "faces")
    dm.setup("fit")
    # val_size and test_size, fractions 0.1 of 20, are two images each
    assert dm.train_images.shape == (16, 3, 16, 16) and dm.val_images.shape == dm.test_images.shape == (2, 3, 16, 16)
    assert dm.train_images.dtype == torch.uint8 and dm.train_images.is_contiguous()
    assert dm.train_labels.dtype == torch.int64 and set(all_images(dm)[1].tolist()) == {0}
    assert dm.classes == [] and dm.num_classes == 0 and dm.image_shape == (3, 16, 16)
    assert len(dm.files) == 20 and dm.files == sorted(dm.files)


def test_validation_and_test_are_disjoint_held_out_parts(tmp_path):
    # Defect 5 (issue 6): a folder has no test split, and the held-out validation images used to
    # be the test set as well, so test/fid scored the checkpoint on the images that had chosen it.
    make_folder(tmp_path, 30)
    dm = module(tmp_path, val_size=4, test_size=0.2)
    dm.setup()
    loaded = dm.load()[0]

    def positions(part: torch.Tensor) -> set[int]:  # which loaded images a part holds (noise: all distinct)
        return {next(i for i, image in enumerate(loaded) if torch.equal(image, x)) for x in part}

    train, val, test = positions(dm.train_images), positions(dm.val_images), positions(dm.test_images)
    assert (len(train), len(val), len(test)) == (20, 4, 6)
    assert not val & test and not train & (val | test) and train | val | test == set(range(30))
    assert dm.eval_fingerprint("validate").split("-")[-1] != dm.eval_fingerprint("test").split("-")[-1]
    test_ids = {i for batch in dm.test_dataloader() for i in positions(dm.test_images[batch["index"]])}
    val_ids = {i for batch in dm.val_dataloader() for i in positions(dm.val_images[batch["index"]])}
    assert test_ids == test and val_ids == val  # what the loaders evaluate on


def test_class_subfolders_give_sorted_labels(tmp_path):
    # labels follow the sorted class names, not the order of creation or the nesting depth
    for i in range(8):
        solid(tmp_path / "dogs" / f"d{i}.png", (0, 0, 255))
    for i in range(6):
        solid(tmp_path / "cats" / "indoor" / f"c{i}.jpg", (255, 0, 0), size=(23, 37))
    for i in range(6):
        solid(tmp_path / "zebras" / f"z{i}.PNG", (0, 255, 0), size=(50, 50), mode="RGB")
    dm = module(tmp_path, val_size=4)
    dm.setup()
    assert dm.classes == ["cats", "dogs", "zebras"] and dm.num_classes == 3
    images, labels = all_images(dm)
    assert len(dm.train_images) == 14 and len(dm.val_images) == 4 and len(dm.test_images) == 2
    assert torch.bincount(labels).tolist() == [6, 8, 6]
    dominant = images.float().mean((2, 3)).argmax(1)  # red, green, blue channel
    assert torch.equal(dominant, torch.tensor([0, 2, 1])[labels])


def test_channels_and_mode_conversions(tmp_path):
    solid(tmp_path / "red.png", (255, 0, 0))
    solid(tmp_path / "clear.png", (10, 20, 30, 0), mode="RGBA")  # fully transparent -> white
    solid(tmp_path / "half.png", (0, 0, 0, 128), mode="RGBA")  # black at 50% on white
    solid(tmp_path / "gray16.png", 65535, mode="I;16")  # 16-bit white, not clipped garbage
    solid(tmp_path / "gray16_mid.png", 32896, mode="I;16")  # 128 * 257
    solid(tmp_path / "cmyk.jpg", (0, 255, 255, 0), mode="CMYK")  # red
    solid(tmp_path / "gray.jpg", 200, mode="L")
    solid(tmp_path / "bilevel.png", 1, mode="1")
    palette = Image.new("P", (30, 20), 1)
    palette.putpalette([0, 0, 0, 0, 128, 255] + [0] * 762)
    palette.save(tmp_path / "palette.png")
    palette.save(tmp_path / "palette_clear.png", transparency=1)  # transparent index -> white
    expected_rgb = {
        "bilevel": (255, 255, 255),
        "clear": (255, 255, 255),
        "cmyk": (255, 0, 0),
        "gray": (200, 200, 200),
        "gray16": (255, 255, 255),
        "gray16_mid": (128, 128, 128),
        "half": (127, 127, 127),
        "palette": (0, 128, 255),
        "palette_clear": (255, 255, 255),
        "red": (255, 0, 0),
    }
    names = sorted(expected_rgb)
    rgb = module(tmp_path, val_size=1, batch_size=1)
    rgb.setup()
    assert [p.stem for p in rgb.files] == names
    images = rgb.load()[0]
    assert images.shape == (10, 3, 16, 16)
    for name, image in zip(names, images):
        got = image.float().mean((1, 2))
        assert torch.allclose(got, torch.tensor(expected_rgb[name], dtype=torch.float), atol=2.5), name

    gray = module(tmp_path, channels=1, val_size=1, batch_size=1)
    gray.setup()
    assert gray.train_images.shape[1:] == (1, 16, 16) and gray.val_images.shape[1:] == (1, 16, 16)
    luma = gray.load()[0].float().mean((1, 2, 3))
    for name, value in zip(names, luma):
        r, g, b = expected_rgb[name]
        assert abs(value - (0.299 * r + 0.587 * g + 0.114 * b)) < 2.5, name


def test_center_crop_and_stretch(tmp_path):
    stripes = np.zeros((20, 60, 3), dtype=np.uint8)  # red | green | blue thirds, 60 wide
    stripes[:, :20, 0] = stripes[:, 20:40, 1] = stripes[:, 40:, 2] = 255
    Image.fromarray(stripes).save(tmp_path / "stripes.png")
    solid(tmp_path / "other.png", (0, 0, 0))

    crop = module(tmp_path, image_size=12, val_size=1, batch_size=1).load()[0][1]
    assert crop[1].min() >= 200 and crop[0].max() <= 60 and crop[2].max() <= 60  # only the green middle

    stretch = module(tmp_path, image_size=12, resize="stretch", val_size=1, batch_size=1).load()[0][1]
    assert stretch[0, :, 1].min() >= 200 and stretch[1, :, 5:7].min() >= 200 and stretch[2, :, 10].min() >= 200


def test_exif_orientation_applied(tmp_path):
    array = np.zeros((10, 20, 3), dtype=np.uint8)  # stored landscape: top red, bottom blue
    array[:5, :, 0] = 255
    array[5:, :, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: right half red, left half blue
    Image.fromarray(array).save(tmp_path / "photo.png", exif=exif)
    solid(tmp_path / "z.png", (0, 0, 0))
    image = module(tmp_path, image_size=8, resize="stretch", val_size=1, batch_size=1).load()[0][0].float()
    assert image[0, :, 6:].min() > 200 and image[2, :, :2].min() > 200 and image[0, :, :2].max() < 50


def test_extensions_case_insensitive_recursive_and_hidden_skipped(tmp_path):
    for name in ["a.PNG", "b.JPeG", "c.jpg", "d.bmp", "e.webp", "f.tif", "deep/er/g.TIFF"]:
        solid(tmp_path / name, (1, 2, 3))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "anim.gif").write_bytes(b"GIF89a")
    (tmp_path / ".hidden.png").write_bytes(b"garbage")  # e.g. macOS ._ files
    (tmp_path / ".thumbs").mkdir()
    (tmp_path / ".thumbs" / "x.png").write_bytes(b"garbage")
    dm = module(tmp_path, val_size=1, batch_size=2)
    dm.setup()
    assert [p.relative_to(tmp_path).as_posix() for p in dm.files] == [
        "a.PNG",
        "b.JPeG",
        "c.jpg",
        "d.bmp",
        "deep/er/g.TIFF",
        "e.webp",
        "f.tif",
    ]
    assert dm.classes == []  # top-level images: flat, the subfolder is just more images
    assert len(dm.train_images) + len(dm.val_images) + len(dm.test_images) == 7


def test_val_size_count_fraction_and_deterministic(tmp_path):
    make_folder(tmp_path, 20)
    a, b = module(tmp_path, val_size=5), module(tmp_path, val_size=5, shuffle_seed=7)
    a.setup()
    b.setup()
    assert len(a.val_images) == 5 and len(a.test_images) == 2 and len(a.train_images) == 13
    assert torch.equal(a.val_images, b.val_images) and torch.equal(a.train_images, b.train_images)
    assert torch.equal(a.test_images, b.test_images)
    assert a.eval_fingerprint("validate") == b.eval_fingerprint("validate")
    c = module(tmp_path, val_size=0.25)
    c.setup()
    assert len(c.val_images) == 5 and torch.equal(c.val_images, a.val_images)
    same = module(tmp_path, val_size=3, test_size=None)  # None: as many as val_size
    same.setup()
    assert len(same.val_images) == len(same.test_images) == 3
    tiny = module(tmp_path, val_size=0.01)  # rounds to 0, but at least one image is held out
    tiny.setup()
    assert len(tiny.val_images) == 1


def test_train_dataloader_batches(tmp_path):
    make_folder(tmp_path / "a", 9, prefix="a")
    make_folder(tmp_path / "b", 11, prefix="b", seed=100)
    dm = module(tmp_path, image_size=24, val_size=0.1, batch_size=4)
    dm.setup("fit")
    assert dm.trainer is None and dm.steps_per_epoch() == 4
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(batches) == 4 == len(loader)
    for batch in batches:
        assert set(batch) == {"image", "label", "index"}
        image = batch["image"]
        assert image.shape == (4, 3, 24, 24) and image.dtype == torch.float32
        assert image.min() >= -1 and image.max() <= 1 and image.min() < -0.9 and image.max() > 0.9
        assert batch["label"].dtype == torch.int64 and set(batch["label"].tolist()) <= {0, 1}
        assert torch.equal(batch["label"], dm.train_labels[batch["index"]])
    indices = torch.cat([b["index"] for b in batches])
    assert len(set(indices.tolist())) == 16
    val = list(dm.val_dataloader())
    assert sum(len(b["image"]) for b in val) == 2 and val[0]["image"].shape[1:] == (3, 24, 24)


def test_loading_is_deterministic(tmp_path):
    make_folder(tmp_path, 30)
    first, second = module(tmp_path).load(), module(tmp_path).load()
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_yaml_config_composes(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue

    from gans.config import register_resolvers

    register_resolvers()
    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        missing = compose("config", overrides=["data=image_folder"])
        with pytest.raises(MissingMandatoryValue):
            _ = missing.data.root
        cfg = compose("config", overrides=["data=image_folder", f"data.root={tmp_path}"])
    assert OmegaConf.to_container(cfg.data, resolve=True)["val_size"] == 0.1
    dm = instantiate(cfg.data)
    assert isinstance(dm, ImageFolderDataModule)
    assert (dm.image_size, dm.channels, dm.resize, dm.batch_size) == (64, 3, "center_crop", 64)
    assert (dm.val_size, dm.test_size) == (0.1, 0.1)
    assert dm.shuffle_seed == cfg.seed and dm.root == tmp_path


# -- errors: one line naming the path and the fix -------------------------------------------------
def check_error(dm: ImageFolderDataModule, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        dm.setup()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def test_missing_root(tmp_path):
    check_error(module(tmp_path / "nope"), f"data.root={tmp_path / 'nope'} does not exist", "point data.root")


def test_root_is_a_file(tmp_path):
    path = solid(tmp_path / "one.png", (0, 0, 0))
    check_error(module(path), str(path), "not a folder")


def test_empty_folder_lists_extensions(tmp_path):
    check_error(module(tmp_path), str(tmp_path), "no images", ".png", ".jpg", ".webp", ".tiff")
    (tmp_path / "anim.gif").write_bytes(b"GIF89a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.txt").write_text("hi")
    check_error(module(tmp_path), str(tmp_path), "2 other files", ".gif", ".txt")


def test_corrupt_png_named(tmp_path):
    make_folder(tmp_path, 10)
    bad = tmp_path / "img004.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    check_error(module(tmp_path, val_size=1), f"cannot read image {bad}", "delete or replace")


def test_non_image_with_image_extension_named(tmp_path):
    make_folder(tmp_path, 10)
    bad = tmp_path / "notes.jpg"
    bad.write_text("these are my notes, not a photo\n")
    message = check_error(module(tmp_path, val_size=1), str(bad), "delete or replace")
    assert "more images" not in message


def test_truncated_image_and_count_of_others(tmp_path):
    make_folder(tmp_path, 10)
    big = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "a_cut.png")
    (tmp_path / "a_cut.png").write_bytes((tmp_path / "a_cut.png").read_bytes()[:2000])
    (tmp_path / "b_empty.webp").write_bytes(b"")
    check_error(module(tmp_path, val_size=1), str(tmp_path / "a_cut.png"), "1 more images are unreadable")


@pytest.mark.parametrize(
    ("n", "kwargs"),
    [(3, {"val_size": 1}), (5, {"val_size": 0.5}), (5, {"val_size": 5}), (6, {"val_size": 0, "batch_size": 1})],
)
def test_too_few_images(tmp_path, n, kwargs):
    make_folder(tmp_path, n)
    check_error(module(tmp_path, **kwargs), f"data.root={tmp_path} has {n} images", "data.batch_size")


def test_bad_settings():
    with pytest.raises(DataError, match="data.resize=squash"):
        ImageFolderDataModule(root="x", resize="squash")
    with pytest.raises(DataError, match="data.channels=4"):
        ImageFolderDataModule(root="x", channels=4)
    with pytest.raises(DataError, match="data.val_size=1.5"):
        ImageFolderDataModule(root="x", val_size=1.5).check_sizes(10)
    with pytest.raises(DataError, match="data.test_size=-3"):
        ImageFolderDataModule(root="x", test_size=-3).check_sizes(10)
