"""Time FID over N generated images as the evaluation computes it: a DCGAN generator draws N
images at the run's precision, the FID Inception network (Szegedy et al. 2016; the TF 2015-12-05
weights of Heusel et al. 2017) passes them in float32, batched, and FID is computed against real
statistics already cached (their Inception pass is not timed, as a cached reference costs
nothing at evaluation). Prints one JSON line: seconds for generation, features and the score,
seconds per image, and on CUDA the peak GPU memory.

    python experiments/fid_speed.py --device cuda --num 10000             # the issue's row
    python experiments/fid_speed.py --device cpu --num 64 --batch-size 32  # a CPU cost per image

`--weights FILE` loads the Inception weights from FILE (also a float16 copy, written here with
`--export-half-weights FILE` so that it fits a transfer limit: the time is the same, the FID
value is then not the exact one and is not printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `gans`, not an installed one
from gans.data.base import to_uint8
from gans.metrics.fid import FeatureDistances
from gans.metrics.inception import InceptionFeatures, exact_float32, inception_weights_path
from gans.nets.dcgan import Generator


def export_half_weights(path: str) -> None:
    state = torch.load(inception_weights_path(), map_location="cpu", weights_only=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, path)
    print(json.dumps({"exported": path, "bytes": Path(path).stat().st_size}))


def float32_weights(path: str) -> str:
    """A float32 copy of a weights file (a float16 export is widened back), as InceptionFeatures loads."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if all(v.dtype != torch.float16 for v in state.values()):
        return path
    widened = Path("/tmp") / (Path(path).stem + "-float32.pth")
    torch.save({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, widened)
    return str(widened)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--num", type=int, default=10_000, help="generated images")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--precision", default=None, help="generation autocast: bf16 (default on cuda) or 32")
    parser.add_argument("--weights", default=None, help="Inception weights file (default: the cached ones)")
    parser.add_argument("--export-half-weights", metavar="FILE", help="write a float16 copy of the weights, then exit")
    args = parser.parse_args()
    if args.export_half_weights:
        export_half_weights(args.export_half_weights)
        return
    device = torch.device(args.device)
    bf16 = (args.precision or ("bf16" if device.type == "cuda" else "32")) == "bf16"
    torch.manual_seed(0)
    generator = Generator(100, args.image_size, args.channels, args.width).to(device).eval()
    weights = float32_weights(args.weights) if args.weights else None
    exact = weights is None or weights == args.weights
    distances = FeatureDistances(inception=InceptionFeatures(weights_path=weights)).to(device)
    # The cached real statistics: random images stand in for the data set (their content does not change the time).
    real = torch.randint(0, 256, (max(args.batch_size, 64), args.channels, args.image_size, args.image_size),
                         dtype=torch.uint8, device=device)  # fmt: skip
    distances.update(real, real=True)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        generator(torch.randn(2, 100, device=device))  # warm-up: cuDNN's choice of kernels
    with exact_float32(device):
        distances.inception(real[:2])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timings = {"generate_s": 0.0, "features_s": 0.0}
    sync(device)
    start = time.perf_counter()
    for first in range(0, args.num, args.batch_size):
        n = min(args.batch_size, args.num - first)
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            fakes = to_uint8(generator(torch.randn(n, 100, device=device)))
        sync(device)
        t1 = time.perf_counter()
        distances.update(fakes, real=False)  # Inception in float32 (`exact_float32` inside)
        sync(device)
        timings["generate_s"] += t1 - t0
        timings["features_s"] += time.perf_counter() - t1
    t2 = time.perf_counter()
    fid = float(distances.compute()["fid"])
    sync(device)
    end = time.perf_counter()
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads",
        "num": args.num, "batch_size": args.batch_size, "image": f"{args.image_size}x{args.image_size}x{args.channels}",
        "generate_s": round(timings["generate_s"], 3), "features_s": round(timings["features_s"], 3),
        "fid_compute_s": round(end - t2, 3), "total_s": round(end - start, 3),
        "s_per_image": round((end - start) / args.num, 5),
        "features_s_per_image": round(timings["features_s"] / args.num, 5),
    }  # fmt: skip
    if exact:
        result["fid_vs_random_images"] = round(fid, 2)  # a check that it ran, not a score of anything
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
