#!/usr/bin/env bash
# Set up if needed, then run the main job on the embedded synthetic campaign: Paper A's
# whole human-in-the-loop pipeline for target domain RR (out-of-domain ensemble -> voting
# proposals -> simulated verification -> minboost -> retraining -> flux tables and
# figures), at a scale that fits a few minutes on 2 CPU cores. Everything lands under
# demo/ (campaign, decoded-image cache, workspace); rerunning resumes / reuses it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WANDB_MODE=offline
export PLANKFLUX_DATA_DIR=${PLANKFLUX_DATA_DIR:-demo/data}
export PLANKFLUX_LOG_DIR=${PLANKFLUX_LOG_DIR:-demo/logs}
.venv/bin/plankflux pipeline experiment=pipeline_demo "$@"
