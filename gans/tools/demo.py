"""`python -m gans.demo ckpt_path=RUN_DIR/checkpoints/last.ckpt`: a Gradio app for a trained model.

What the app shows follows the model (the lecture's demos of what each family does):

- unconditional generators (DCGAN, WGAN, WGAN-GP, ProGAN, VAE, AE): sliders that walk the latent
  space: two seeds give two latents z_A and z_B, `t` moves along the line between them (the
  interpolation the sample grids show, Radford et al. 2016 sec. 6.1), and a few sliders nudge
  single coordinates of z; a strip shows the whole interpolation from A to B;
- class-conditional generators (CGAN, ProGAN with labels): the same with a class picker;
- Pix2pix (Isola et al. 2017): a sketch pad whose drawing is translated as it changes (the
  edges-to-image demo of the lecture and of the paper's "edges2cats");
- CycleGAN (Zhu et al. 2017): an uploaded image translated in either direction;
- SRResNet and SRGAN (Ledig et al. 2017): an uploaded image upscaled, beside its bicubic upscale.

The model is rebuilt from the run's config next to the checkpoint (`gans.checkpoint.load_model`,
`torch.load(weights_only=True)` unless `unsafe_load=true`). The app listens on 127.0.0.1 only
(`host=0.0.0.0` serves the network), never opens a public share link, sends no analytics, and
loads nothing from the internet: Gradio serves its scripts and fonts itself.

    python -m gans.demo ckpt_path=outputs/dcgan-fashion_mnist/.../checkpoints/last.ckpt [port=7860]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Before Gradio is imported: it reads this once, for its usage statistics and its version check.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class
from omegaconf import DictConfig
from PIL import Image

from gans.checkpoint import load_model, require_checkpoint, run_config
from gans.data.base import to_float, to_uint8
from gans.errors import GansError

# Small images (28x28 Fashion-MNIST) are shown at least this large, pixels kept sharp.
DISPLAY_SIDE = 256
STRIP_STEPS = 8
SKETCH_SIDE = 256
NUDGED_COORDINATES = 3
# CPU-sized super-resolution inputs: a larger upload is shrunk to this longest side first.
MAX_UPSCALE_INPUT = 256
OPTIONS = {"ckpt_path": None, "host": "127.0.0.1", "port": "7860", "device": None, "unsafe_load": "false"}


# -- images ---------------------------------------------------------------------------------------
def to_pil(image: torch.Tensor, side: int = DISPLAY_SIDE) -> Image.Image:
    """One image in [-1, 1] (C, H, W) as a PIL image, enlarged (nearest) to at least `side` pixels."""
    array = to_uint8(image).permute(1, 2, 0).cpu().numpy()
    pil = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    factor = max(1, -(-side // max(pil.size)))
    return pil.resize((pil.width * factor, pil.height * factor), Image.NEAREST) if factor > 1 else pil


def strip(images: torch.Tensor, side: int = DISPLAY_SIDE // 2) -> Image.Image:
    """Images in [-1, 1] (N, C, H, W) side by side, each enlarged to `side`."""
    tiles = [to_pil(image, side) for image in images]
    out = Image.new(tiles[0].mode, (sum(t.width for t in tiles), tiles[0].height))
    for i, tile in enumerate(tiles):
        out.paste(tile, (i * tile.width, 0))
    return out


def from_pil(image: Image.Image, channels: int, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A PIL image (transparent parts on white) as a (1, C, H, W) tensor in [-1, 1], resized
    (antialiased) to `size` (width, height) when given."""
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    image = image.convert("L" if channels == 1 else "RGB")
    if size is not None and image.size != size:
        image = image.resize(size, Image.BILINEAR, reducing_gap=None)
    array = np.asarray(image)
    array = array[..., None] if array.ndim == 2 else array
    return to_float(torch.from_numpy(array.copy()).permute(2, 0, 1)[None])


# -- what each kind of model offers ---------------------------------------------------------------
@dataclass
class LatentWalk:
    """Latents from seeds, interpolated and nudged; a class for class-conditional models."""

    model: torch.nn.Module
    class_names: list[str]

    def latent(self, seed: int) -> torch.Tensor:
        return self.model.draw_latent(1, torch.Generator().manual_seed(int(seed)), "cpu")

    def condition(self, label: int | None, n: int) -> torch.Tensor | None:
        return None if not self.class_names else torch.full((n,), int(label or 0), dtype=torch.int64)

    def render(self, seed_a: int, seed_b: int, t: float, label: int | None, *nudges: float):
        """(the image at z = (1 - t) z_A + t z_B + nudges, the strip from z_A to z_B)."""
        z_a, z_b = self.latent(seed_a), self.latent(seed_b)
        z = torch.lerp(z_a, z_b, float(t))
        z[0, : len(nudges)] += torch.tensor(nudges, dtype=z.dtype)
        image = self.model.generate_from(z, self.condition(label, 1))[0]
        path = torch.lerp(z_a, z_b, torch.linspace(0, 1, STRIP_STEPS).view(-1, 1))
        return to_pil(image), strip(self.model.generate_from(path, self.condition(label, STRIP_STEPS)))


