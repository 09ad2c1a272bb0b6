#!/usr/bin/env bash
# Claim 5 (offline to online): `crl-train finetune` from claim 3's offline learners (seed 0 of each depth), with
# and without mixing the offline dataset into every batch (--dataset, half of each batch), against claim 1's online
# runs from scratch at the same depth: env steps until each reaches the online runs' final level.
# Needs claim 1 and claim 3 to have run (same --quick setting).
#
#   studies/claim5_finetune.sh [--quick] [--core N] [--resume]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
parse_study_args "$@"

if [ "$QUICK" = 1 ]; then
  DEPTHS=(4)
  TRAIN=(--episode-length 30 --num-envs 4 --unroll-length 10 --batch-size 32 --sgd-steps 2 --replay-size 400
         --min-replay-size 80 --total-env-steps 400 --eval-every 5 --num-eval-envs 4 --checkpoint-every 5)
else
  DEPTHS=(${CLAIM5_DEPTHS:-4 16})
  TRAIN=(--total-env-steps "${CLAIM5_BUDGET:-640000}")
fi

for depth in "${DEPTHS[@]}"; do
  src="$RUNS/claim3/d$depth-s0"
  if ! step_done "$src"; then echo "claim 5 needs claim 3's $src: run studies/claim3_stitching.sh first" >&2; exit 2; fi
  out="$RUNS/claim5/d$depth-s0-plain"
  run_step "$out" crl-train finetune --from "$src" "${TRAIN[@]}" --no-progress
  publish_run "$out" "$RESULTS/claim5/d$depth-s0-plain"
  out="$RUNS/claim5/d$depth-s0-mix"
  run_step "$out" crl-train finetune --from "$src" --dataset study/u4-oracle-v0 --offline-ratio 0.5 "${TRAIN[@]}" \
    --no-progress
  publish_run "$out" "$RESULTS/claim5/d$depth-s0-mix"
done
python "$STUDY_ROOT/summarize.py" claim5 "$RESULTS/claim5" "$RESULTS/claim1"
