"""The human-in-the-loop commands, as a user types them (in-process)."""

from __future__ import annotations

import pandas as pd
from hitl_helpers import checksums

from plankflux.cli.main import main
from plankflux.data.campaign import load_campaign
from plankflux.data.classes import TRAP_CLASSES


def _scores(campaign_root, path):
    """Two members; particle 3 not unanimous; the rest 'aggregate' or 'long_pellet'."""
    ids = load_campaign(campaign_root).particles["particle_id"].tolist()
    rows = []
    for member in (0, 1):
        for i, pid in enumerate(ids):
            row = dict.fromkeys(TRAP_CLASSES, 0.01)
            cls = "aggregate" if i % 2 == 0 else "long_pellet"
            if i == 3 and member == 1:
                cls = "noise"
            row[cls] = 0.9 - 0.1 * i
            rows.append({"particle_id": pid, "member": member, **row})
    pd.DataFrame(rows).to_parquet(path, index=False)


def test_propose_simulate_ingest_minboost(small_campaign, tmp_path, capsys):
    before = checksums(small_campaign)
    scores = tmp_path / "scores.parquet"
    _scores(small_campaign, scores)
    c = ["--campaign", str(small_campaign)]
    top = tmp_path / "top"

    assert main(["propose", str(scores), *c, "--out", str(top), "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote 4 proposals into {top}: ")
    assert "only particles every member puts in the same class are proposed" in out
    assert main(["simulate-expert", str(top), *c]) == 0
    assert "shown 4, confirmed" in capsys.readouterr().out
    assert main(["ingest", str(top), *c]) == 0
    assert f"wrote {tmp_path / 'top.verified.csv'}: 4 particles" in capsys.readouterr().out
    verified = pd.read_csv(tmp_path / "top.verified.csv", dtype=str, keep_default_na=False)
    assert len(verified) == 4

    boost = tmp_path / "boost"
    args = ["minboost", str(scores), *c, "--verified", str(tmp_path / "top.verified.csv")]
    args += ["--shown", str(top / "manifest.csv"), "--out", str(boost), "--k", "6"]
    assert main(args) == 0
    manifest = pd.read_csv(boost / "manifest.csv", dtype=str)
    assert not set(manifest["particle_id"]) & set(verified["particle_id"])
    assert (manifest["round"] == "minboost").all()
    assert main(["simulate-expert", str(boost), *c, "--mode", "minboost"]) == 0
    b_csv = str(tmp_path / "b.csv")
    assert main(["ingest", str(boost), *c, "--mode", "minboost", "--out", b_csv]) == 0
    assert (tmp_path / "b.csv").exists()
    assert checksums(small_campaign) == before


def test_errors_exit_1_with_every_path(small_campaign, tmp_path, capsys):
    scores = tmp_path / "scores.parquet"
    _scores(small_campaign, scores)
    top = tmp_path / "top"
    c = ["--campaign", str(small_campaign)]
    assert main(["propose", str(scores), *c, "--out", str(top)]) == 0
    (top / "aggregate" / "stray.png").write_bytes(b"?")
    (top / "dogs").mkdir()
    capsys.readouterr()
    assert main(["ingest", str(top), *c]) == 1
    err = capsys.readouterr().err
    assert str(top / "aggregate" / "stray.png") in err and str(top / "dogs") in err
    assert not (tmp_path / "top.verified.csv").exists()
    # a different proposal set into the same folder is refused
    assert main(["propose", str(scores), *c, "--out", str(top), "--k", "1"]) == 1
    assert "different proposal set" in capsys.readouterr().err