@dataclass
class SketchTranslation:
    """Pix2pix: a drawing (black strokes on white, as its edge maps are) translated."""

    model: torch.nn.Module
    channels: int
    image_size: int

    def render(self, sketch) -> Image.Image | None:
        drawing = composite(sketch)
        if drawing is None:
            return None
        inputs = from_pil(drawing, self.channels, (self.image_size, self.image_size)).to(self.model.device)
        return to_pil(self.model.translate_each(inputs)[0])


@dataclass
class UploadTranslation:
    """CycleGAN: an uploaded image through G (A2B) or F (B2A)."""

    model: torch.nn.Module
    channels: int
    image_size: int

    def render(self, image: Image.Image | None, direction: str) -> Image.Image | None:
        if image is None:
            return None
        inputs = from_pil(image, self.channels, (self.image_size, self.image_size))
        return to_pil(self.model.translate(self.model.sampler[direction], inputs)[0])


@dataclass
class Upscaling:
    """SRResNet/SRGAN: an uploaded image upscaled by the model and, for comparison, bicubically."""

    model: torch.nn.Module
    channels: int

    def render(self, image: Image.Image | None):
        if image is None:
            return None, None
        image = image.convert("RGB")
        image.thumbnail((MAX_UPSCALE_INPUT, MAX_UPSCALE_INPUT), Image.BICUBIC)
        sr = self.model.upscale(from_pil(image, self.channels))[0]
        bicubic = image.resize((sr.shape[2], sr.shape[1]), Image.BICUBIC)
        return to_pil(sr, side=0), bicubic


def composite(sketch) -> Image.Image | None:
    """The drawing of a Gradio sketch pad value (its layers flattened on the background)."""
    if sketch is None:
        return None
    if isinstance(sketch, dict):
        sketch = sketch.get("composite")
    if sketch is None:
        return None
    return sketch if isinstance(sketch, Image.Image) else Image.fromarray(np.asarray(sketch))


def class_names(cfg: DictConfig, num_classes: int) -> list[str]:
    """The data module's class names (Fashion-MNIST's "T-shirt/top", ...), else the indices."""
    try:
        names = list(getattr(get_class(cfg.data._target_), "class_names", ()) or ())
    except (ImportError, AttributeError):  # a data module that no longer imports: its indices will do
        names = []
    return names if len(names) == num_classes else [str(k) for k in range(num_classes)]


def demo_of(model, cfg: DictConfig):
    """The demo that fits the model, or a one-line error for models without one."""
    from gans.models.cyclegan import CycleGAN
    from gans.models.pix2pix import Pix2Pix
    from gans.models.srresnet import SuperResolution

    channels, size = int(cfg.data.get("channels", 3)), int(cfg.data.get("image_size", 0) or 0)
    if isinstance(model, SuperResolution):
        return Upscaling(model, channels)
    if isinstance(model, Pix2Pix):
        return SketchTranslation(model, channels, size)
    if isinstance(model, CycleGAN):
        return UploadTranslation(model, channels, size)
    if getattr(model, "latent_dim", None):
        condition = model.sample_condition(1)
        if condition is None:
            return LatentWalk(model, [])
        num_classes = int(getattr(model, "num_classes", 0) or 0)
        if condition.dtype == torch.int64 and num_classes:
            return LatentWalk(model, class_names(cfg, num_classes))
    raise GansError(f"python -m gans.demo has no app for {type(model).__name__}'s inputs yet")


