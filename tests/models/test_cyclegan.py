"""CycleGAN on tiny random image pairs: the paper's objective, the image pool, the learning-rate
schedule, evaluation metrics and grids, checkpoints and the YAML config."""

from __future__ import annotations

import functools
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LambdaCallback, ModelCheckpoint
from omegaconf import OmegaConf
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from gans.data.base import to_float
from gans.data.unpaired import UnpairedImageDataModule
from gans.metrics.fid import FeatureDistances
from gans.models.cyclegan import CycleGAN
from gans.models.image_pool import ImagePool
from gans.models.schedules import LinearDecay, linear_decay
from gans.nets.patchgan import PatchDiscriminator
from gans.nets.resnet import ResnetGenerator
from tests.conftest import compose_config
from tests.models.test_base import make_trainer

CONF = Path(__file__).parents[2] / "conf"
adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


class Pairs(Dataset):
    def __init__(self, a: torch.Tensor, b: torch.Tensor) -> None:
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> dict:
        return {"A": self.a[i], "B": self.b[i], "index": i}


class RandomPairs(L.LightningDataModule):
    """Seeded random images A in [-1, 1] and B = their left-right mirror, negated: aligned pairs in
    evaluation; in training the B images are shuffled (unpaired) unless `paired`."""

    name = "random-pairs"

    def __init__(self, num=16, val=4, channels=1, size=32, batch_size=4, paired=False, aligned_eval=True) -> None:
        super().__init__()
        self.num, self.val, self.channels, self.image_size = num, val, channels, size
        self.batch_size, self.paired, self.aligned_eval = batch_size, paired, aligned_eval
        g = torch.Generator().manual_seed(0)
        self.a = torch.rand(num + val, channels, size, size, generator=g) * 2 - 1
        self.b = -self.a.flip(-1)

    def train_dataloader(self) -> DataLoader:
        b = self.b[: self.num] if self.paired else self.b[: self.num].roll(1, 0)
        return DataLoader(Pairs(self.a[: self.num], b), batch_size=self.batch_size, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(Pairs(self.a[self.num :], self.b[self.num :]), batch_size=self.batch_size)

    test_dataloader = val_dataloader

    def eval_size(self, stage: str) -> int:
        return self.val

    def eval_fingerprint(self, stage: str) -> str:
        return f"{self.name}-{stage}-{self.val}-{self.channels}x{self.image_size}"


def make_cyclegan(**kwargs) -> CycleGAN:
    torch.manual_seed(0)
    kwargs.setdefault("eval_fid", False)
    gen = lambda: ResnetGenerator(32, 1, width=4, n_blocks=1)
    disc = lambda: PatchDiscriminator(1, width=4, n_layers=2)
    return CycleGAN(
        nn.ModuleDict({"A2B": gen(), "B2A": gen()}),
        nn.ModuleDict({"A": disc(), "B": disc()}),
        adam,
        adam,
        **kwargs,
    )


def batch_of(dm: RandomPairs, n: int = 4) -> dict:
    return next(iter(DataLoader(Pairs(dm.a, dm.b), batch_size=n)))


# -- the objective ------------------------------------------------------------------------------
def test_generator_loss_is_the_full_objective_with_identity_loss():
    model = make_cyclegan()
    batch = batch_of(RandomPairs())
    loss, stats = model.generator_loss(batch)
    G, F = model.generator["A2B"], model.generator["B2A"]
    D_A, D_B = model.discriminator["A"], model.discriminator["B"]
    a, b = batch["A"], batch["B"]
    lsgan = lambda scores: ((scores - 1) ** 2).mean()
    l1 = lambda x, y: (x - y).abs().mean()
    expected = (
        lsgan(D_B(G(a))) + lsgan(D_A(F(b))) + 10 * (l1(F(G(a)), a) + l1(G(F(b)), b)) + 5 * (l1(G(b), b) + l1(F(a), a))
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["cycle_loss"].item() == pytest.approx((l1(F(G(a)), a) + l1(G(F(b)), b)).item(), rel=1e-5)
    torch.testing.assert_close(batch["fake_B"], G(a).detach())
    assert not batch["fake_B"].requires_grad
    no_identity, _ = make_cyclegan(lambda_identity=0.0).generator_loss(dict(batch))
    assert no_identity.item() == pytest.approx((expected - 5 * (l1(G(b), b) + l1(F(a), a))).item(), rel=1e-5)


def test_discriminator_loss_is_halved_lsgan_on_real_and_pooled_fakes():
    model = make_cyclegan()
    batch = batch_of(RandomPairs())
    loss, stats = model.discriminator_loss(batch)  # empty pools: the fakes come straight back
    G, F = model.generator["A2B"], model.generator["B2A"]
    D_A, D_B = model.discriminator["A"], model.discriminator["B"]
    a, b = batch["A"], batch["B"]
    half = lambda real, fake: 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())
    expected = half(D_A(a), D_A(F(b))) + half(D_B(b), D_B(G(a)))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["D_B(G(A))"].item() == pytest.approx(D_B(G(a)).mean().item(), rel=1e-5)
    assert len(model.pools["A"]) == len(model.pools["B"]) == 4


def test_wrong_network_layout_and_n_critic_are_refused():
    with pytest.raises(ValueError, match="ModuleDict"):
        CycleGAN(nn.ModuleDict({"G": nn.Identity()}), nn.ModuleDict({"A": nn.Identity()}), adam, adam)
    with pytest.raises(ValueError, match="n_critic"):
        make_cyclegan(n_critic=2)


# -- the image pool -----------------------------------------------------------------------------
def ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].long().tolist()


