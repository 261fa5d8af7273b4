"""Training throughput of the framework's GANs against plain PyTorch loops of the same networks.

`--model dcgan` (default), `pix2pix` or `cyclegan`. Both run in this process, on the same device,
batch, precision and memory format, on the same in-memory random uint8 images: the framework
through `lightning.Trainer.fit` with the model class (manual optimization, toggling, logging
every `--log-every` steps; for the translation models the real paired/unpaired data path,
`ImagePairsDataModule` -> `JitterBatches` + `DomainImages`, jitter off), the plain loop as the
shortest correct PyTorch code of the same algorithm with the same losses:
  - dcgan: Goodfellow et al. 2014, Algorithm 1 with fresh noise for each update;
  - pix2pix: G(A) once, D on concat(A, B) vs concat(A, G(A)) with 0.5 * BCE, then G on the
    non-saturating BCE + 100 * L1 (U-Net, conditional PatchGAN, batch norm);
  - cyclegan: G and F on LSGAN + 10 * cycle + 5 * identity, then D_A and D_B (0.5 * LSGAN) on fakes
    through 50-image pools (ResNet generators, PatchGANs, instance norm).
Prints JSON lines; the last holds framework_img_per_s, plain_img_per_s, their ratio and the
framework's overhead in ms per iteration, by wall time and (`cpu_*`) by this process's CPU time,
each the median over `--repeats` back-to-back pairs. On a CPU shared with other jobs, run with
OMP_NUM_THREADS=1 and read the `cpu_*` numbers: they count the work, not the waiting.

    python experiments/benchmark.py --device cpu
    python experiments/benchmark.py --device cpu --model pix2pix
    python experiments/benchmark.py --device cuda --image-size 64 --channels 3 --batch-size 512
    python experiments/benchmark.py --device cuda --model cyclegan   # 256x256 RGB, batch 1
    python experiments/benchmark.py --device cpu --compile           # both loops torch.compile'd
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `gans`, not an installed one
from gans import losses
from gans.data.base import InMemoryImageDataModule, to_float
from gans.data.two_domains import ImagePairsDataModule
from gans.models.cyclegan import CycleGAN, lsgan_generator_loss
from gans.models.base import COMPILE_MODES, _called_modules
from gans.models.dcgan import DCGAN
from gans.models.image_pool import ImagePool
from gans.models.pix2pix import Pix2Pix
from gans.nets.dcgan import Discriminator, Generator
from gans.nets.patchgan import PatchDiscriminator
from gans.nets.resnet import ResnetGenerator
from gans.nets.unet import UnetGenerator

# Per model: (image size, channels, batch size) on cpu and on cuda, and (warmup, steps) on cpu and on cuda.
DEFAULTS = {
    "dcgan": {"cpu": (28, 1, 64), "cuda": (28, 1, 64), "steps": {"cpu": (5, 60), "cuda": (30, 300)}},
    "pix2pix": {"cpu": (32, 1, 64), "cuda": (256, 3, 1), "steps": {"cpu": (3, 20), "cuda": (30, 300)}},
    "cyclegan": {"cpu": (32, 1, 16), "cuda": (256, 3, 1), "steps": {"cpu": (3, 20), "cuda": (30, 300)}},
}


def random_images(shape: tuple[int, ...], seed: int = 0) -> Tensor:
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


class RandomImages(InMemoryImageDataModule):
    """Random uint8 images: the content does not change the arithmetic being timed."""

    name = "random"

    def __init__(self, num: int, channels: int, image_size: int, **kwargs) -> None:
        super().__init__(val_size=0, **kwargs)
        self.shape = (num, channels, image_size, image_size)

    def load(self):
        images = random_images(self.shape)
        return images, torch.zeros(len(images), dtype=torch.long), None, None


def random_pairs(num: int, channels: int, image_size: int) -> tuple[Tensor, Tensor]:
    shape = (num, channels, image_size, image_size)
    return random_images(shape, 0), random_images(shape, 1)


class RandomPairs(ImagePairsDataModule):
    """Random uint8 domains A and B through the real two-domain training path (no jitter)."""

    name = "random_pairs"

    def __init__(self, num: int, paired: bool, **kwargs) -> None:
        super().__init__(load_size=None, jitter=False, **kwargs)
        self.num, self.paired = num, paired

    def load_pairs(self) -> dict[str, tuple[Tensor, Tensor]]:
        a, b = random_pairs(self.num, self.channels, self.image_size)
        evaluation = (a[: self.eval_batch_size], b[: self.eval_batch_size])  # unused: no validation
        return {"train": (a, b), "validate": evaluation, "test": evaluation}


def networks(args) -> tuple[nn.Module, nn.Module]:
    """The model's networks as its conf/model/*.yaml builds them, seeded alike for both loops."""
    torch.manual_seed(0)
    size, ch, width = args.image_size, args.channels, args.width
    if args.model == "pix2pix":
        return (
            UnetGenerator(size, ch, width=width, norm="batch", dropout=0.5, dropout_layers=3),
            PatchDiscriminator(ch, condition_channels=ch, width=width, n_layers=None, norm="batch", image_size=size),
        )
    if args.model == "cyclegan":
        return (
            nn.ModuleDict({d: ResnetGenerator(size, ch, width=width, norm="instance") for d in ("A2B", "B2A")}),
            nn.ModuleDict(
                {d: PatchDiscriminator(ch, width=width, n_layers=None, norm="instance", image_size=size) for d in "AB"}
            ),
        )
    return (
        Generator(args.latent_dim, args.image_size, args.channels, args.width),
        Discriminator(args.image_size, args.channels, args.width),
    )


