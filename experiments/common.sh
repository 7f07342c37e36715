# Sourced by the recipes in experiments/paper_a and experiments/paper_b: the scale and
# the folders. A recipe takes
#   --smoke   the same recipe end to end at tiny scale (synthetic data, a minute or two
#             on a CPU; what the tests run), outputs under smoke/
#   --demo    demo scale on a CPU where the recipe has one (synthetic data, minutes)
#   nothing   the paper's settings (GPU; your data under $PLANKFLUX_DATA_DIR or the
#             campaign the recipe asks for)
# and passes any other argument to every plankflux run as a Hydra override, e.g.
# hydra/launcher=slurm hydra.launcher.partition=gpu (README, "Running on a SLURM cluster").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODE=paper
EXTRA=()
for arg in "$@"; do
  case $arg in
    --smoke) MODE=smoke ;;
    --demo) MODE=demo ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) EXTRA+=("$arg") ;;
  esac
done
if [[ -z ${PLANKFLUX:-} ]]; then
  if [[ -x .venv/bin/plankflux ]]; then PLANKFLUX=.venv/bin/plankflux; else PLANKFLUX=plankflux; fi
fi
export WANDB_MODE=${WANDB_MODE:-offline}
ROOT=$([[ $MODE == paper ]] && echo . || echo "$MODE")
export PLANKFLUX_DATA_DIR=${PLANKFLUX_DATA_DIR:-$ROOT/data}
export PLANKFLUX_LOG_DIR=${PLANKFLUX_LOG_DIR:-$ROOT/logs}
OUT=${OUT:-$ROOT/tables}
run() { echo "+ $PLANKFLUX $*" >&2; "$PLANKFLUX" "$@"; }
