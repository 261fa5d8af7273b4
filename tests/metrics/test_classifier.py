"""Class-aware evaluation: the classifier of the real data (learning, determinism, the disk cache),
the class statistics and intra-FID against hand and independent computations, CAS on a tiny
data set, and the metrics logged by `run.py` for a conditional and an unconditional toy model."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gans.metrics import classifier as classifier_module
from gans.metrics.classifier import (
    ClassStatistics,
    Recipe,
    accuracy,
    class_coverage,
    classification_accuracy_score,
    fit_classifier,
    real_classifier,
)
from gans.metrics.intra_fid import IntraFID, frechet_distance
from tests.test_run import ROOT, assert_ok, run, wandb_metrics

TINY = Recipe(epochs=3, batch_size=16, lr=5e-3)


def striped(labels: torch.Tensor, size: int = 16, seed: int = 0) -> torch.Tensor:
    """uint8 (N, 1, size, size) images: class k is a bright horizontal band at height k, in noise."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 60, (len(labels), 1, size, size), generator=g)
    band = size // 4
    for i, k in enumerate(labels.tolist()):
        images[i, :, k * band : (k + 1) * band] += 180
    return images.clamp(0, 255).to(torch.uint8)


class TinyLabelledData:
    """What the classifier reads of a data module: name, classes and the three splits."""

    name = "tiny"
    num_classes = 3

    def __init__(self, n: int = 96, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.train_labels = torch.randint(0, 3, (n,), generator=g)
        self.train_images = striped(self.train_labels, seed=seed)
        self.test_labels = torch.arange(30) % 3
        self.test_images = striped(self.test_labels, seed=seed + 1)


class StripedGenerator:
    """A stand-in class-conditional model drawing `striped` images of the requested class k, or of
    class k + shift (mod 3): sharp images of the wrong class."""

    latent_dim, device = 4, torch.device("cpu")

    def __init__(self, shift: int = 0) -> None:
        self.shift = shift

    def generate_from(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = (labels + self.shift) % 3
        seed = int(z[0, 0].abs() * 1e6)
        return striped(labels, seed=seed).float() / 127.5 - 1


def test_classifier_learns_a_separable_data_set_deterministically_without_touching_the_rng():
    data = TinyLabelledData()
    state = torch.random.get_rng_state()
    net = fit_classifier(data.train_images, data.train_labels, 3, TINY)
    assert torch.equal(torch.random.get_rng_state(), state)  # a training run's noise is left alone
    assert not net.training
    assert accuracy(net, data.test_images, data.test_labels) == 1.0
    again = fit_classifier(data.train_images, data.train_labels, 3, TINY)
    for (name, a), b in zip(net.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name


def test_classifier_takes_any_channel_count_and_size():
    net = classifier_module.ClassifierNet(channels=3, num_classes=5)
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 5)
    assert net(torch.zeros(2, 3, 28, 28)).shape == (2, 5)


def test_real_classifier_is_trained_once_then_loaded_from_the_cache(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GANS_CACHE", str(tmp_path))
    data = TinyLabelledData()
    with caplog.at_level(logging.INFO, logger="gans.metrics.classifier"):
        net, record = real_classifier(data, TINY)
    assert "trained the class-aware evaluation classifier on 96 tiny training images" in caplog.text
    assert record["test_accuracy"] == 1.0 and record["train_images"] == 96
    (path,) = (tmp_path / "classifiers").glob("tiny-*.pt")
    assert torch.load(path, weights_only=True)["num_classes"] == 3  # plain tensors and numbers

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(classifier_module, "fit_classifier", no_training)
    caplog.clear()
    rng = torch.random.get_rng_state()
    with caplog.at_level(logging.INFO, logger="gans.metrics.classifier"):
        loaded, again = real_classifier(data, TINY)
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert "loaded the class-aware evaluation classifier of tiny" in caplog.text
    assert again == record
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)

    # Other labels, another recipe, a cap on the training images: other fingerprints, new training.
    relabelled = TinyLabelledData()
    relabelled.train_labels = (relabelled.train_labels + 1) % 3
    for other, recipe in ((relabelled, TINY), (data, Recipe(epochs=3, batch_size=16)), (data, Recipe(max_images=50))):
        with pytest.raises(AssertionError, match="trained again"):
            real_classifier(other, recipe)


def test_class_statistics_against_a_hand_computation():
    stats = ClassStatistics(num_classes=3)
    # Two batches: generated predictions, real predictions, real labels, requested labels.
    stats.update(torch.tensor([0, 0]), torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([0, 1]))
    stats.update(torch.tensor([1, 2]), torch.tensor([2, 2]), torch.tensor([1, 2]), torch.tensor([1, 2]))
    scores = stats.compute()
    assert scores["generated_hist"].tolist() == [0.5, 0.25, 0.25]
    assert scores["real_hist"].tolist() == [0.25, 0.25, 0.5]
    assert float(scores["coverage"]) == pytest.approx(0.25 + 0.25 + 0.25)  # sum of the minima
    assert float(scores["real_acc"]) == 0.75  # the real image of class 1 taken for a 2
    assert float(scores["class_acc"]) == 0.75  # the image requested as a 1 classified as a 0
    assert all(v.dtype in (torch.float32, torch.int64) for v in scores.values())


def test_class_coverage_is_one_for_the_reference_mix_and_one_over_k_for_a_collapse():
    uniform = torch.full((10,), 100)
    assert float(class_coverage(torch.full((10,), 7), uniform)) == pytest.approx(1.0)
    assert float(class_coverage(torch.tensor([70] + [0] * 9), uniform)) == pytest.approx(0.1)
    assert float(class_coverage(torch.tensor([0, 5]), torch.tensor([5, 0]))) == 0.0


def scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("n, m", [(50, 60), (3, 7)])  # full-rank covariances, and rank-deficient ones
def test_frechet_distance_matches_scipy(n, m):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = 1.5 * torch.randn(m, 5, generator=g, dtype=torch.float64) + 0.3
    assert float(frechet_distance(x, y)) == pytest.approx(scipy_fid(x.numpy(), y.numpy()), rel=1e-6)


@pytest.fixture(scope="module")
def class_features():
    """Synthetic (N, 2048) 'Inception features' of two classes, real and generated. Only the first
    16 dimensions vary: torchmetrics' FID then solves its 2048 x 2048 eigenproblem in seconds
    (LAPACK's balancing splits off the zero rows) rather than minutes on a CPU."""
    g = torch.Generator().manual_seed(0)
    real_labels, fake_labels = torch.arange(30) % 2, torch.arange(24) % 2
    real, fake = torch.zeros(30, 2048), torch.zeros(24, 2048)
    centres = 2 * torch.randn(2, 16, generator=g)
    real[:, :16] = centres[real_labels] + torch.randn(30, 16, generator=g)
    fake[:, :16] = centres[fake_labels] + 1.3 * torch.randn(24, 16, generator=g) + 0.2
    return real, real_labels, fake, fake_labels


def test_intra_fid_is_the_mean_of_per_class_fids_of_feature_distances(class_features, tmp_path):
    from gans.metrics.fid import FeatureDistances

    real, real_labels, fake, fake_labels = class_features
    intra = IntraFID(num_classes=2)
    for lo, hi in ((0, 20), (20, 30)):  # in batches, as evaluation feeds it
        intra.update(real[lo:hi], real_labels[lo:hi], real=True)
    intra.update(fake, fake_labels, real=False)
    mean, per_class = intra.compute()
    expected, inception = [], None
    for k in range(2):
        distances = FeatureDistances(inception=inception)
        inception = distances.inception
        distances.update(real[real_labels == k], real=True)
        distances.update(fake[fake_labels == k], real=False)
        expected.append(float(distances.compute()["fid"]))
    assert per_class.tolist() == pytest.approx(expected, rel=1e-4)
    assert float(mean) == pytest.approx(np.mean(expected), rel=1e-4)
    assert mean.dtype == torch.float32

    # The real side round-trips through the cache; the generated side is reset between evaluations.
    intra.save_real(tmp_path / "classes.pt")
    cached = IntraFID(num_classes=2)
    assert cached.load_real(tmp_path / "classes.pt") and not IntraFID(2).load_real(tmp_path / "missing.pt")
    cached.update(fake, fake_labels, real=False)
    assert float(cached.compute()[0]) == pytest.approx(float(mean), rel=1e-6)
    intra.reset_generated()
    intra.update(fake[fake_labels == 0], fake_labels[fake_labels == 0], real=False)  # no image of class 1
    mean_of_0, per_class = intra.compute()
    assert math.isnan(per_class[1]) and float(mean_of_0) == pytest.approx(expected[0], rel=1e-4)


def test_classification_accuracy_score_separates_right_from_wrong_classes():
    data = TinyLabelledData()
    assert classification_accuracy_score(StripedGenerator(), data, 32, TINY) == 1.0
    # Perfect images, each of the class after the requested one: a classifier learns the shift.
    assert classification_accuracy_score(StripedGenerator(shift=1), data, [32, 32, 32], TINY) == 0.0
    with pytest.raises(ValueError, match="2 counts for 3 classes"):
        classification_accuracy_score(StripedGenerator(), data, [4, 4], TINY)


# -- through run.py: debug=smoke trains the classifier on 2,000 images (conf/debug/smoke.yaml). The
# unconditional toy's class_coverage is checked in tests/test_family.py, on a run it makes anyway. --
TOYS = f"hydra.searchpath=[file://{ROOT / 'tests' / 'conf'}]"


def finite_fraction(metrics: dict, key: str) -> float:
    value = metrics[key]
    assert math.isfinite(value) and 0.0 <= value <= 1.0, (key, value)
    return value


def test_conditional_toy_on_two_processes_logs_class_accuracy_intra_fid_and_cas(tmp_path):
    result = run(TOYS, "model=toy_cgan", "debug=smoke", "trainer=ddp_cpu", "++model.eval_cas=true",
                 f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert_ok(result)
    output = result.stdout + result.stderr
    assert "the class-aware evaluation classifier" in output and "val/class_acc = " in output
    metrics = wandb_metrics(tmp_path)
    for stage in ("val", "test"):
        finite_fraction(metrics, f"{stage}/class_acc")
        assert finite_fraction(metrics, f"{stage}/classifier_acc_real") > 0.5  # from 2,000 images: a weak ceiling
        assert f"{stage}/class_coverage" not in metrics
    assert math.isfinite(metrics["test/intra_fid"]) and metrics["test/intra_fid"] > 0
    assert "val/intra_fid" not in metrics  # the test set's alone
    finite_fraction(metrics, "test/cas")
