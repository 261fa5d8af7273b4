"""The evaluation task: `python run.py task=evaluate ckpt_path=RUN_DIR/checkpoints/last.ckpt`.

Scores a checkpoint on its run's test set and writes `<run dir>/metrics.json`:

- FID (Heusel et al. 2017) and KID (Binkowski et al. 2018): the base module's test evaluation
  (`trainer.test` on the loaded model, so the numbers are those a training run logs as `test/*`),
  with every other metric that evaluation logs (class coverage, PSNR, ...) under `model_metrics`.
- Improved precision and recall (Kynkaanniemi et al. 2019, k = 3) and density and coverage
  (Naeem et al. 2020, k = 5) of the generated against the real test images, on the same Inception
  pool3 features FID used (`gans.metrics.prdc`): realism and diversity apart.
- Memorisation (`gans.metrics.memorisation`): how often samples sit closer to a training image
  than real test images do, and `closest_pairs.png`, the samples nearest to the training set
  beside their nearest training images.

Each number carries its sample counts and protocol. Image-to-image models (Pix2pix, CycleGAN)
draw nothing from a latent: they get FID/KID and their own metrics, and a note that the
sample-based metrics do not apply. The model and data are the run's (`RUN_DIR/.hydra/config.yaml`);
`data.KEY=VALUE` on the command line changes one data setting (e.g. `data.max_eval_samples=10000`),
`data=NAME` scores on another data set. Evaluation runs in one process.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torchvision.utils import make_grid, save_image

from gans.callbacks.samples import label_rows
from gans.checkpoint import load_model, require_checkpoint, run_config
from gans.errors import GansError
from gans.generation import sample
from gans.metrics.memorisation import closest_pairs, memorisation_summary, nearest_neighbours
from gans.metrics.prdc import DENSITY_COVERAGE_K, PRECISION_RECALL_K, prdc

log = logging.getLogger(__name__)

METRICS_FILE, PAIRS_FILE = "metrics.json", "closest_pairs.png"
PAIRS_SHOWN = 8
INCEPTION = "Inception 2015-12-05 pool3 (2048-d), float32"


class TestFeatures(L.Callback):
    """Keeps the Inception features of each test stream's real and generated images.

    The base module's test evaluation holds them in its KID states until its `on_test_epoch_end`
    computes the scores and resets them; Lightning runs the callbacks' `on_test_epoch_end` first,
    so they are read here and Inception runs once per image for FID, KID and PRDC alike.
    """

    def __init__(self) -> None:
        self.streams: dict[str, tuple[Tensor, Tensor]] = {}  # stream -> (real, generated) features

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The base module keeps its metric states private; reading them here spares a second Inception pass.
        for stream, distances in pl_module._distances.get("test", {}).items():
            kid = distances.kid
            if kid is None or not kid.fake_features:
                continue
            self.streams[stream] = (torch.cat(kid.real_features).cpu(), torch.cat(kid.fake_features).cpu())


def evaluation_data(cfg: DictConfig, run_cfg: DictConfig) -> DictConfig:
    """The run's data config with the command line's `data.*` settings on top (`data=NAME`: the
    command line's data config whole)."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    keys = [override.lstrip("~+").split("=", 1)[0] for override in overrides]
    if "data" in keys:
        return cfg.data
    data = run_cfg.data
    for key in keys:
        if key.startswith("data."):
            OmegaConf.update(data, key[len("data.") :], OmegaConf.select(cfg, key), force_add=True)
    return data


def evaluate(cfg: DictConfig) -> float | None:
    """Write `metrics.json` (and the closest pairs' picture); returns the test FID (None if not logged)."""
    checkpoint = require_checkpoint(cfg.get("ckpt_path"), "evaluate")
    run_cfg = run_config(checkpoint)
    model = load_model(checkpoint, "cpu", weights_only=cfg.ckpt_weights_only)
    # The base's test evaluation computes these; KID also keeps the features PRDC reads.
    model.eval_fid, model.eval_kid = True, True
    try:
        datamodule = instantiate(evaluation_data(cfg, run_cfg))
    except InstantiationException as err:  # a run of older code whose data config no longer builds
        raise GansError(
            f"{checkpoint}: its run's data config does not build with this code "
            f"({str(err.__cause__ or err).splitlines()[0].rstrip(':')}): "
            "pass data=NAME, a data config of this version (conf/data)"
        ) from None
    datamodule.prepare_data()
    features = TestFeatures()
    trainer = instantiate(
        cfg.trainer, devices=1, num_nodes=1, logger=False, callbacks=[features], enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    (results,) = trainer.test(model, datamodule=datamodule, verbose=False)
    out = Path(cfg.paths.output_dir)
    report = {
        "checkpoint": str(checkpoint.resolve()),
        "model": type(model).__name__,
        "iteration": int(model.iteration),
        "kimg": float(model.kimg),
        "data": {"name": datamodule.name, "split": "test"},
        "metrics": distance_metrics(results, features.streams, model),
        "model_metrics": {key: float(value) for key, value in sorted(results.items())},
        "notes": [],
    }
    # The samples' stream: "" (beside an autoencoder's "recon"), or ProGAN's side before it grew to the data's.
    main = features.streams.get("") or (next(iter(features.streams.values())) if len(features.streams) == 1 else None)
    if not getattr(model, "latent_dim", None):
        report["notes"].append(
            f"{type(model).__name__} translates test images rather than drawing samples from a latent: "
            "precision, recall, density, coverage and memorisation do not apply; FID/KID and the model's own "
            "metrics only"
        )
    elif main is None:
        report["notes"].append(f"no main test stream among {sorted(features.streams)}: no precision/recall")
    else:
        report["metrics"].update(sample_metrics(*main, report["notes"]))
        report["metrics"]["memorisation"] = memorisation(model, datamodule, len(main[1]), cfg, out, report["notes"])
    write_report(report, out / METRICS_FILE)
    return report["metrics"].get("fid", {}).get("value")


def distance_metrics(results: dict[str, float], streams: dict[str, tuple[Tensor, Tensor]], model) -> dict:
    """FID and KID of each test stream (`fid`, `fid_A2B`, ...) from what `trainer.test` logged."""
    pairing = (
        "generated image i from the fixed evaluation latent i (seed model.sample_seed + 1) with the condition of "
        "real test image i"
        if getattr(model, "latent_dim", None)
        else "generated image i: the model's output for the test input i"
    )
    protocol = f"{INCEPTION}, {'torch-antialias' if model.fid_antialias else 'tf-bilinear'} resize to 299; {pairing}"
    metrics = {}
    for stream, (real, fake) in sorted(streams.items()):
        suffix = f"_{stream}" if stream else ""
        counts = {"real": len(real), "generated": len(fake)}
        metrics[f"fid{suffix}"] = {
            "value": results[f"test/fid{suffix}"],
            **counts,
            "protocol": f"Heusel et al. 2017; {protocol}",
        }
        metrics[f"kid{suffix}"] = {
            "value": results[f"test/kid{suffix}"],
            "std": results[f"test/kid_std{suffix}"],
            **counts,
            "subset_size": min(model.kid_subset_size, len(real), len(fake)),
            "protocol": f"Binkowski et al. 2018, polynomial kernel, mean and std over 100 subsets; {protocol}",
        }
    if "fid" not in metrics and "test/fid" in results:  # two translation directions: their mean
        metrics["fid"] = {"value": results["test/fid"], "protocol": f"the mean of {', '.join(sorted(metrics)[:2])}"}
    return metrics


def sample_metrics(real: Tensor, fake: Tensor, notes: list[str]) -> dict:
    """Precision, recall, density and coverage on the test evaluation's Inception features."""
    k = max(PRECISION_RECALL_K, DENSITY_COVERAGE_K)
    if min(len(real), len(fake)) <= k:
        notes.append(f"{len(real)} real and {len(fake)} generated test images: too few for k = {k} neighbours")
        return {}
    scores = prdc(real, fake)
    counts = {"real": len(real), "generated": len(fake)}
    feature_space = f"{INCEPTION} features of the FID evaluation's images (the papers use VGG16 fc2)"
    protocols = {
        "precision": f"Kynkaanniemi et al. 2019, k = {PRECISION_RECALL_K}; {feature_space}",
        "recall": f"Kynkaanniemi et al. 2019, k = {PRECISION_RECALL_K}; {feature_space}",
        "density": f"Naeem et al. 2020, k = {DENSITY_COVERAGE_K}; {feature_space}",
        "coverage": f"Naeem et al. 2020, k = {DENSITY_COVERAGE_K}; {feature_space}",
    }
    return {name: {"value": scores[name], **counts, "protocol": protocols[name]} for name in protocols}


def memorisation(model, datamodule, n: int, cfg: DictConfig, out: Path, notes: list[str]) -> dict | None:
    """Samples' nearest training images against real test images' (pixel L2), and the picture of
    the closest pairs; n fresh samples, as many as the test scored."""
    train, test = datamodule.train_images, datamodule.eval_images("test")
    seed = cfg.seed if cfg.get("seed") is not None else 0
    samples = torch.from_numpy(sample(model, n, seed=seed)).permute(0, 3, 1, 2)
    if samples.shape[1:] != train.shape[1:]:  # e.g. ProGAN before it reached the data's side
        notes.append(f"samples of shape {tuple(samples.shape[1:])} against training images of "
                     f"{tuple(train.shape[1:])}: no memorisation")  # fmt: skip
        return None
    train, test = train.cpu(), test.cpu()
    generated_nn, generated_index = nearest_neighbours(samples, train)
    test_nn, _ = nearest_neighbours(test, train)
    summary = memorisation_summary(generated_nn, test_nn)
    near, their_train, _ = closest_pairs(generated_nn, generated_index, min(PAIRS_SHOWN, n))
    save_image(pairs_figure(samples[near], train[their_train]), out / PAIRS_FILE)
    return {
        **summary,
        "generated": n,
        "test": len(test),
        "training": len(train),
        "closest_pairs": PAIRS_FILE,
        "protocol": (
            "Meehan et al. 2020's data-copying test, summarised: L2 distance on the [0, 1] pixel scale over C*H*W "
            "to the nearest training image; fraction_closer = share of samples nearer than the "
            f"{summary['quantile']:.0%} quantile of the real test images' distances (about {summary['quantile']} for "
            f"fresh draws, more for a copier); fresh samples drawn with seed {seed}"
        ),
    }


def pairs_figure(samples: Tensor, training: Tensor, scale: int = 2) -> Tensor:
    """The samples nearest to the training set (top row) above their nearest training images,
    uint8 images enlarged `scale` times so a 28x28 pair is visible beside the row names."""
    images = torch.cat([samples, training]).float().div(255.0)
    images = images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    grid = make_grid(images, nrow=len(samples), pad_value=1.0)
    return label_rows(grid, ["closest samples", "nearest training"])


def write_report(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")
    metrics = report["metrics"]
    shown = [f"{name} {entry['value']:.4g}" for name, entry in metrics.items()
             if isinstance(entry, dict) and isinstance(entry.get("value"), float) and math.isfinite(entry["value"])]  # fmt: skip
    if metrics.get("memorisation"):
        shown.append(f"memorisation fraction_closer {metrics['memorisation']['fraction_closer']:.3f}")
    log.info(f"{', '.join(shown)}; wrote {path}")
    for note in report["notes"]:
        log.info(note)
