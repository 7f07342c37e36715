#!/usr/bin/env bash
# Paper A, Figures 5-8: the human-in-the-loop pipeline for target domains RR and JC
# (OOD ensemble of 5, voting proposals, simulated expert, minboost, the +top1k, +verify
# and +minboost retrained ensembles), flux tables, the assessment (MAE, ANOVA/Tukey,
# precision/recall against the original labels) and Figures 5-8 for each target.
#   bash experiments/paper_a/figures_5_8.sh CAMPAIGN [OVERRIDES...]   # the paper's (GPU)
#   bash experiments/paper_a/figures_5_8.sh --demo                    # demo campaign, CPU
#   bash experiments/paper_a/figures_5_8.sh --smoke                   # tiny, 1 member, 1 epoch
# Workspaces (they resume when rerun): $PLANKFLUX_LOG_DIR/pipeline/<target>/; the figures
# are in <workspace>/flux/ and copied to $OUT/figures_5_8_<target>/.
source "$(dirname "$0")/../common.sh"
case $MODE in
  paper)
    [[ ${#EXTRA[@]} -gt 0 ]] || { echo "usage: $0 CAMPAIGN [OVERRIDES...] | --demo | --smoke" >&2; exit 2; }
    SCALE=(experiment=pipeline_paper "data.root=${EXTRA[0]}")
    EXTRA=("${EXTRA[@]:1}") ;;
  demo) SCALE=(experiment=pipeline_demo) ;;
  smoke) SCALE=(experiment=pipeline_demo data=synthetic_tiny 'members=[0]' trainer.max_epochs=1) ;;
esac
for target in RR JC; do
  workspace=$PLANKFLUX_LOG_DIR/pipeline/$target
  run pipeline "${SCALE[@]}" "target=$target" "hydra.run.dir=$workspace" ${EXTRA[@]+"${EXTRA[@]}"}
  mkdir -p "$OUT/figures_5_8_$target"
  cp "$workspace"/flux/*.png "$workspace"/flux/*.csv "$OUT/figures_5_8_$target/"
  echo "Figures 5-8 for $target: $OUT/figures_5_8_$target" >&2
done