def test_image_pool_fills_then_answers_half_from_history():
    pool = ImagePool(50)
    first = torch.arange(50.0).view(50, 1, 1, 1).expand(-1, 1, 2, 2)
    assert ids(pool.query(first[:30])) == list(range(30))
    assert ids(pool.query(first[30:])) == list(range(30, 50)) and len(pool) == 50
    g = torch.Generator().manual_seed(0)
    returned, before = [], sorted(ids(pool.images))
    new = torch.arange(50.0, 1050.0).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
    for chunk in new.split(10):
        returned += ids(pool.query(chunk, generator=g))
    from_history = sum(i < j for i, j in zip(returned, range(50, 1050)))
    assert 0.45 < from_history / 1000 < 0.55
    # Every image is either answered once or still in the pool.
    assert sorted(returned + ids(pool.images)) == sorted(before + list(range(50, 1050)))
    assert len(pool) == 50 and pool.images.shape == (50, 1, 2, 2)


def test_image_pool_replays_the_authors_per_image_rule():
    size, g1, g2 = 5, torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    pool = ImagePool(size)
    images = torch.arange(40.0).view(40, 1, 1, 1)
    answers = ids(pool.query(images[:8], generator=g1)) + ids(pool.query(images[8:], generator=g1))
    # The reference loop, drawing the same numbers (per batch: coin flips, then slots).
    stored, expected = [], []
    for batch in (list(range(8)), list(range(8, 40))):
        filling = batch[: size - len(stored)]
        stored += filling
        expected += filling
        rest = batch[len(filling) :]
        coins = (torch.rand(len(rest), generator=g2) > 0.5).tolist()
        slots = torch.randint(size, (len(rest),), generator=g2).tolist()
        for i, coin, slot in zip(rest, coins, slots):
            if coin:  # answer a stored image, store the new one in its place
                expected.append(stored[slot])
                stored[slot] = i
            else:
                expected.append(i)
    assert answers == expected and ids(pool.images) == stored
    assert ImagePool(0).query(images[:3]).equal(images[:3])


# -- the learning-rate schedule -----------------------------------------------------------------
def test_linear_decay_is_constant_then_linear_to_zero():
    rule = LinearDecay(total_epochs=6, decay_epochs=3)
    assert [rule(e) for e in range(7)] == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25, 0])
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = linear_decay(opt, total_epochs=4)  # decays over the second half
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert lrs == pytest.approx([1, 1, 2 / 3, 1 / 3])
    with pytest.raises(ValueError, match="max_epochs"):
        linear_decay(opt, total_epochs=-1)


