"""Table commands name the runs of a sweep that failed or did not finish."""

from __future__ import annotations

from pathlib import Path

from plankflux.tables.unfinished import describe_unfinished, unfinished_runs


def _job(folder: Path, finished: bool, member: str | None = None) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("seed: 0\n")
    if finished:
        out = folder / member if member else folder
        out.mkdir(exist_ok=True)
        (out / "metrics.json").write_text("{}")
    return folder


def test_unfinished_runs_are_those_without_metrics(tmp_path):
    _job(tmp_path / "0", finished=True)
    failed = _job(tmp_path / "1", finished=False)
    _job(tmp_path / "2", finished=True, member="member_0")  # an ensemble run: metrics per member
    killed = _job(tmp_path / "10", finished=False)
    assert unfinished_runs(tmp_path) == [failed, killed]
    line = describe_unfinished(tmp_path)
    assert line.startswith("2 run(s) unfinished or failed") and str(killed) in line
    assert describe_unfinished(tmp_path / "0") is None
