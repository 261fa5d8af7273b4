"""The GANs' friends side by side on Fashion-MNIST: reconstruction error against the PCA baseline,
sharpness, and nearest-training-image distances of samples against those of real test images.

For N samples (the models' evaluation latents by default) of each checkpoint given: sharpness
(`gans.metrics.sharpness`) and the memorisation summary (`gans.metrics.memorisation`) against the
55,000 training images; for an AE or VAE also the reconstructions of the first N test images,
their MSE per pixel on the [0, 1] scale and their sharpness; the PCA baseline (`gans.metrics.pca`)
with as many components as the AE's code, fitted on the training images, on the same N test
images. Writes the numbers as JSON and one labelled figure.

    python experiments/friends.py --ae AE_RUN/checkpoints/last.ckpt --vae VAE_RUN/checkpoints/last.ckpt \
        --dcgan DCGAN_RUN/checkpoints/last.ckpt [--samples 1000] [--out experiments/friends.json] \
        [--figure experiments/figures/issue8-friends.png]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from gans.callbacks.samples import label_rows
from gans.checkpoint import load_model
from gans.data.base import to_float, to_uint8, to_unit
from gans.data.fashion_mnist import FashionMNISTDataModule
from gans.errors import GansError
from gans.metrics.memorisation import closest_pairs, memorisation_summary, nearest_neighbours
from gans.metrics.pca import PCABaseline
from gans.metrics.sharpness import sharpness

MODELS = ("ae", "vae", "dcgan")
CHUNK = 250


@torch.no_grad()
def draw_samples(model, n: int, seed: int) -> Tensor:
    """n samples as uint8, quantised as evaluation does, from seeded latents."""
    z = model.draw_latent(n, torch.Generator().manual_seed(seed), "cpu")
    return torch.cat([to_uint8(model.generate_from(chunk)).cpu() for chunk in z.split(CHUNK)])


@torch.no_grad()
def reconstruct(model, images: Tensor) -> Tensor:
    """The model's reconstructions (float, [-1, 1]) of uint8 images."""
    return torch.cat([model.reconstruct(to_float(chunk)).float().cpu() for chunk in images.split(CHUNK)])


def unit_mse(reconstructions: Tensor, images: Tensor) -> float:
    """MSE per pixel on the [0, 1] scale (the AE's `val/mse` and `PCABaseline.mse` convention)."""
    return float((to_unit(reconstructions, torch.float64) - to_unit(images, torch.float64)).square().mean())


def code_size(models: dict, requested: int | None) -> int | None:
    """PCA components: as requested, else the AE's code size, else the VAE's, else None (no baseline)."""
    if requested is not None:
        return requested
    for name in ("ae", "vae"):
        if name in models and getattr(models[name], "code_dim", None) is not None:
            return int(models[name].code_dim)
    return None


