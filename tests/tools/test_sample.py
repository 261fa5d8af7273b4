"""`python -m gans.sample` (gans/tools/sample.py, and its short name gans/sample.py)."""

from __future__ import annotations

import gans.fid
import gans.sample
import gans.tools.fid
import gans.tools.sample


def test_the_readmes_short_names_run_the_tools():
    assert gans.sample.main is gans.tools.sample.main
    assert gans.fid.main is gans.tools.fid.main


def test_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert gans.tools.sample.main([str(tmp_path / "missing.ckpt"), "3", str(tmp_path / "x.npz")]) == 1
    assert (
        capsys.readouterr().err
        == f"error: {tmp_path / 'missing.ckpt'} does not exist: pass a .ckpt written by run.py\n"
    )