# -- the app --------------------------------------------------------------------------------------
def build_app(demo, title: str):
    """The Gradio Blocks of a demo; every control re-renders the output when it changes."""
    import gradio as gr

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"### {title}")
        if isinstance(demo, LatentWalk):
            _latent_controls(gr, demo)
        elif isinstance(demo, SketchTranslation):
            gr.Markdown("Pick the brush (left of the pad) and draw an outline; it is translated as you draw.")
            with gr.Row():
                # A stroke as wide as one pixel of the model's input: the edge maps' lines are 1 px.
                brush = gr.Brush(colors=["#000000"], default_size=max(2, SKETCH_SIDE // demo.image_size),
                                 color_mode="fixed")  # fmt: skip
                pad = gr.Sketchpad(label="draw (black on white), or upload an edge map", type="pil", image_mode="RGBA",
                                   brush=brush, sources=["upload", "clipboard"],
                                   canvas_size=(SKETCH_SIDE, SKETCH_SIDE), elem_id="sketch")  # fmt: skip
                output = shown(gr, "Pix2pix")
            # A stroke sends a change per pointer move; only the latest drawing is worth translating.
            pad.change(demo.render, pad, output, show_progress="hidden", trigger_mode="always_last")
        elif isinstance(demo, UploadTranslation):
            with gr.Row():
                image = gr.Image(label="input", type="pil", sources=["upload", "clipboard"])
                direction = gr.Radio(["A2B", "B2A"], value="A2B", label="direction")
                output = shown(gr, "translation")
            _on_change([image, direction], demo.render, [output])
        else:
            with gr.Row():
                image = gr.Image(label="low resolution", type="pil", sources=["upload", "clipboard"])
                output = shown(gr, f"x{demo.model.scale} {title}")
                bicubic = shown(gr, "bicubic", "bicubic")
            image.change(demo.render, image, [output, bicubic], trigger_mode="always_last")
    return app


def _latent_controls(gr, demo: LatentWalk) -> None:
    with gr.Row():
        with gr.Column():
            seed_a = gr.Slider(0, 9999, value=0, step=1, label="seed of z_A", elem_id="seed_a")
            seed_b = gr.Slider(0, 9999, value=1, step=1, label="seed of z_B", elem_id="seed_b")
            t = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="t: z = (1 - t) z_A + t z_B", elem_id="t")
            label = gr.Dropdown(
                [(name, k) for k, name in enumerate(demo.class_names)] or [("-", 0)], value=0, label="class",
                visible=bool(demo.class_names), elem_id="label",
            )  # fmt: skip
            nudges = [
                gr.Slider(-3.0, 3.0, value=0.0, step=0.1, label=f"z[{k}] +", elem_id=f"nudge_{k}")
                for k in range(min(NUDGED_COORDINATES, demo.model.latent_dim))
            ]
        first, first_path = demo.render(0, 1, 0.0, 0, *(0.0 for _ in nudges))  # shown before any control moves
        output = shown(gr, "G(z)", value=first)
    path = shown(gr, "z_A to z_B", "strip", first_path)
    _on_change([seed_a, seed_b, t, label, *nudges], demo.render, [output, path])


def shown(gr, label: str, elem_id: str = "output", value: Image.Image | None = None):
    """An output image. No "share" button: it would post the image to Hugging Face."""
    return gr.Image(
        value, label=label, type="pil", elem_id=elem_id, interactive=False, buttons=["download", "fullscreen"]
    )


def _on_change(inputs: list, fn: Callable, outputs: list) -> None:
    for component in inputs:
        component.change(fn, inputs, outputs, show_progress="hidden", trigger_mode="always_last")


# -- command line ---------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> dict[str, str | None]:
    """key=value arguments, as run.py takes them."""
    options = dict(OPTIONS)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in OPTIONS:
            raise GansError(f"unknown argument {arg!r}: pass {' '.join(f'{k}=...' for k in OPTIONS)}")
        options[key] = value
    return options


def run_name(checkpoint: Path) -> str:
    """The run dir and its parent (`dcgan-fashion_mnist/2025-01-31_12-00-00`, `<sweep>/3`)."""
    run_dir = Path(checkpoint).resolve().parent.parent
    return f"{run_dir.parent.name}/{run_dir.name}"


def load(options: dict[str, str | None]):
    """(model, demo, title) of the checkpoint named by the options."""
    checkpoint = require_checkpoint(options["ckpt_path"], "demo")
    device = options["device"] or ("cuda" if torch.cuda.is_available() else "cpu")
    weights_only = options["unsafe_load"].lower() not in ("true", "1", "yes")
    try:
        model = load_model(checkpoint, device, weights_only=weights_only)
    except InstantiationException as err:  # a run of older code whose config no longer builds
        cause = err.__cause__ or err
        raise GansError(f"{checkpoint}: its run's model config does not build with this code: {cause}") from None
    cfg = run_config(checkpoint)
    return model, demo_of(model, cfg), f"{type(model).__name__}: {run_name(checkpoint)}"


def serve(argv: list[str], block: bool = True):
    """Load the checkpoint the arguments name and serve its app (until interrupted when `block`,
    else in a background thread); returns the Gradio app."""
    options = parse_args(argv)
    if not options["port"].isdigit():
        raise GansError(f"port={options['port']} is not a port number")
    _, demo, title = load(options)
    app = build_app(demo, title)
    # share=False: no public link through Gradio's relay; ssr_mode=False: no Node.js server beside
    # Python; footer_links=[]: no links to Gradio's site or the API page.
    host, port = options["host"], int(options["port"])
    try:
        app.launch(server_name=host, server_port=port, share=False, ssr_mode=False, footer_links=[], quiet=True,
                   prevent_thread_lock=True)  # fmt: skip
    except OSError as err:  # Gradio's "Cannot find empty port in range: 7860-7860"
        raise GansError(f"cannot serve on {host}:{port} ({str(err).splitlines()[0]}): pass another port=...") from None
    print(f"{title}: open http://{host}:{port} in a browser{' (Ctrl+C stops)' if block else ''}", flush=True)
    if block:
        app.block_thread()
    return app


def main(argv: list[str] | None = None) -> int:
    try:
        serve(sys.argv[1:] if argv is None else argv)
    except GansError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
