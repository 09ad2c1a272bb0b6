#!/usr/bin/env bash
# Claim 3 (the paper's stitching experiment, offline): trained only on (state, goal) pairs at most 3 maze cells
# apart, do deeper critics reach goals 4-10 cells away?
# An oracle-with-noise dataset on point_u4_maze (navigate goals), `crl-data split stitch --max-cells 3`, offline
# learners at depths 4, 16 and 64 (seeds 0-2; width 128 as in claim 1) on the split, then `crl-eval stitching` on
# the split's tasks: success by start-goal BFS distance 1..10, the stitching distance, in- (<= 3) vs
# out-of-distribution (4..10) means.
#
#   studies/claim3_stitching.sh [--quick] [--core N] [--resume]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
parse_study_args "$@"

if [ "$QUICK" = 1 ]; then
  # the 5x5 U (diameter 6) with the test suite's oracle collection shapes (tests/conftest.py ORACLE_COLLECT)
  ENV=point_u_maze
  COLLECT=(--env-steps 24000 --num-envs 32 --unroll-length 50 --episode-length 250)
  RUNS_OF=("4:0" "8:0")
  TRAIN=(--steps 20 --sgd-steps 10 --batch-size 32 --width 32 --repr-dim 8 --num-eval-envs 4
         --split-episodes-per-pair 1)
  EVAL=(--episodes-per-pair 1 --max-pairs-per-distance 2)
else
  ENV=point_u4_maze
  COLLECT=(--env-steps "${CLAIM3_ENV_STEPS:-200000}" --num-envs 64 --unroll-length 50 --episode-length 250)
  # depth:seed, interleaved so every depth has a seed early; CLAIM3_RUNS overrides (the committed study ran
  # "4:0 16:0 64:0 4:1 16:1 64:1 4:2 16:2": depth 64's third seed did not fit the session, docs/REPRODUCTION.md)
  read -r -a RUNS_OF <<< "${CLAIM3_RUNS:-4:0 16:0 64:0 4:1 16:1 64:1 4:2 16:2 64:2}"
  TRAIN=(--steps "${CLAIM3_STEPS:-4000}" --sgd-steps 500 --eval-every 4 --split-episodes-per-pair 2
         --width "${STUDY_WIDTH:-128}")
  EVAL=(--episodes-per-pair 4)
fi

# 1. data: OGBench's noisy expert (BFS-waypoint oracle + Gaussian action noise), goals chained (navigate)
once "$RUNS/claim3/collect.done" crl-data collect --env "$ENV" --policy oracle --action-noise 0.2 \
  --goal-schedule navigate "${COLLECT[@]}" --seed 0 --dataset study/u4-oracle --no-progress
# 2. the stitching split: segments whose states are all within 3 cells of each other
once "$RUNS/claim3/split.done" crl-data split stitch study/u4-oracle-v0 --max-cells 3
SPLIT=study/u4-oracle-stitch3-v0
mkdir -p "$RESULTS/claim3"
crl-data show "$SPLIT" --json > "$RESULTS/claim3/split_manifest.json"

# 3. offline learners on the split, 4. stitching evaluation on the split's tasks
dirs=()
for spec in "${RUNS_OF[@]}"; do
  depth="${spec%%:*}"; seed="${spec##*:}"
  out="$RUNS/claim3/d$depth-s$seed"
  dirs+=("$out")
  run_step "$out" crl-train offline --dataset "$SPLIT" "${TRAIN[@]}" --depth "$depth" --seed "$seed" --no-progress
  if [ "$STEP_SKIPPED" = 1 ]; then continue; fi
  once "$out/eval/stitching.json" crl-eval stitching --policy "checkpoint:$out" --split "$SPLIT" "${EVAL[@]}" \
    --out "$out/eval"
  publish_run "$out" "$RESULTS/claim3/d$depth-s$seed"
done

steps_only_exit  # a helper worker (STUDY_STEPS_ONLY=1) leaves the rest to the main one
wait_for_steps "${dirs[@]}"
once "$RUNS/claim3/report.done" crl-eval report "${dirs[@]}" --out "$RESULTS/claim3/report" \
  --evaluators goals --no-progress --title "Claim 3: stitching from pairs <= 3 cells apart (point_u4_maze)"
for out in "${dirs[@]}"; do publish_run "$out" "$RESULTS/claim3/$(basename "$out")"; done  # + the report's evaluations
python "$STUDY_ROOT/summarize.py" claim3 "$RESULTS/claim3"
