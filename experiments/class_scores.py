"""Class-aware scores of trained checkpoints on Fashion-MNIST's test set, for the records: the
real data's classifier (`gans.metrics.classifier`, cached) judges N generated images; class
accuracy against the requested labels for class-conditional models (generated image i takes
test image i's label), class coverage and the class histogram for unconditional ones.

    python experiments/class_scores.py RUN_DIR/checkpoints/last.ckpt [...] [--samples 1000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gans.checkpoint import load_model
from gans.data.base import to_float, to_uint8
from gans.data.fashion_mnist import FashionMNISTDataModule
from gans.metrics.classifier import ClassStatistics, Recipe, predict, real_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    data = FashionMNISTDataModule(on_device=False)
    data.setup("test")
    classifier, record = real_classifier(data, Recipe(), torch.device("cpu"))
    real, labels = data.test_images[: args.samples], data.test_labels[: args.samples]
    for checkpoint in args.checkpoints:
        model = load_model(checkpoint)
        seeded = torch.Generator().manual_seed(model.sample_seed + 1)  # the base's evaluation latents
        z = model.draw_latent(args.samples, seeded, "cpu")
        conditional = bool(getattr(model, "class_conditional", False))
        fakes = torch.cat([model.generate_from(zs, ys if conditional else None)
                           for zs, ys in zip(z.split(250), labels.split(250))])  # fmt: skip
        stats = ClassStatistics(data.num_classes)
        # uint8 first, as evaluation does, then the classifier's [-1, 1] input
        stats.update(predict(classifier, to_float(to_uint8(fakes))), predict(classifier, to_float(real)), labels,
                     labels if conditional else None)  # fmt: skip
        scores = {k: v.tolist() if v.dim() else round(float(v), 4) for k, v in stats.compute().items()}
        iteration = torch.load(checkpoint, map_location="cpu", weights_only=True)["progress"]["iteration"]
        print(f"{checkpoint}: iteration {iteration}; "
              f"real classifier test accuracy {record['test_accuracy']:.4f}; {scores}")  # fmt: skip


if __name__ == "__main__":
    main()