def adam(params):
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


def clocks() -> tuple[float, float]:
    """(wall time, this process's CPU time): on a CPU shared with other jobs the CPU time of a
    one-thread run (OMP_NUM_THREADS=1) counts only the work done, not the time the job waited."""
    return time.perf_counter(), time.process_time()


def speeds(start: tuple[float, float], images: int) -> dict[str, float]:
    """Images per second of wall time ("wall") and of CPU time ("cpu") since `start`."""
    wall, cpu = clocks()
    return {"wall": images / (wall - start[0]), "cpu": images / (cpu - start[1])}


class StepTimer(L.Callback):
    """Times training batches warmup..warmup+steps (device synchronised at both ends)."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps, self.start, self.speeds = warmup, steps, None, None
        self.images = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            _sync(pl_module.device)
            self.start = clocks()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.warmup + self.steps - 1:
            _sync(pl_module.device)
            self.speeds = speeds(self.start, self.images)
            trainer.should_stop = True


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def framework_model_and_data(args) -> tuple[L.LightningModule, L.LightningDataModule]:
    generator, discriminator = networks(args)
    common = {"eval_fid": False, "channels_last": args.channels_last, "compile": args.compile or False}
    n = args.batch_size * (args.warmup + args.steps + 1)
    if args.model == "dcgan":
        model = DCGAN(generator, discriminator, adam, adam, **common)
        return model, RandomImages(n, args.channels, args.image_size, batch_size=args.batch_size)
    if args.model == "pix2pix":
        model = Pix2Pix(generator, discriminator, adam, adam, lambda_l1=100.0, **common)
    else:
        model = CycleGAN(
            generator, discriminator, adam, adam, lambda_cycle=10.0, lambda_identity=0.5, pool_size=50, **common
        )
    data = RandomPairs(
        n, args.model == "pix2pix", image_size=args.image_size, channels=args.channels, batch_size=args.batch_size
    )
    return model, data


def time_framework(args) -> dict[str, float]:
    model, data = framework_model_and_data(args)
    timer = StepTimer(args.warmup, args.steps)
    timer.images = args.batch_size * args.steps
    trainer = L.Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu",
        devices=1,
        precision=args.precision,
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=args.log_every,
        use_distributed_sampler=False,
        benchmark=args.device == "cuda",
        callbacks=[timer],
    )
    trainer.fit(model, datamodule=data)
    return timer.speeds


def plain_dcgan(args, device, autocast, generator, discriminator, n) -> Callable[[int], None]:
    opt_g, opt_d = adam(generator.parameters()), adam(discriminator.parameters())
    images = RandomImages(n, args.channels, args.image_size).load()[0].to(device)
    order = torch.randperm(n, device=device)

    def step(i: int) -> None:
        real = to_float(images[order[i * args.batch_size : (i + 1) * args.batch_size]])
        if args.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        with autocast():
            z = torch.randn(args.batch_size, args.latent_dim, device=device)
            with torch.no_grad():
                fake = generator(z)
            d_loss = losses.bce_discriminator_loss(discriminator(real), discriminator(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        discriminator.requires_grad_(False)
        with autocast():
            z = torch.randn(args.batch_size, args.latent_dim, device=device)
            g_loss = losses.nonsaturating_generator_loss(discriminator(generator(z)))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        discriminator.requires_grad_(True)

    return step


def plain_pairs(args, device, n: int, paired: bool) -> Callable[[int], tuple[Tensor, Tensor]]:
    """batch(i) -> (A, B) float in [-1, 1]: one shuffled order (paired) or one per domain (unpaired)."""
    a, b = (x.to(device) for x in random_pairs(n, args.channels, args.image_size))
    order_a = torch.randperm(n, device=device)
    order_b = order_a if paired else torch.randperm(n, device=device)

    def batch(i: int) -> tuple[Tensor, Tensor]:
        rows = slice(i * args.batch_size, (i + 1) * args.batch_size)
        real_a, real_b = to_float(a[order_a[rows]]), to_float(b[order_b[rows]])
        if args.channels_last:
            real_a, real_b = (x.contiguous(memory_format=torch.channels_last) for x in (real_a, real_b))
        return real_a, real_b

    return batch


def plain_pix2pix(args, device, autocast, generator, discriminator, n) -> Callable[[int], None]:
    opt_g, opt_d = adam(generator.parameters()), adam(discriminator.parameters())
    batch = plain_pairs(args, device, n, paired=True)

    def step(i: int) -> None:
        real_a, real_b = batch(i)
        with autocast():
            fake_b = generator(real_a)  # once per step: D learns on it detached, then G through it
            real_logits = discriminator(torch.cat([real_a, real_b], dim=1))
            fake_logits = discriminator(torch.cat([real_a, fake_b.detach()], dim=1))
            d_loss = 0.5 * losses.bce_discriminator_loss(real_logits, fake_logits)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        discriminator.requires_grad_(False)
        with autocast():
            adversarial = losses.nonsaturating_generator_loss(discriminator(torch.cat([real_a, fake_b], dim=1)))
            g_loss = adversarial + 100.0 * losses.l1_loss(fake_b, real_b)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        discriminator.requires_grad_(True)

    return step


def plain_cyclegan(args, device, autocast, generator, discriminator, n) -> Callable[[int], None]:
    opt_g, opt_d = adam(generator.parameters()), adam(discriminator.parameters())
    batch = plain_pairs(args, device, n, paired=False)
    G, F, D_A, D_B = generator["A2B"], generator["B2A"], discriminator["A"], discriminator["B"]
    pools = {"A": ImagePool(50), "B": ImagePool(50)}

    def step(i: int) -> None:
        real_a, real_b = batch(i)
        discriminator.requires_grad_(False)
        with autocast():
            fake_b, fake_a = G(real_a), F(real_b)
            adversarial = lsgan_generator_loss(D_B(fake_b)) + lsgan_generator_loss(D_A(fake_a))
            cycle = losses.l1_loss(F(fake_b), real_a) + losses.l1_loss(G(fake_a), real_b)
            identity = losses.l1_loss(G(real_b), real_b) + losses.l1_loss(F(real_a), real_a)
            g_loss = adversarial + 10.0 * cycle + 5.0 * identity
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        discriminator.requires_grad_(True)
        with autocast():
            d_loss = losses.least_squares_discriminator_loss(D_A(real_a), D_A(pools["A"].query(fake_a)))
            d_loss = d_loss + losses.least_squares_discriminator_loss(D_B(real_b), D_B(pools["B"].query(fake_b)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

    return step


PLAIN = {"dcgan": plain_dcgan, "pix2pix": plain_pix2pix, "cyclegan": plain_cyclegan}


def time_plain(args) -> dict[str, float]:
    device = torch.device(args.device)
    generator, discriminator = (net.to(device) for net in networks(args))
    if args.channels_last:
        generator, discriminator = (net.to(memory_format=torch.channels_last) for net in (generator, discriminator))
    if args.compile:  # as `model.compile` does: each called network in place
        for net in (generator, discriminator):
            for module in _called_modules(net):
                module.compile(mode=args.compile)
    n = args.batch_size * (args.warmup + args.steps + 1)
    autocast_dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(args.precision)

    def autocast():
        return torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)

    step = PLAIN[args.model](args, device, autocast, generator, discriminator, n)
    for i in range(args.warmup):
        step(i)
    _sync(device)
    start = clocks()
    for i in range(args.warmup, args.warmup + args.steps):
        step(i)
    _sync(device)
    return speeds(start, args.batch_size * args.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(DEFAULTS), default="dcgan")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--image-size", type=int, default=None, help="default per model and device")
    parser.add_argument("--channels", type=int, default=None, help="default per model and device")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=None, help="default per model and device")
    parser.add_argument("--precision", default=None, help="32-true, bf16-mixed, 16-mixed (default: bf16 on cuda)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--log-every", type=int, default=50, help="the framework's log_every_n_steps")
    parser.add_argument(
        "--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES,
        help="torch.compile the networks of both loops (the framework's model.compile), optionally with a mode",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each; medians reported")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    defaults = DEFAULTS[args.model]
    for name, value in zip(("image_size", "channels", "batch_size"), defaults[args.device]):
        setattr(args, name, value if getattr(args, name) is None else getattr(args, name))
    warmup, steps = defaults["steps"][args.device]
    args.precision = args.precision or ("bf16-mixed" if cuda else "32-true")
    args.channels_last = cuda if args.channels_last is None else args.channels_last
    args.warmup = args.warmup if args.warmup is not None else warmup
    args.steps = args.steps if args.steps is not None else steps
    if cuda:
        torch.backends.cudnn.benchmark = True
    setup = {k: v for k, v in vars(args).items()}
    setup["device_name"] = torch.cuda.get_device_name() if cuda else f"cpu x{torch.get_num_threads()} threads"
    print(json.dumps({"setup": setup, "torch": torch.__version__, "lightning": L.__version__}), flush=True)
    runs = []
    for repeat in range(args.repeats):
        # Each repeat times the two back to back, so that the machine's load (shared CPUs) hits a
        # pair alike; ratios and overheads are medians over the pairs, not ratios of medians.
        plain, plain_peak = peak_memory(time_plain, args)
        framework, framework_peak = peak_memory(time_framework, args)
        run = {"repeat": repeat}
        if args.device == "cuda":
            run["framework_peak_memory_gib"], run["plain_peak_memory_gib"] = framework_peak, plain_peak
        for clock in ("wall", "cpu"):
            prefix = "" if clock == "wall" else "cpu_"
            f, p = framework[clock], plain[clock]
            run[f"{prefix}framework_img_per_s"], run[f"{prefix}plain_img_per_s"] = round(f, 1), round(p, 1)
            run[f"{prefix}ratio"] = round(f / p, 4)
            # The framework's extra time per iteration over the plain loop (host time on a small model).
            run[f"{prefix}overhead_ms_per_iteration"] = round(1000.0 * args.batch_size * (1.0 / f - 1.0 / p), 3)
        runs.append(run)
        print(json.dumps(run), flush=True)
    result = {key: round(median([run[key] for run in runs]), 4) for key in runs[0] if key != "repeat"}
    result["plain_ms_per_iteration"] = round(1000.0 * args.batch_size / result["plain_img_per_s"], 3)
    print(json.dumps(result), flush=True)

def peak_memory(timed: Callable, args) -> tuple[dict[str, float], float | None]:
    """`timed(args)`, and on CUDA the peak GPU memory (GiB) allocated during it."""
    if args.device != "cuda":
        return timed(args), None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    speed = timed(args)
    return speed, round(torch.cuda.max_memory_allocated() / 2**30, 3)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])

if __name__ == "__main__":
    main()
