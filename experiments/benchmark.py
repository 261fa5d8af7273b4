"""Training throughput of the framework's DCGAN against a plain PyTorch loop of the same networks.

Both run in this process, on the same device, batch, precision and memory format, on the same
in-memory images: the framework through `lightning.Trainer.fit` with `gans.models.dcgan.DCGAN`
(manual optimization, toggling, logging every `--log-every` steps), the plain loop as the
shortest correct PyTorch code of the same algorithm (Goodfellow et al. 2014, Algorithm 1 with
fresh noise for each update). Prints JSON lines; the last holds framework_img_per_s,
plain_img_per_s and ratio.

    python experiments/benchmark.py --device cpu
    python experiments/benchmark.py --device cuda --image-size 64 --channels 3 --batch-size 512
"""

from __future__ import annotations

import argparse
import json
import time

import lightning as L
import torch
from torch import nn

from gans import losses
from gans.data.base import InMemoryImageDataModule, to_float
from gans.models.dcgan import DCGAN
from gans.nets.dcgan import Discriminator, Generator


class RandomImages(InMemoryImageDataModule):
    """Random uint8 images: the content does not change the arithmetic being timed."""

    name = "random"

    def __init__(self, num: int, channels: int, image_size: int, **kwargs) -> None:
        super().__init__(val_size=0, **kwargs)
        self.shape = (num, channels, image_size, image_size)

    def load(self):
        images = torch.randint(0, 256, self.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        return images, torch.zeros(len(images), dtype=torch.long), None, None


def networks(args) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return (
        Generator(args.latent_dim, args.image_size, args.channels, args.width),
        Discriminator(args.image_size, args.channels, args.width),
    )


def adam(params):
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


class StepTimer(L.Callback):
    """Wall time of training batches warmup..warmup+steps (device synchronised at both ends)."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps, self.start, self.seconds = warmup, steps, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            _sync(pl_module.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.warmup + self.steps - 1:
            _sync(pl_module.device)
            self.seconds = time.perf_counter() - self.start
            trainer.should_stop = True


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_framework(args) -> float:
    generator, discriminator = networks(args)
    model = DCGAN(generator, discriminator, adam, adam, eval_fid=False, channels_last=args.channels_last)
    n = args.batch_size * (args.warmup + args.steps + 1)
    data = RandomImages(n, args.channels, args.image_size, batch_size=args.batch_size)
    timer = StepTimer(args.warmup, args.steps)
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
    return args.batch_size * args.steps / timer.seconds


def time_plain(args) -> float:
    device = torch.device(args.device)
    generator, discriminator = (net.to(device) for net in networks(args))
    if args.channels_last:
        generator, discriminator = (net.to(memory_format=torch.channels_last) for net in (generator, discriminator))
    opt_g, opt_d = adam(generator.parameters()), adam(discriminator.parameters())
    n = args.batch_size * (args.warmup + args.steps + 1)
    images = RandomImages(n, args.channels, args.image_size).load()[0].to(device)
    autocast_dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(args.precision)
    order = torch.randperm(n, device=device)

    def step(i: int) -> None:
        real = to_float(images[order[i * args.batch_size : (i + 1) * args.batch_size]])
        if args.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            z = torch.randn(args.batch_size, args.latent_dim, device=device)
            with torch.no_grad():
                fake = generator(z)
            d_loss = losses.bce_discriminator_loss(discriminator(real), discriminator(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        discriminator.requires_grad_(False)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            z = torch.randn(args.batch_size, args.latent_dim, device=device)
            g_loss = losses.nonsaturating_generator_loss(discriminator(generator(z)))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        discriminator.requires_grad_(True)

    for i in range(args.warmup):
        step(i)
    _sync(device)
    start = time.perf_counter()
    for i in range(args.warmup, args.warmup + args.steps):
        step(i)
    _sync(device)
    return args.batch_size * args.steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default=None, help="32-true, bf16-mixed, 16-mixed (default: bf16 on cuda)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--log-every", type=int, default=50, help="the framework's log_every_n_steps")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each; medians reported")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    args.precision = args.precision or ("bf16-mixed" if cuda else "32-true")
    args.channels_last = cuda if args.channels_last is None else args.channels_last
    args.warmup = args.warmup if args.warmup is not None else (30 if cuda else 5)
    args.steps = args.steps if args.steps is not None else (300 if cuda else 60)
    if cuda:
        torch.backends.cudnn.benchmark = True
    setup = {k: v for k, v in vars(args).items()}
    setup["device_name"] = torch.cuda.get_device_name() if cuda else f"cpu x{torch.get_num_threads()} threads"
    print(json.dumps({"setup": setup, "torch": torch.__version__, "lightning": L.__version__}), flush=True)
    framework, plain = [], []
    for repeat in range(args.repeats):
        plain.append(time_plain(args))
        framework.append(time_framework(args))
        print(
            json.dumps({"repeat": repeat, "framework_img_per_s": framework[-1], "plain_img_per_s": plain[-1]}),
            flush=True,
        )
    f, p = sorted(framework)[len(framework) // 2], sorted(plain)[len(plain) // 2]
    print(json.dumps({"framework_img_per_s": round(f, 1), "plain_img_per_s": round(p, 1), "ratio": round(f / p, 4)}))


if __name__ == "__main__":
    main()
