#!/usr/bin/env bash
# Set up if needed, then run the main job on the embedded synthetic campaign:
# generate the `demo` campaign and train + test one ResNet-18 member on the target domain (RR).
# Everything lands under demo/ (campaign, decoded-image cache, run folders).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WANDB_MODE=offline
export PLANKFLUX_DATA_DIR=${PLANKFLUX_DATA_DIR:-demo/data}
export PLANKFLUX_LOG_DIR=${PLANKFLUX_LOG_DIR:-demo/logs}
.venv/bin/plankflux-train data=synthetic_demo trainer=cpu model.weights=none \
  trainer.max_epochs=${DEMO_EPOCHS:-30} "$@"
