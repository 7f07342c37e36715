"""``plankflux <verb>``: one command line, Hydra verbs forwarded, errors reported once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plankflux.cli import hydra_tasks
from plankflux.cli.main import HYDRA_VERBS, TOOL_MODULES, build_parser, main


def test_help_lists_every_verb_with_one_line(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    verbs = "train predict pipeline synth validate import campaign stats cache tables knn flux "
    verbs = (verbs + "propose ingest minboost simulate-expert review ecotaxa").split()
    for verb in verbs:
        assert f"\n    {verb}" in out, verb
    assert len(TOOL_MODULES) == 12
    assert all(callable(getattr(hydra_tasks, verb)) for verb in HYDRA_VERBS)


def test_every_tool_parser_knows_its_full_name():
    args = build_parser().parse_args(["tables", "clip", "SWEEP", "--out", "T"])
    assert args.prog == "plankflux tables clip"


def test_train_verb_hands_its_arguments_to_hydra(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLANKFLUX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    argv = ["train", "debug=tiny", "trainer.max_epochs=1", "test=false", f"hydra.run.dir={run}"]
    assert main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_trained"] == 1 and metrics["best_val_loss"] > 0
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "train.log").is_file()
    assert "plankflux train: run folder" in capsys.readouterr().out


def test_a_user_error_in_a_hydra_run_exits_1_with_its_message(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "debug=tiny", "data.root=nowhere", "data.synthesize=null",
            f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert "plankflux train: campaign nowhere: 1 problem(s)" in err
    # No traceback of the error itself (a logging handler left by the previous in-process
    # Hydra run may print one of its own about pytest's closed capture stream).
    assert "campaign folder not found" in err and "CampaignError" not in err


def test_a_file_tool_error_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    assert main(["propose", str(tmp_path / "none.parquet"), "--campaign", str(tmp_path),
                 "--out", str(tmp_path / "p")]) == 1  # fmt: skip
    assert capsys.readouterr().err.startswith("plankflux propose: campaign ")
    monkeypatch.setenv("PLANKFLUX_TRACEBACK", "1")
    with pytest.raises(ValueError, match="campaign folder not found"):
        main(["propose", "x.parquet", "--campaign", str(tmp_path / "no"), "--out", "p"])


def test_in_a_sweep_a_failing_job_does_not_stop_the_others(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "-m", "debug=tiny", "data.synthesize=null", "data.root=nowhere1,nowhere2",
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # fmt: skip
    with pytest.raises(SystemExit) as done:  # Hydra reports a failure once all jobs ran
        main(argv)
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert "plankflux train: campaign nowhere1" in err
    assert "plankflux train: campaign nowhere2" in err


def test_a_config_part_that_cannot_be_built_is_one_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLANKFLUX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    argv = ["train", "debug=tiny", "model.weights=missing.pth", f"hydra.run.dir={tmp_path / 'r'}"]
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert "plankflux train: Error in call to target" in err
    assert "weights file not found: missing.pth" in err and "MissingFileError:" not in err


def test_the_help_needs_no_heavy_import():
    """`plankflux --help` builds every parser without torch, pandas or Hydra (a fresh
    interpreter: this one has them loaded already)."""
    import sys

    code = (
        "import sys; from plankflux.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'pandas', 'hydra', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_constants_written_out_for_the_help_match_the_library():
    from plankflux.cli.tools import import_campaign, stats, tables
    from plankflux.data.readers.common import ZOOSCAN_2400DPI_PIXEL_UM
    from plankflux.data.transforms import RESIZE_MODES
    from plankflux.tables.studies import STUDIES

    assert stats.RESIZE_MODES == tuple(RESIZE_MODES)
    assert tables.STUDY_NAMES == tuple(sorted(STUDIES))
    assert import_campaign.ZOOSCAN_2400DPI_PIXEL_UM == ZOOSCAN_2400DPI_PIXEL_UM


def test_an_error_from_a_dataloader_worker_is_shown_without_the_worker_traceback():
    from plankflux.errors import describe

    worker = ValueError(
        "Caught ValueError in DataLoader worker process 0.\n"
        "Original Traceback (most recent call last):\n"
        '  File "x.py", line 3, in __getitem__\n'
        "    raise ValueError(msg)\n"
        "plankflux.errors.ProblemsError: profile p.csv: 1 problem(s):\n"
        "  p.csv line 3, column 'FWS': not a finite number: 'nan'\n"
    )
    assert describe(worker) == (
        "profile p.csv: 1 problem(s):\n  p.csv line 3, column 'FWS': not a finite number: 'nan'"
    )
    assert describe(ValueError("plain")) == "plain"


def test_the_alias_scripts_check_run_folder_names_before_hydra_makes_a_folder(tmp_path):

    alias = Path(sys.executable).parent / "plankflux-pipeline"
    done = subprocess.run(
        [str(alias), "data=trap", "data.root=x", "target=../../escape"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "plankflux pipeline: target: the value '../../escape' contains a path separator" in (
        done.stderr
    )
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "escape").exists()


def test_tables_study_on_a_folder_that_is_not_a_study_sweep_says_what_it_found(tmp_path, capsys):
    out = tmp_path / "tables"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["tables", "study", str(empty), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "holds no Hydra runs (no .hydra/config.yaml below it)" in err and "--study" not in err
    other = tmp_path / "sweep"
    (other / "0" / ".hydra").mkdir(parents=True)
    (other / "0" / ".hydra" / "config.yaml").write_text("task_name: clip_table2\n")
    assert main(["tables", "study", str(other), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "are ['clip_table2'], not one of Paper A's studies" in err
    assert main(["tables", "study", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "is not a folder" in capsys.readouterr().err
    assert not out.exists()
