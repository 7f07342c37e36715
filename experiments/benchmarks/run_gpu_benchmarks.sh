#!/usr/bin/env bash
# Issue-15 figures on a GPU machine: every new input path beside today's, in the same
# run, same data, same GPU. JSON (device, versions, batch, precision, img/s per arm)
# goes to ${OUT:-experiments/benchmarks/results}, file names prefixed by ${PREFIX:-gpu_}.
# Needs torch, lightning, torchmetrics, pandas, pillow, scipy and tqdm importable
# (hydra and wandb are not used; the H200 image of this workplace has them all). About
# 10 minutes on one H200 for steps 1-4: name steps to run a part, e.g. `... 1 2` then
# `... 3 4 5 6` (default: all six), so that each call stays well inside a per-call limit.
# Step 4 and 5 compose Hydra configs: where hydra-core and omegaconf are missing (this
# workplace's H200 image), put their wheels on PYTHONPATH first (results/README.md).
set -euo pipefail
steps=" ${*:-1 2 3 4 5 6} "
want() { [[ "$steps" == *" $1 "* ]]; }
cd "$(dirname "$0")/../.."
out=${OUT:-experiments/benchmarks/results}
prefix=${PREFIX:-gpu_}
workers=${WORKERS:-8}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,utilization.gpu --format=csv || true
bench=experiments/benchmarks
# 1. Model-ready batches alone at 224 px: PIL / cache per item / cache + uint8 batches
#    made ready on the GPU.
want 1 && python3 $bench/bench_image_cache.py --scale demo --size 224 --repeats 5 --workers "$workers" \
  --device cuda --out "$out/${prefix}image_cache_224px_workers${workers}.json"
# 2. ResNet-18 training at 224 px: today's paths (pil, cache) against uint8 batches
#    augmented on the GPU, channels_last and torch.compile; fp32 and bf16-mixed.
want 2 && python3 $bench/bench_train_throughput.py --scale demo --size 224 --epochs 6 \
  --batch-size 512 --workers "$workers" --accelerator gpu --precision bf16-mixed 32-true \
  --arms pil cache batched batched_cl batched_cl_compile \
  --out "$out/${prefix}train_throughput_224px.json"
# 3. Ensemble prediction (5 members) at 224 px: member-images/s.
want 3 && python3 $bench/bench_predict_throughput.py --scale demo --size 224 --members 5 \
  --batch-size 1024 --workers "$workers" --accelerator gpu --precision bf16-mixed 32-true \
  --out "$out/${prefix}predict_throughput_224px.json"
# 4. Paper B's CLIP step (EfficientNet-B0 + CNN profile, InfoNCE, batch 512, 224 px):
#    the per-pair input path against batched augmentation on the GPU, 0 and 8 workers.
want 4 && python3 $bench/bench_clip_step.py --scale demo --size 224 --batch-size 512 --epochs 3 \
  --workers 0 "$workers" --accelerator gpu --precision bf16-mixed \
  --out "$out/${prefix}clip_step_224px.json"
# 5. The DINO baseline's step (EfficientNet-B0, 2 + 6 multi-crop views, batch 256):
#    views cut per pair in the loader against views cut from whole batches on the GPU.
want 5 && python3 $bench/bench_clip_step.py --experiment dino_lab --scale demo --size 224 \
  --batch-size 256 --epochs 3 --workers "$workers" --accelerator gpu --precision bf16-mixed \
  --out "$out/${prefix}dino_step_224px.json"
# 6. The k-NN gallery grid (9 setups x 5 sizes x 5 draws, 20,000 queries) on the GPU
#    against scikit-learn on the host's cores (scikit-learn must be importable).
want 6 && python3 $bench/bench_knn.py --device cuda --out "$out/${prefix}knn_20k.json"
echo "run_gpu_benchmarks.sh: steps${steps}done, JSON in $out"
