"""Seeded random damage to valid files: every outcome is a clean accept or a clean
refusal, never a traceback, a changed input or a stray file.

Each seed applies one mutation (bytes deleted, inserted or flipped; a line dropped,
doubled or swapped; a cell replaced with odd text; the file cut short) to one file of
a valid workspace, then runs the command that reads it. A fixed number of seeds keeps
the test bounded and reproducible; a failing seed is reported in the test id.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from badinput_helpers import run_cli, scores_for, snapshot
from campaign_helpers import make_campaign

from plankflux.data.campaign import load_campaign
from plankflux.hitl.steps import propose

N_SEEDS = 200
ODD_TEXT = ["", " ", '"', ",", "\x00", "nan", "-0", "1e400", "../x", "é", "\ufeff", "a\nb", "🦠"]
TARGETS = {
    "camp/particles.csv": ["validate", "{ws}/camp"],
    "camp/samples.csv": ["validate", "{ws}/camp"],
    "camp/images/RR1_1.png": ["validate", "{ws}/camp"],
    "prop/manifest.csv": [
        "ingest",
        "{ws}/prop",
        "--campaign",
        "{ws}/camp",
        "--out",
        "{ws}/out/verified.csv",
    ],
}


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random mutation of ``data``."""
    kind = rng.choice(["delete", "insert", "flip", "drop", "double", "swap", "cell", "cut"])
    if kind in ("delete", "insert", "flip", "cut") or b"\n" not in data:
        at = rng.randrange(max(len(data), 1))
        if kind == "delete":
            return data[:at] + data[at + rng.randint(1, 8) :]
        if kind == "insert":
            return (
                data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + data[at:]
            )
        if kind == "flip" and data:
            return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]
        return data[:at]
    lines = data.split(b"\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    if kind == "drop":
        del lines[i]
    elif kind == "double":
        lines.insert(i, lines[i])
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        cells = lines[i].split(b",")
        cells[rng.randrange(len(cells))] = rng.choice(ODD_TEXT).encode("utf-8")
        lines[i] = b",".join(cells)
    return b"\n".join(lines)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("fuzz") / "ws"
    camp = make_campaign(ws / "camp")
    propose(scores_for(camp), load_campaign(camp), ws / "prop", k=10)
    return ws


@pytest.mark.parametrize("seed", range(N_SEEDS))
def test_random_damage_is_accepted_or_refused_cleanly(seed, template, tmp_path, capsys):
    rng = random.Random(seed)
    ws = tmp_path / "ws"
    shutil.copytree(template, ws)
    target = rng.choice(sorted(TARGETS))
    path = ws / target
    path.write_bytes(mutate(path.read_bytes(), rng))
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = run_cli([a.format(ws=ws) for a in TARGETS[target]])
    out, err = capsys.readouterr()
    after = snapshot(tmp_path)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert code in (0, 1), out + err
    assert "Traceback" not in out + err
    if code == 1:
        assert "problem(s)" in err or err.startswith("plankflux "), err
    assert all(p.startswith("ws/out") for p in changed), changed
