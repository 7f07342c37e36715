"""The pipeline killed (SIGKILL) at a write of every stage, then rerun, ends with
byte-identical outputs to an uninterrupted run, and no temporary file survives.

Every output of the pipeline reaches its place through ``os.replace`` (atomic writes,
proposal copies). A forked child runs the pipeline with the oracle training stage of
``test_pipeline_orchestration`` and kills itself with SIGKILL just before its k-th
``os.replace``, leaving the temporary file of that write behind; another child resumes.
The k are the first write into each stage's output (``ood/``, ``proposals/``,
``verified.csv``, ``minboost/``, ..., ``summary.json``) and the last write of all. The
kill during real training is in ``tests/e2e/test_pipeline_kill.py``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest
from test_pipeline_orchestration import OracleEnsemble, _settings

from plankflux.data.campaign import load_campaign
from plankflux.layout import Workspace
from plankflux.runs.pipeline import run_pipeline


def _child(root: str, campaign_root: str, kill_at: int, log: str) -> None:
    """Run the pipeline into ``root``; SIGKILL before the ``kill_at``-th os.replace
    (0 = never); append each replace destination to ``log``."""
    real_replace = os.replace
    count = 0

    def replace(src, dst, *args, **kwargs):
        nonlocal count
        count += 1
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        with open(log, "a") as handle:
            handle.write(f"{Path(dst).relative_to(root)}\n")
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
    campaign = load_campaign(campaign_root, check_images="none")
    run_pipeline(_settings(), campaign, Workspace(Path(root)), OracleEnsemble(campaign, "RR"))


def _run(root: Path, campaign: Path, kill_at: int = 0) -> tuple[int, list[str]]:
    log = root.with_suffix(".log")
    process = multiprocessing.get_context("fork").Process(
        target=_child, args=(str(root), str(campaign), kill_at, str(log))
    )
    process.start()
    process.join(600)
    return process.exitcode, log.read_text().splitlines() if log.exists() else []


def _outputs(root: Path) -> dict[str, str]:
    """sha256 of every output file (summary.json without its absolute paths)."""
    digests = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name == "summary.json":
            summary = json.loads(data)
            summary.pop("flux_dir", None)
            data = json.dumps(summary, sort_keys=True).encode()
        digests[str(path.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return digests


def _stage(destination: str) -> str:
    parts = Path(destination).parts
    return "/".join(parts[:2]) if parts[0] == "retrain" else parts[0]


@pytest.fixture(scope="module")
def reference(tiny_campaign, tmp_path_factory):
    root = tmp_path_factory.mktemp("faults") / "reference"
    code, writes = _run(root, tiny_campaign)
    assert code == 0 and writes
    first_per_stage = {}
    for k, destination in enumerate(writes, start=1):
        first_per_stage.setdefault(_stage(destination), k)
    return root, writes, sorted({*first_per_stage.values(), len(writes)})


def test_every_stage_is_a_kill_point(reference):
    _, writes, kill_points = reference
    stages = {_stage(writes[k - 1]) for k in kill_points}
    # (The oracle writes its score tables directly, so the training stages show up only
    # through their labels; real training is killed in tests/e2e/test_pipeline_kill.py.)
    assert {"proposals", "verified.csv", "minboost", "minboost_verified.csv"} <= stages
    assert {"labels_verify.csv", "labels_minboost.csv", "flux", "summary.json"} <= stages


@pytest.mark.slow
def test_killed_at_any_stage_resumes_to_identical_outputs(reference, tiny_campaign, tmp_path):
    root, _, kill_points = reference
    expected = _outputs(root)
    for k in kill_points:
        work = tmp_path / f"killed_{k}"
        code, _ = _run(work, tiny_campaign, kill_at=k)
        assert code == -signal.SIGKILL, f"kill point {k}: exit {code}"
        code, _ = _run(work, tiny_campaign)
        assert code == 0, f"resume after kill point {k}: exit {code}"
        assert _outputs(work) == expected, f"kill point {k}"
