"""gans/__init__.py: Lightning's NVML-based CUDA check, dropped only where NVML cannot load."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import gans


def test_importing_gans_leaves_the_nvml_check_only_where_nvml_loads():
    code = "import os, gans; print(os.environ.get('PYTORCH_NVML_BASED_CUDA_CHECK'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    expected = "1" if gans.nvml_loadable() or not torch.backends.cuda.is_built() else "None"
    assert out == expected


@pytest.mark.parametrize("loadable", [True, False])
def test_the_variable_is_dropped_only_without_nvml(monkeypatch, loadable):
    monkeypatch.setenv(gans.NVML_CHECK, "1")
    monkeypatch.setattr(gans, "nvml_loadable", lambda: loadable)
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    gans.drop_nvml_check_without_driver()
    assert (gans.NVML_CHECK in os.environ) is loadable
    monkeypatch.setenv(gans.NVML_CHECK, "0")  # a user's explicit choice other than Lightning's is kept
    gans.drop_nvml_check_without_driver()
    assert os.environ[gans.NVML_CHECK] == "0"
