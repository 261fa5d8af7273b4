"""`python -m gans.demo`: which app each model gets, and that its controls change what it shows
(in-process, no server; tests/tools/test_demo_browser.py drives the app in Chromium)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict
from PIL import Image, ImageDraw

from gans.config import register_resolvers
from gans.errors import GansError
from gans.tools import demo as demo_tool

ROOT = Path(__file__).resolve().parents[2]
# Tiny versions of each kind of model (widths of a few channels, 16x16 images).
TINY = {
    "toy_mmd": ["data.image_size=16"],
    "toy_cgan": ["data.image_size=16"],
    "pix2pix": ["data.image_size=16", "model.generator.width=4", "model.discriminator.width=4"],
    "cyclegan": ["data.image_size=16", "model.generator.modules.A2B.width=4", "model.generator.modules.B2A.width=4",
                 "model.discriminator.modules.A.width=4", "model.discriminator.modules.B.width=4"],
    "srresnet": ["model.generator.blocks=1", "model.generator.width=8"],
}  # fmt: skip


def tiny_run(run_dir: Path, model: str, num_classes: int = 10) -> Path:
    """A run dir as run.py writes it (`.hydra/config.yaml`, `checkpoints/last.ckpt`) of a freshly
    initialised tiny model: a checkpoint in seconds, with no training."""
    register_resolvers()
    overrides = [f"hydra.searchpath=[file://{ROOT}/tests/conf]", f"model={model}", *TINY[model]]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    with open_dict(cfg):
        cfg.data.num_classes = num_classes
    torch.manual_seed(0)
    net = instantiate(cfg.model)
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    state = {"state_dict": net.state_dict(), "hyper_parameters": {"num_classes": num_classes}}
    torch.save(state, run_dir / "checkpoints" / "last.ckpt")
    return run_dir / "checkpoints" / "last.ckpt"


def load(tmp_path: Path, model: str):
    _, demo, title = demo_tool.load(demo_tool.parse_args([f"ckpt_path={tiny_run(tmp_path / model, model)}"]))
    return demo, title


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_latent_walk_moves_along_the_line_between_two_seeds_and_nudges_coordinates(tmp_path):
    demo, title = load(tmp_path, "toy_mmd")
    assert isinstance(demo, demo_tool.LatentWalk) and demo.class_names == []
    assert title == f"MomentMatchingModel: {tmp_path.name}/toy_mmd"  # the model and its run dir
    start, path = demo.render(0, 1, 0.0, None, 0.0, 0.0, 0.0)
    end, _ = demo.render(0, 1, 1.0, None, 0.0, 0.0, 0.0)
    assert start.size == (256, 256) and path.size == (8 * 128, 128)  # 16x16 shown enlarged, sharp
    # t=0 is z_A, t=1 is z_B: the two ends of the strip.
    assert np.array_equal(pixels(start.resize((128, 128), Image.NEAREST)), pixels(path.crop((0, 0, 128, 128))))
    assert np.array_equal(pixels(end.resize((128, 128), Image.NEAREST)), pixels(path.crop((7 * 128, 0, 8 * 128, 128))))
    assert not np.array_equal(pixels(start), pixels(end))
    nudged, _ = demo.render(0, 1, 0.0, None, 3.0, 0.0, 0.0)
    assert not np.array_equal(pixels(start), pixels(nudged))
    again, _ = demo.render(0, 1, 0.0, None, 0.0, 0.0, 0.0)
    assert np.array_equal(pixels(start), pixels(again))  # a seed is a latent: the same image every time


def test_class_conditional_models_get_a_class_picker_that_changes_the_image(tmp_path):
    demo, _ = load(tmp_path, "toy_cgan")
    # tests/conf's toy runs on Fashion-MNIST: its class names label the picker.
    assert demo.class_names[:2] == ["T-shirt/top", "Trouser"] and len(demo.class_names) == 10
    images = [pixels(demo.render(0, 1, 0.0, label, 0.0, 0.0, 0.0)[0]) for label in (0, 1, 0)]
    assert not np.array_equal(images[0], images[1]) and np.array_equal(images[0], images[2])


def test_pix2pix_translates_the_sketch_pad_drawing(tmp_path):
    demo, _ = load(tmp_path, "pix2pix")
    assert isinstance(demo, demo_tool.SketchTranslation) and (demo.channels, demo.image_size) == (1, 16)
    assert demo.render(None) is None and demo.render({"background": None, "layers": [], "composite": None}) is None
    blank = Image.new("RGBA", (256, 256), (0, 0, 0, 0))  # the pad's transparent canvas: white paper
    drawn = blank.copy()
    ImageDraw.Draw(drawn).line([(30, 30), (220, 200)], fill=(0, 0, 0, 255), width=12)
    outputs = [demo.render({"composite": np.asarray(image)}) for image in (blank, drawn)]
    assert outputs[0].size == (256, 256)
    assert not np.array_equal(pixels(outputs[0]), pixels(outputs[1]))


def test_cyclegan_translates_an_upload_both_ways_and_srresnet_upscales_it(tmp_path):
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8))
    cyclegan, _ = load(tmp_path, "cyclegan")
    a2b, b2a = cyclegan.render(photo, "A2B"), cyclegan.render(photo, "B2A")
    assert a2b.size == (256, 256) and not np.array_equal(pixels(a2b), pixels(b2a))
    assert cyclegan.render(None, "A2B") is None
    srresnet, _ = load(tmp_path, "srresnet")
    sr, bicubic = srresnet.render(photo)
    assert sr.size == bicubic.size == (30 * 4, 40 * 4)


def test_bad_arguments_and_models_without_a_demo_are_one_line_errors(tmp_path, capsys):
    assert demo_tool.main(["ckpt=x"]) == 1
    assert "unknown argument 'ckpt=x': pass ckpt_path=..." in capsys.readouterr().err
    assert demo_tool.main([f"ckpt_path={tmp_path / 'missing.ckpt'}"]) == 1
    assert "does not exist" in capsys.readouterr().err
    checkpoint = tiny_run(tmp_path / "old", "toy_mmd")
    config = checkpoint.parent.parent / ".hydra" / "config.yaml"
    cfg = OmegaConf.load(config)
    cfg.model.label_smoothing = 0.1  # a run of older code, with an argument the model has lost
    OmegaConf.save(cfg, config)
    assert demo_tool.main([f"ckpt_path={checkpoint}"]) == 1
    assert capsys.readouterr().err.endswith(
        "does not build with this code: GenerativeModule.__init__() got an unexpected keyword argument "
        "'label_smoothing'\n"
    )
    with pytest.raises(GansError, match="has no app for Identity"):
        demo_tool.demo_of(torch.nn.Identity(), OmegaConf.create({"data": {}}))
