"""OmegaConf resolvers used by the configs under conf/ (registered before Hydra composes)."""

from __future__ import annotations

import netrc
import os
import socket

import torch
from omegaconf import OmegaConf


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


def register_resolvers() -> None:
    for name, fn in (("on_gpu", on_gpu), ("wandb_offline", wandb_offline)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
