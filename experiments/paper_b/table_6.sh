#!/usr/bin/env bash
# Paper B, Table 6: the image-only DINO baseline against CLIP (InfoNCE) on LAB, I->I.
# The CLIP rows come from the Table 2 sweep: run tables_2_3.sh (same scale) first.
#   bash experiments/paper_b/table_6.sh [OVERRIDES...]   # the paper's 15 runs (GPU)
#   bash experiments/paper_b/table_6.sh --demo | --smoke
# Sweep: $PLANKFLUX_LOG_DIR/paper_b/dino_table6/; table: $OUT/table6.*
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/scale.sh"
SWEEP=$SWEEPS/dino_table6
run train -m experiment=dino_table6 "data=$(data lab)" ${DINO[@]+"${DINO[@]}"} \
  "hydra.sweep.dir=$SWEEP" ${EXTRA[@]+"${EXTRA[@]}"} \
  || echo "some jobs failed; tabulating the others" >&2
run tables clip "$SWEEPS" --out "$OUT" --table 6