def evaluate(models: dict, train: Tensor, test: Tensor, n: int, pca_components: int | None, seed: int | None,
             columns: int = 8) -> tuple[dict, list[tuple[str, Tensor]]]:  # fmt: skip
    """The numbers and the figure's rows (name, images) for `models` ({name: model}), the uint8
    training images and the first n uint8 test images."""
    test = test[:n]
    test_nn, _ = nearest_neighbours(test, train)
    results = {"samples": n, "training_images": len(train),
               "real_test": {"sharpness": sharpness(test), "median_nn": float(test_nn.median())},
               "pca": None, "models": {}}  # fmt: skip
    rows, reconstruction_rows = [], [("test input", to_float(test[:columns]))]
    k = code_size(models, pca_components)
    if k is not None:
        pca = PCABaseline(k).fit(train)
        pca_images = pca.reconstruct(test)
        results["pca"] = {"components": k, "test_mse": pca.mse(test), "sharpness": sharpness(to_uint8(pca_images))}
        reconstruction_rows.append((f"PCA, {k} components", pca_images[:columns].clamp(-1, 1)))
    for name, model in models.items():
        model_seed = seed if seed is not None else model.sample_seed + 1  # the base's evaluation latents
        samples = draw_samples(model, n, model_seed)
        distances, indices = nearest_neighbours(samples, train)
        entry = {"seed": model_seed, "prior": getattr(model, "prior", None),
                 "samples": {"sharpness": sharpness(samples), **memorisation_summary(distances, test_nn)}}  # fmt: skip
        near, their_train, _ = closest_pairs(distances, indices, columns)
        rows += [(f"{name} samples", to_float(samples[:columns])), ("nearest training", to_float(train[indices[:columns]])),
                 (f"{name} closest", to_float(samples[near])), ("its training image", to_float(train[their_train]))]  # fmt: skip
        if hasattr(model, "reconstruct") and not getattr(model, "samples_only", False):
            images = reconstruct(model, test)
            entry["reconstructions"] = {"test_mse": unit_mse(images, test), "sharpness": sharpness(to_uint8(images))}
            reconstruction_rows.append((f"{name} reconstruction", images[:columns]))
        results["models"][name] = entry
    return results, rows + (reconstruction_rows if len(reconstruction_rows) > 1 else [])


def with_prior(model, prior: str):
    """The same networks (a shallow copy) sampling from another prior."""
    other = copy.copy(model)
    other.prior, other.samples_only = prior, True  # its reconstructions are the model's
    return other


def figure(rows: list[tuple[str, Tensor]], columns: int, scale: int = 2) -> Tensor:
    """One grid, a row per (name, images in [-1, 1]), the names in a margin; images enlarged
    `scale` times (nearest), so 28x28 ones stand beside the margin's text."""
    images = torch.cat([images[:columns] for _, images in rows]).float()
    images = images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    grid = make_grid(images, nrow=columns, normalize=True, value_range=(-1, 1), pad_value=1.0)
    return label_rows(grid, [name for name, _ in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in MODELS:
        parser.add_argument(f"--{name}", type=Path, help=f"a {name.upper()} checkpoint (RUN_DIR/checkpoints/*.ckpt)")
    parser.add_argument("--samples", type=int, default=1000, help="samples per model, and test images")
    parser.add_argument("--pca-components", type=int, default=None, help="default: the AE's (else VAE's) code size")
    parser.add_argument("--seed", type=int, default=None, help="latent seed; default: each model's evaluation latents")
    parser.add_argument("--columns", type=int, default=8, help="images per figure row")
    parser.add_argument("--out", type=Path, default=Path("experiments/friends.json"))
    parser.add_argument("--figure", type=Path, default=Path("experiments/figures/issue8-friends.png"))
    args = parser.parse_args(argv)
    try:
        checkpoints = {name: getattr(args, name) for name in MODELS if getattr(args, name) is not None}
        if not checkpoints:
            raise GansError("pass at least one checkpoint: --ae, --vae or --dcgan")
        for path in checkpoints.values():
            if not path.is_file():
                raise GansError(f"{path} does not exist: pass a .ckpt written by run.py")
        models = {name: load_model(path) for name, path in checkpoints.items()}
        if "vae" in models and models["vae"].prior == "expost":
            models["vae_normal"] = with_prior(models["vae"], "normal")  # the VAE's own prior beside the mixture
        data = FashionMNISTDataModule(on_device=False)
        data.setup("fit")
        data.setup("test")
        results, rows = evaluate(models, data.train_images, data.test_images, args.samples, args.pca_components,
                                 args.seed, args.columns)  # fmt: skip
    except GansError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name, path in checkpoints.items():
        results["models"][name]["checkpoint"] = str(path)
        if name == "vae" and "vae_normal" in results["models"]:
            results["models"]["vae_normal"]["checkpoint"] = str(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
        results["models"][name]["iteration"] = int(state.get("progress", {}).get("iteration", -1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    save_image(figure(rows, args.columns), args.figure)
    print(json.dumps(results, indent=2))
    print(f"wrote {args.out} and {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
