#!/usr/bin/env bash
# The foundation's benchmarks on a GPU machine, with their figures written as JSON into
# ${OUT:-experiments/benchmarks/results}. Needs torch, lightning, torchmetrics, pandas,
# pillow, scipy and tqdm importable (hydra and wandb are not used here).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-experiments/benchmarks/results}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
bench=experiments/benchmarks
# Data loading alone, at the paper's input size, single process and with 8 workers.
python3 $bench/bench_image_cache.py --scale demo --size 224 --epochs 2 --workers 0 \
  --out "$out/image_cache_224px_workers0.json"
python3 $bench/bench_image_cache.py --scale demo --size 224 --epochs 3 --workers 8 \
  --out "$out/image_cache_224px_workers8.json"
# Whole training steps: cache off/on x fp32/bf16-mixed.
python3 $bench/bench_train_throughput.py --scale demo --size 224 --epochs 8 --workers 8 \
  --accelerator gpu --precision 32-true bf16-mixed --out "$out/train_throughput_224px.json"