# -- training with Lightning --------------------------------------------------------------------
def test_training_steps_update_both_sides_and_log(tmp_path):
    model = make_cyclegan(channels_last=True)  # NHWC batches, as on a GPU
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    make_trainer(tmp_path, max_steps=4, limit_val_batches=0).fit(model, datamodule=RandomPairs())
    opt_g, opt_d = model.optimizers()
    step = lambda opt: int(next(iter(opt.optimizer.state.values()))["step"])
    assert (step(opt_g), step(opt_d)) == (2, 2)
    changed = {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {"generator", "discriminator"}
    metrics = model.trainer.callback_metrics
    for key in ("g_loss", "d_loss", "cycle_loss", "identity_loss", "gan_loss", "D_B(G(A))", "D_A(A)", "grad_norm_d"):
        assert torch.isfinite(metrics[f"train/{key}"]), key
    assert len(model.pools["A"]) == 8  # two batches of four fakes went through each pool


@pytest.mark.filterwarnings("ignore:The dirpath has changed")
def test_schedules_and_checkpoints_load_with_weights_only_and_resume(tmp_path):
    decay = functools.partial(linear_decay, total_epochs=4)
    model = make_cyclegan(scheduler_g=decay, scheduler_d=decay)
    lrs = []
    record = LambdaCallback(on_train_epoch_start=lambda t, m: lrs.append(m.optimizers()[0].param_groups[0]["lr"]))
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = make_trainer(
        tmp_path,
        max_epochs=3,
        limit_train_batches=1,
        limit_val_batches=0,
        enable_checkpointing=True,
        callbacks=[ckpt, record],
    )
    trainer.fit(model, datamodule=RandomPairs())
    assert lrs == pytest.approx([2e-4, 2e-4, 2e-4 * 2 / 3])
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert state["hyper_parameters"]["lambda_cycle"] == 10.0
    assert state["lr_schedulers"][0]["lr_lambdas"] == [{"constant_epochs": 2, "decay_epochs": 2}]
    assert not any("eval_l1" in key or "pool" in key for key in state["state_dict"])
    resumed = make_cyclegan(scheduler_g=decay, scheduler_d=decay)
    lrs.clear()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "resumed", save_last=True)
    trainer = make_trainer(
        tmp_path,
        max_epochs=4,
        limit_train_batches=1,
        limit_val_batches=0,
        enable_checkpointing=True,
        callbacks=[ckpt, record],
    )
    trainer.fit(resumed, datamodule=RandomPairs(), ckpt_path=tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert lrs == pytest.approx([2e-4 / 3])


# -- evaluation ---------------------------------------------------------------------------------
def test_validation_logs_l1_on_aligned_pairs_and_keeps_a_fixed_grid_batch(tmp_path):
    model = make_cyclegan()
    dm = RandomPairs(val=6)
    make_trainer(tmp_path).validate(model, datamodule=dm, verbose=False)
    metrics = model.trainer.callback_metrics
    a, b = dm.a[dm.num :], dm.b[dm.num :]
    with torch.no_grad():
        G, F = model.generator["A2B"].eval(), model.generator["B2A"].eval()
        expected = {"A2B": (G(a) - b).abs().mean(), "B2A": (F(b) - a).abs().mean()}
    for direction, value in expected.items():
        assert metrics[f"val/l1_{direction}"].item() == pytest.approx(value.item(), rel=1e-4)
    visuals = model.visuals(nrow=3, interpolation_rows=8, interpolation_steps=10)
    assert set(visuals) == {"A2B", "B2A"}
    images, columns = visuals["A2B"]
    assert columns == 3 and images.shape == (9, 1, 32, 32)
    torch.testing.assert_close(images[0::3], a[:3])  # column 1: the inputs
    with torch.no_grad():
        torch.testing.assert_close(images[1::3], G(a[:3]))  # column 2: translations
        torch.testing.assert_close(images[2::3], F(G(a[:3])))  # column 3: reconstructions
    assert visuals["B2A"][0][0::3].equal(b[:3])

    unaligned = make_cyclegan()
    make_trainer(tmp_path).validate(unaligned, datamodule=RandomPairs(aligned_eval=False), verbose=False)
    assert not any(key.startswith("val/l1") for key in unaligned.trainer.callback_metrics)


def test_evaluation_pairs_are_one_fid_stream_per_direction():
    # (FID itself is Inception's cost, ~40 s on a CPU: the base module's streams are tested there.)
    model = make_cyclegan()
    model.train()
    batch = batch_of(RandomPairs())
    pairs = model.evaluation_pairs(batch)
    assert set(pairs) == {"A2B", "B2A"} and model.generator.training
    G, F = model.generator["A2B"].eval(), model.generator["B2A"].eval()
    with torch.no_grad():
        assert pairs["A2B"][0] is batch["B"] and torch.allclose(pairs["A2B"][1], G(batch["A"]))
        assert pairs["B2A"][0] is batch["A"] and torch.allclose(pairs["B2A"][1], F(batch["B"]))
    assert not pairs["A2B"][1].requires_grad


def test_evaluation_pairs_leave_out_the_missing_images_of_a_batch():
    model = make_cyclegan()
    batch = batch_of(RandomPairs())
    batch["has_A"], batch["has_B"] = torch.tensor([True, True, False, False]), torch.ones(4, dtype=torch.bool)
    pairs = model.evaluation_pairs(batch)
    G, F = model.generator["A2B"].eval(), model.generator["B2A"].eval()
    with torch.no_grad():
        assert torch.equal(pairs["A2B"][0], batch["B"]) and torch.allclose(pairs["A2B"][1], G(batch["A"][:2]))
        assert torch.equal(pairs["B2A"][0], batch["A"][:2]) and torch.allclose(pairs["B2A"][1], F(batch["B"]))
    batch = batch_of(RandomPairs(), n=2)
    batch["has_A"], batch["has_B"] = torch.zeros(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool)
    pairs = model.evaluation_pairs(batch)  # past the end of testA: no A image, no call of G
    assert [len(x) for x in pairs["A2B"]] == [2, 0] and [len(x) for x in pairs["B2A"]] == [0, 2]


# -- every image of unequal test sets (defect 6 of issue 6) --------------------------------------
TEST_SIZES = {"trainA": 4, "trainB": 4, "testA": 3, "testB": 5}  # as horse2zebra: 120 horses, 140 zebras


def unequal_folder(root: Path) -> Path:
    """The CycleGAN layout with fewer testA than testB images; distinct noise images."""
    rng = np.random.default_rng(0)
    for split, n in TEST_SIZES.items():
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), "L").save(root / split / f"{i}.png")
    return root


