"""The unpaired folder fixture of the two-domain data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.folders import unpaired_folder


@pytest.fixture
def unpaired_root(tmp_path) -> Path:
    return unpaired_folder(tmp_path / "zebras")
