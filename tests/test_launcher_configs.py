"""The SLURM launcher config (conf/hydra/launcher/slurm.yaml) composes over the submitit
plugin's schema and becomes the sbatch script a cluster would get (no SLURM needed)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from plankflux.layout import CONFIG_DIR

submitit = pytest.importorskip("submitit")


def _launcher(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", *overrides],
            return_hydra_config=True,
        )
    with_sweep = OmegaConf.merge(
        cfg, {"hydra": {"sweep": {"dir": "/sweep"}, "job": {"name": "train"}}}
    )
    return OmegaConf.to_container(with_sweep.hydra.launcher, resolve=True)


def test_slurm_defaults_follow_the_trainer():
    launcher = _launcher("trainer=ddp", "trainer.devices=4")
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert launcher["tasks_per_node"] == launcher["gpus_per_node"] == 4  # one task per rank
    assert (launcher["timeout_min"], launcher["cpus_per_task"], launcher["mem_gb"]) == (1440, 8, 64)
    assert launcher["array_parallelism"] == 32 and launcher["setup"] == []
    assert _launcher()["tasks_per_node"] == 1


def test_slurm_settings_become_the_sbatch_script(tmp_path, monkeypatch):
    from submitit.slurm import slurm

    monkeypatch.setattr(slurm.SlurmExecutor, "affinity", staticmethod(lambda: 1))  # "srun found"
    launcher = _launcher(
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=90",
        "hydra.launcher.setup=[module load cuda]",
    )
    # What the plugin does with these (hydra_submitit_launcher.submitit_launcher.launch).
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    base = set(OmegaConf.structured(BaseQueueConf).keys())
    init = {"submitit_folder", "max_num_timeout"}
    params = {
        (k if k in base else f"slurm_{k}"): v
        for k, v in launcher.items()
        if k not in init and k != "_target_"
    }
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="slurm")
    executor.update_parameters(**params)  # refuses unknown settings
    script = executor._executor._make_submission_file_text("plankflux-train", "uid")
    assert "#SBATCH --partition=gpu" in script
    assert "#SBATCH --time=90" in script
    assert "#SBATCH --cpus-per-task=8" in script
    assert "#SBATCH --ntasks-per-node=1" in script
    assert "module load cuda" in script
