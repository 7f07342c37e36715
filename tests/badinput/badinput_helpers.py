"""The workspace every bad-input case starts from, and the checks every case must pass.

A workspace (``ws``) holds a valid small campaign (``camp/``), a score table of two
members (``scores.parquet``), a finished proposal folder made from it (``prop/``) and,
for the cases that need one, member checkpoints. A case breaks one thing in its own
copy, runs one ``plankflux`` command in-process, and :func:`run_and_check` asserts
what the issue asks of every refusal: a non-zero exit, a message naming the file and
the row/column/value, no traceback, every input file byte-identical, nothing written
outside the command's output folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from plankflux.cli.main import main
from plankflux.data.classes import TRAP_CLASSES

PLANKFLUX = str(Path(sys.executable).parent / "plankflux")


@dataclass(frozen=True)
class Case:
    """One broken or hostile input.

    ``argv``: the command, with ``{ws}`` for the workspace; ``expect``: a regular
    expression the error output must match (the file and the row, column or value);
    ``outputs``: paths below ``ws`` the command may write; ``accepted``: the input is
    a documented, accepted variant (exit 0) instead of a refusal; ``own_process``: run
    as a new process, for the errors Hydra reports itself before any plankflux code
    runs (its report, clean on a terminal, is not reproducible in-process).
    """

    id: str
    break_it: Callable[[Path], object]
    argv: Sequence[str]
    expect: str
    outputs: Sequence[str] = field(default_factory=tuple)
    accepted: bool = False
    own_process: bool = False


def snapshot(root: Path) -> dict[str, str]:
    """Every file and link below ``root``: relative path -> sha256 (or link target)."""
    state = {}
    for folder, subfolders, files in os.walk(root):
        for name in subfolders + files:
            path = Path(folder, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                state[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def run_cli(argv: Sequence[str], own_process: bool = False) -> int:
    """``plankflux ARGV`` in this process (or a new one); its exit status."""
    if own_process:
        done = subprocess.run([PLANKFLUX, *argv], capture_output=True, text=True, timeout=300)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        return done.returncode
    # Hydra's console handlers of an earlier in-process run write to a stream pytest has
    # closed since; drop them so their "Logging error" does not pass for a traceback.
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False):
            root.removeHandler(handler)
    saved = sys.argv[:]
    try:
        return main(list(argv))
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    finally:
        sys.argv = saved


def run_and_check(case: Case, tmp_path: Path, ws: Path, capsys) -> str:
    """Run ``case`` in ``ws`` (cwd), check every promise; return the error output."""
    case.break_it(ws)
    before = snapshot(tmp_path)
    argv = [a.format(ws=ws) for a in case.argv]
    capsys.readouterr()
    code = run_cli(argv, case.own_process)
    out, err = capsys.readouterr()
    after = snapshot(tmp_path)
    text = out + err
    assert "Traceback" not in text, text
    if not case.own_process:
        assert "HYDRA_FULL_ERROR" not in text, text
    if case.accepted:
        assert code == 0, text
    else:
        assert code != 0, f"accepted silently: {text}"
        assert re.search(case.expect, err, re.DOTALL), f"message lacks {case.expect!r}: {err}"
    allowed = [str(Path("ws", o)) for o in case.outputs] + ["ws/logs", "ws/data/.cache"]
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    stray = [p for p in changed if not any(p == a or p.startswith(a + os.sep) for a in allowed)]
    assert not stray, f"written or changed outside the output folder: {stray}"
    return err


def scores_for(campaign: Path, n_members: int = 2) -> pd.DataFrame:
    """Scores that favour each labelled particle's label (uniform for unlabelled)."""
    particles = pd.read_csv(campaign / "particles.csv", dtype=str, keep_default_na=False)
    rows = []
    for member in range(n_members):
        for pid, label in zip(particles["particle_id"], particles["label"], strict=True):
            scores = np.full(len(TRAP_CLASSES), 0.2 / len(TRAP_CLASSES))
            scores[TRAP_CLASSES.index(label or "aggregate")] += 0.8
            rows.append(
                {
                    "particle_id": pid,
                    "member": member,
                    **dict(zip(TRAP_CLASSES, scores, strict=True)),
                }
            )
    return pd.DataFrame(rows)


def edit_csv(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(frame).to_csv(path, index=False)


def set_cell(path: Path, row: int, column: str, value: str) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame

    edit_csv(path, edit)