def unequal_data(root: Path, **kwargs) -> UnpairedImageDataModule:
    kwargs = {"image_size": 32, "channels": 1, "jitter": False, "batch_size": 2, "eval_batch_size": 2, **kwargs}
    return UnpairedImageDataModule(str(root), load_size=None, on_device=False, val_size=1, **kwargs)


def rows_of(images: torch.Tensor, candidates: torch.Tensor) -> list[int]:
    """For each image, the position of the matching candidate (translations in another batch
    composition can differ in the last bits)."""
    return [next(i for i, c in enumerate(candidates) if torch.allclose(image, c, atol=1e-5)) for image in images]


@pytest.mark.parametrize("world", [1, 2])
def test_evaluation_streams_hold_every_image_of_unequal_test_sets(tmp_path, world):
    # Defect 6: evaluation stopped at min(|testA|, |testB|) = 3 items, so FID B2A compared F(3 of
    # the 5 B images) with 3 A images and testB's last two were never scored. Over all ranks each
    # stream now gets every real image of its target domain and a translation of every input.
    dm = unequal_data(unequal_folder(tmp_path / "data"))
    dm.setup("test")
    test_a, test_b = (to_float(x) for x in dm.eval_images("test"))
    model = make_cyclegan()
    streams = {"A2B": ([], []), "B2A": ([], [])}
    for rank in range(world):
        dm.trainer = type("Trainer", (), {"global_rank": rank, "world_size": world})()
        for batch in dm.test_dataloader():
            for stream, (reals, fakes) in model.evaluation_pairs(batch).items():
                streams[stream][0].append(reals)
                streams[stream][1].append(fakes)
    reals = {stream: torch.cat(parts[0]) for stream, parts in streams.items()}
    fakes = {stream: torch.cat(parts[1]) for stream, parts in streams.items()}
    assert {s: (len(reals[s]), len(fakes[s])) for s in streams} == {"A2B": (5, 3), "B2A": (3, 5)}
    assert sorted(rows_of(reals["A2B"], test_b)) == [0, 1, 2, 3, 4]  # each B image once
    assert sorted(rows_of(reals["B2A"], test_a)) == [0, 1, 2]
    with torch.no_grad():
        G, F = model.generator["A2B"].eval(), model.generator["B2A"].eval()
        assert sorted(rows_of(fakes["A2B"], G(test_a))) == [0, 1, 2]  # a translation of each A image
        assert sorted(rows_of(fakes["B2A"], F(test_b))) == [0, 1, 2, 3, 4]


