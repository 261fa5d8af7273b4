"""gans: the GAN family on PyTorch Lightning, composed by Hydra (see README.md)."""

from __future__ import annotations

import ctypes
import os

import lightning.fabric  # noqa: F401  (sets PYTORCH_NVML_BASED_CUDA_CHECK=1 at import)
import torch

NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def nvml_loadable() -> bool:
    """Whether NVIDIA's management library (part of the driver) loads, as torch's NVML check loads it."""
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


def drop_nvml_check_without_driver() -> None:
    """Unset PYTORCH_NVML_BASED_CUDA_CHECK where NVML cannot be loaded.

    Lightning sets it so that `torch.cuda.is_available()` asks NVML rather than initialising
    CUDA before a fork. Without the driver's NVML (a CPU machine with a CUDA build of torch) that
    check tries to dlopen the library on every call and then asks the CUDA runtime anyway, the
    same answer as without the variable; and Adam and AdamW call it in every `step()`: measured
    0.29 ms more per step here (issue 13), paid by every run that imports Lightning. Where NVML
    loads, the variable stays."""
    if os.environ.get(NVML_CHECK) == "1" and torch.backends.cuda.is_built() and not nvml_loadable():
        del os.environ[NVML_CHECK]


drop_nvml_check_without_driver()
