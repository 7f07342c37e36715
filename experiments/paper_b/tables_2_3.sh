#!/usr/bin/env bash
# Paper B, Tables 2 and 3 (and A.2-A.4): CLIP pre-training on LAB, every loss x image
# tower x profile tower, 5 folds, in-domain k-NN gallery evaluation.
#   bash experiments/paper_b/tables_2_3.sh [OVERRIDES...]   # the paper's 90 runs (GPU)
#   bash experiments/paper_b/tables_2_3.sh --demo          # 2 losses x 3 profile towers, CPU
#   bash experiments/paper_b/tables_2_3.sh --smoke         # 2 losses, tiny towers, 1 epoch
# Sweep: $PLANKFLUX_LOG_DIR/paper_b/clip_table2/; tables: $OUT/table2.*, table3.*
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/scale.sh"
SWEEP=$SWEEPS/clip_table2
ARMS=()
[[ $MODE == smoke ]] && ARMS=(encoder/profile=cnn)
run train -m experiment=clip_table2 "data=$(data lab)" ${CLIP[@]+"${CLIP[@]}"} \
  ${ARMS[@]+"${ARMS[@]}"} "hydra.sweep.dir=$SWEEP" ${EXTRA[@]+"${EXTRA[@]}"} \
  || echo "some jobs failed; tabulating the others" >&2
run tables clip "$SWEEP" --out "$OUT" --table 2 --table 3
