"""A non-editable install works outside the repository: the wheel carries the configs.

The wheel is built from this checkout and installed (without dependencies) into a new
virtual environment; the dependencies come from the test environment's site-packages
through a ``.pth`` line (so nothing is downloaded, and the editable install of the
checkout is not visible there). Then the README's first commands run from an empty
folder.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


def test_installed_wheel_trains_and_runs_the_pipeline_from_another_folder(tmp_path):
    # Built from a copy: setuptools leaves build/ and *.egg-info in the folder it builds.
    source = tmp_path / "source"

    def skip(folder: str, names: list[str]) -> set[str]:  # run outputs at the top only
        top = {"build", "data", "logs", "demo"} if Path(folder) == REPO else set()
        return {n for n in names if n.startswith(".") or n.endswith(".egg-info") or n in top}

    shutil.copytree(REPO, source, ignore=skip)
    dist = tmp_path / "dist"
    wheel_cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist)]
    _run([*wheel_cmd, str(source)], tmp_path)
    (wheel,) = dist.glob("plankflux-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    venv_site = Path(_run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                          tmp_path).stdout.strip())  # fmt: skip
    (venv_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
          str(wheel)], tmp_path)  # fmt: skip

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(
        [str(python), "-c", "import plankflux.layout as l; print(l.CONFIG_DIR)"], elsewhere
    )
    assert Path(where.stdout.strip()).is_relative_to(venv_site)  # the wheel's, not the repo's
    assert (Path(where.stdout.strip()) / "train.yaml").is_file()
    static = _run(
        [str(python), "-c", "import plankflux.review.server as s; print(s.STATIC_DIR)"], elsewhere
    )
    assert Path(static.stdout.strip()).is_relative_to(venv_site)  # the review page travels
    for name in ("index.html", "review.js", "review.css"):
        assert (Path(static.stdout.strip()) / name).is_file(), name

    env = {**os.environ, "WANDB_MODE": "offline"}
    plankflux = str(venv / "bin" / "plankflux")
    _run([plankflux, "train", "debug=tiny"], elsewhere, env)
    (run,) = (elsewhere / "logs" / "train" / "runs").iterdir()
    assert (run / "metrics.json").is_file() and (run / "checkpoints" / "best.ckpt").is_file()

    pipeline = _run([plankflux, "pipeline", "experiment=pipeline_demo", "data=synthetic_tiny",
                     "members=[0]", "trainer.max_epochs=1"], elsewhere, env)  # fmt: skip
    assert "target RR, 1 members" in pipeline.stdout
    assert (elsewhere / "logs" / "pipeline" / "RR" / "summary.json").is_file()
    assert (elsewhere / "data" / "synthetic_trap_tiny_seed0" / "particles.csv").is_file()
    # The old console-script names are aliases of the same runs.
    help_text = _run([str(venv / "bin" / "plankflux-train"), "--help"], elsewhere, env).stdout
    assert "train is powered by Hydra" in help_text or "Powered by Hydra" in help_text
