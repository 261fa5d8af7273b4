"""OmegaConf resolvers used by the configs under conf/ (registered before Hydra composes)."""

from __future__ import annotations

import netrc
import os
import socket
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from gans.nets.progan import next_power_of_two


def on_gpu(gpu_value, cpu_value):
    """`${on_gpu:A,B}`: A when a CUDA device is visible, else B (the CPU budget of `make run`)."""
    return gpu_value if torch.cuda.is_available() else cpu_value


def _wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_offline() -> bool:
    """`${wandb_offline:}`: offline unless the user is logged in (or set WANDB_API_KEY) and the
    W&B host answers within two seconds, so a run never waits on the network."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return True
    if not _wandb_credentials():
        return True
    try:
        with socket.create_connection(("api.wandb.ai", 443), timeout=2.0):
            return False
    except OSError:
        return True


def is_multirun(mode) -> bool:
    # `${hydra:mode}` is Hydra's RunMode enum (None when a config is composed outside a run).
    return getattr(mode, "name", str(mode)) == "MULTIRUN"


def sweep_group(mode, sweep_dir) -> str | None:
    """`${sweep_group:${hydra:mode},${hydra:sweep.dir}}`: the W&B group of a `--multirun` job, the
    name of its sweep dir (e.g. `2025-01-31_12-00-00`), so one sweep's runs are one group; None
    (no group) for a single run."""
    return Path(str(sweep_dir)).name if is_multirun(mode) else None


def sweep_run_name(base: str, mode, task_overrides) -> str:
    """`${sweep_run_name:NAME,${hydra:mode},${hydra:overrides.task}}`: NAME for a single run; in a
    sweep, NAME and the overrides this job's sweeper chose, e.g.
    `dcgan-fashion_mnist:model.optimizer_g.lr=0.0001,seed=2`, so the runs of a group tell apart.

    The chosen overrides are those of the job that are not on the command line verbatim (there they
    read `lr=1e-4,2e-4`); overrides shared by every job are left out, the group already says them.
    Where the job runs in another process than the command (e.g. a SLURM launcher), every override
    of the job is shown.
    """
    if not is_multirun(mode):
        return base
    given = {_meaning(o) for o in sys.argv[1:]}
    overrides = [str(o) for o in (task_overrides or [])]
    chosen = [o for o in overrides if _meaning(o) not in given] or overrides
    return f"{base}:{','.join(chosen)}" if chosen else base


def _meaning(override: str) -> tuple[str, str]:
    """(key, parsed value) of a command-line override: a sweeper may pass on an override of the
    command line in other words (Optuna's sweeper writes `model.eval_fid=false` as `...=False`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        (parsed,) = OverridesParser.create().parse_overrides([override])
    except HydraException:  # not an override (e.g. --multirun)
        return override, ""
    return f"{parsed.type.name}:{parsed.key_or_group}", repr(parsed.value())


def padded_power_of_two(side) -> int:
    """`${padded_power_of_two:${data.image_size}}`: the side a network that grows by doubling (ProGAN)
    works at: the data's side if it is a power of two, else the next one when at most 4 pixels away
    (28 -> 32: MNIST-style digits padded by 2 pixels a side, as LeNet-5 padded MNIST); any other side
    is returned as it is, for the network to refuse in one line."""
    side = int(side)
    target = next_power_of_two(side)
    return target if 0 < target - side <= 4 else side


def pick(flag, when_true, when_false):
    """`${pick:${smoke},A,B}`: A when the flag is true (e.g. `debug=smoke` sets `smoke: true`), else B."""
    return when_true if flag in (True, "true", "True") else when_false


def register_resolvers() -> None:
    resolvers = {
        "on_gpu": on_gpu,
        "wandb_offline": wandb_offline,
        "sweep_group": sweep_group,
        "sweep_run_name": sweep_run_name,
        "padded_power_of_two": padded_power_of_two,
        "pick": pick,
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