def test_fid_of_each_direction_counts_every_test_image(tmp_path, monkeypatch):
    # Defect 6, through Lightning and the base's FID: per stream, the real and generated counts
    # are the sizes of the two test sets (a batch past testA's end holds no A image at all).
    generated: dict[int, list] = {}  # per stream's FeatureDistances: [it, generated images fed]
    update = FeatureDistances.update

    def counting(self, images, real):
        generated.setdefault(id(self), [self, 0])[1] += 0 if real else len(images)
        return update(self, images, real)

    monkeypatch.setattr(FeatureDistances, "update", counting)
    model = make_cyclegan(eval_fid=True)
    dm = unequal_data(unequal_folder(tmp_path / "data"), eval_batch_size=2)
    make_trainer(tmp_path).test(model, datamodule=dm, verbose=False)
    # Real statistics stay after the score (and may come from the feature cache); generated ones were counted.
    counts = sorted((distances.num_real, n) for distances, n in generated.values())
    assert counts == [(3, 5), (5, 3)]  # B2A: 3 real A vs F(5 B images); A2B: 5 real B vs G(3 A images)
    metrics = model.trainer.callback_metrics
    assert "test/fid_A2B" in metrics and "test/fid_B2A" in metrics


# -- the YAML config ----------------------------------------------------------------------------
def compose(model: str, image_size: int = 32, channels: int = 1):
    """The model config as `python run.py model=<model>` composes it, for a given image shape."""
    overrides = [f"model={model}", f"data.image_size={image_size}", f"data.channels={channels}", "trainer.max_epochs=6"]
    return compose_config(*overrides).model


def test_config_builds_the_paper_s_model():
    model = instantiate(compose("cyclegan"))
    assert isinstance(model, CycleGAN) and model.lambda_cycle == 10 and model.lambda_identity == 0.5
    assert model.pools["A"].size == 50 and model.generator["A2B"] is not model.generator["B2A"]
    assert model.generator["A2B"].n_blocks == 6 and model.discriminator["A"].n_layers == 2
    (scheduler, _), (optimizer, _) = model.configure_optimizers()[1], model.configure_optimizers()[0]
    assert scheduler.lr_lambdas[0].decay_epochs == 3 and optimizer.defaults["betas"] == (0.5, 0.999)
    big = OmegaConf.to_container(compose("cyclegan", 256, 3).generator.modules.A2B, resolve=True)
    assert instantiate(big | {"width": 4}).n_blocks == 9
