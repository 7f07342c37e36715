#!/usr/bin/env bash
# Paper A, Figures S1-S3: the pre-processing (6 arms), learning-rate (3) and weight-decay
# (3) studies, 5 seeds each; train and validate on FC, FO, JC, SR, test on RR; then one
# table and bar plot per study (precision and recall per class, macro and weighted).
#   bash experiments/paper_a/figures_S1_S3.sh CAMPAIGN [OVERRIDES...]   # the paper's (GPU)
#   bash experiments/paper_a/figures_S1_S3.sh --smoke                   # tiny, 1 seed, 1 epoch
# Sweeps: $PLANKFLUX_LOG_DIR/<study>/multiruns/recipe/; tables: $OUT/figure_S*_<study>.*
# A failed or unfinished job is named by the table command and left out.
source "$(dirname "$0")/../common.sh"
if [[ $MODE == paper ]]; then
  [[ ${#EXTRA[@]} -gt 0 ]] || { echo "usage: $0 CAMPAIGN [OVERRIDES...] | --smoke" >&2; exit 2; }
  SCALE=(data=trap "data.root=${EXTRA[0]}")
  EXTRA=("${EXTRA[@]:1}")
else
  SCALE=(debug=tiny trainer.max_epochs=1 seed=0)
fi
for study in tune_preprocess tune_lr tune_wd; do
  sweep=$PLANKFLUX_LOG_DIR/$study/multiruns/recipe
  run train -m "experiment=$study" "${SCALE[@]}" "hydra.sweep.dir=$sweep" ${EXTRA[@]+"${EXTRA[@]}"} \
    || echo "some $study jobs failed; tabulating the others" >&2
  run tables study "$sweep" --study "$study" --out "$OUT"
done
