#!/usr/bin/env bash
# Paper B, Table 5: CLIP pre-trained on LAB + UTO with the larger image towers, k-NN
# evaluated on SEA and LAB.
#   bash experiments/paper_b/table_5.sh [OVERRIDES...]   # the paper's 18 runs (GPU)
#   bash experiments/paper_b/table_5.sh --demo | --smoke  # LAB + UTO, one tower
# Sweep: $PLANKFLUX_LOG_DIR/paper_b/clip_combined/; table: $OUT/table5.*
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/scale.sh"
SWEEP=$SWEEPS/clip_combined
ARMS=()
[[ $MODE != paper ]] && ARMS=("data=$(data lab_uto)" "$TARGETS.LAB=$(data lab)" "$TARGETS.SEA=$(data sea)")
run train -m experiment=clip_combined ${ARMS[@]+"${ARMS[@]}"} ${CLIP[@]+"${CLIP[@]}"} \
  "hydra.sweep.dir=$SWEEP" ${EXTRA[@]+"${EXTRA[@]}"} \
  || echo "some jobs failed; tabulating the others" >&2
run tables clip "$SWEEP" --out "$OUT" --table 5
