#!/usr/bin/env bash
# Paper B's Tables 2–6 and gallery-size figure at demo scale on a CPU: the synthetic
# LAB-, SEA- and UTO-like sets (720 / 600 / 1,500 pairs at 64 px), EfficientNet-B0 from
# random init (no weights download), one fold, EPOCHS epochs. The sweeps are the paper's
# (experiment=clip_table2, clip_cross_domain, clip_combined, dino_table6) with fewer arms:
#   Tables 2/3: InfoNCE and SigLIP × the three profile towers      6 runs
#   Table 4 + figure: pre-train on LAB and on UTO, k-NN on the rest 2 runs
#   Table 5: pre-train on LAB + UTO, k-NN on SEA and LAB             1 run
#   Table 6: DINO on LAB, image -> image                            1 run
# Then `plankflux tables clip` writes every table into $OUT. About 30–40 min on 2 cores.
# Rerun a part by naming it: bash experiments/paper_b/demo.sh table2 tables
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
export WANDB_MODE=offline
export PLANKFLUX_DATA_DIR=${PLANKFLUX_DATA_DIR:-demo/data}
export PLANKFLUX_LOG_DIR=${PLANKFLUX_LOG_DIR:-demo/logs/paper_b}
EPOCHS=${EPOCHS:-30}
OUT=${OUT:-demo/paper_b_tables}
TRAIN=".venv/bin/plankflux train"
TARGETS=data@callbacks.knn_evaluation.targets
CPU=(trainer=cpu "trainer.max_epochs=$EPOCHS" +trainer.enable_progress_bar=false
     model.image_tower.pretrained=false data.fold=0 data.num_workers=0 data.pin_memory=false)
CROSS=("$TARGETS.LAB=synthetic_lab_demo" "$TARGETS.SEA=synthetic_sea_demo")
parts=("${@:-table2 table4 table5 table6 tables}")

for part in ${parts[@]}; do
  case $part in
    table2) $TRAIN -m experiment=clip_table2 data=synthetic_lab_demo "${CPU[@]}" \
              encoder/image=efficientnet_b0 ;;
    table4) $TRAIN -m experiment=clip_cross_domain data=synthetic_lab_demo,synthetic_uto_demo \
              "${CROSS[@]}" "${CPU[@]}" ;;
    table5) $TRAIN -m experiment=clip_combined data=synthetic_lab_uto_demo \
              encoder/image=efficientnet_b0 "${CROSS[@]}" "${CPU[@]}" ;;
    table6) $TRAIN -m experiment=dino_table6 data=synthetic_lab_demo "${CPU[@]}" \
              encoder/image=efficientnet_b0 data.multicrop.global_size=64 \
              data.multicrop.local_size=28 data.batch_size=64 model.out_dim=4096 ;;
    tables) .venv/bin/plankflux tables clip "$PLANKFLUX_LOG_DIR" --out "$OUT" ;;
    *) echo "unknown part $part (table2 table4 table5 table6 tables)" >&2; exit 2 ;;
  esac
done
