#!/usr/bin/env bash
# Paper B, Table 4 and the gallery-size figure: CLIP pre-trained on LAB and on UTO,
# k-NN evaluated on the data sets it did not train on (LAB->SEA, UTO->LAB, UTO->SEA).
#   bash experiments/paper_b/table_4_gallery.sh [OVERRIDES...]   # the paper's (GPU)
#   bash experiments/paper_b/table_4_gallery.sh --demo | --smoke
# Sweep: $PLANKFLUX_LOG_DIR/paper_b/clip_cross_domain/; tables: $OUT/table4.*, gallery.*
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/scale.sh"
SWEEP=$SWEEPS/clip_cross_domain
run train -m experiment=clip_cross_domain "data=$(data lab),$(data uto)" \
  "$TARGETS.LAB=$(data lab)" "$TARGETS.SEA=$(data sea)" ${CLIP[@]+"${CLIP[@]}"} \
  "hydra.sweep.dir=$SWEEP" ${EXTRA[@]+"${EXTRA[@]}"} \
  || echo "some jobs failed; tabulating the others" >&2
run tables clip "$SWEEP" --out "$OUT" --table 4 --table gallery
