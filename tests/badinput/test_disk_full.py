"""A full disk (ENOSPC) in the middle of a write leaves no half-written output that a
resumed run would trust: the destination keeps its old content (or stays absent) and
the temporary file is gone."""

from __future__ import annotations

import errno
import shutil

import pandas as pd
import pytest
import torch

from plankflux.hitl import proposals
from plankflux.utils.atomic import atomic_open, remove_partial_writes, write_csv_atomic
from plankflux.utils.checkpoint_io import LocalCheckpointIO


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_a_table_write_that_runs_out_of_space_keeps_the_old_file(tmp_path):
    path = tmp_path / "verified.csv"
    path.write_text("particle_id,label,action\nA,aggregate,confirmed\n")
    with pytest.raises(OSError, match="No space left"):
        with atomic_open(path) as handle:
            handle.write("particle_id,label,action\n")
            _disk_full()
    assert path.read_text() == "particle_id,label,action\nA,aggregate,confirmed\n"
    assert _leftovers(tmp_path) == []


def test_a_new_table_is_absent_after_a_failed_write(tmp_path, monkeypatch):
    monkeypatch.setattr(pd.DataFrame, "to_csv", _disk_full)
    with pytest.raises(OSError):
        write_csv_atomic(pd.DataFrame({"a": [1]}), tmp_path / "summary.csv")
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_write_that_runs_out_of_space_leaves_nothing(tmp_path, monkeypatch):
    def partial_save(obj, f, *args, **kwargs):
        open(f, "wb").write(b"PK\x03\x04 half")
        _disk_full()

    monkeypatch.setattr(torch, "save", partial_save)
    with pytest.raises(OSError):
        LocalCheckpointIO().save_checkpoint({"state_dict": {}}, tmp_path / "best.ckpt")
    assert list(tmp_path.iterdir()) == []


def test_a_proposal_copy_that_runs_out_of_space_is_not_taken_for_a_finished_one(
    tmp_path, monkeypatch
):
    src = tmp_path / "image.png"
    src.write_bytes(b"\x89PNG" + bytes(1000))
    dst = tmp_path / "out" / "aggregate" / "A__image.png"
    dst.parent.mkdir(parents=True)

    def half_copy(source, target, *args, **kwargs):
        shutil.copyfile(source, target)
        with open(target, "r+b") as handle:
            handle.truncate(10)
        _disk_full()

    monkeypatch.setattr(shutil, "copy2", half_copy)
    with pytest.raises(OSError):
        proposals._place(src, dst, link=False)
    assert not dst.exists() and _leftovers(dst.parent) == []
    assert remove_partial_writes(tmp_path) == []
