#!/usr/bin/env bash
# Claim 1 (the paper's Figure 1): depth improves online goal reaching.
# `crl-train online` on point_u4_maze (scaling-crl's 7x5 U4: an 11-cell corridor of diameter 10) at critic/actor
# depths 4, 16 and 64 at width 128 (256 does not fit a CPU core at depth 64), everything else the cpu preset's; seeds 0-2 at depths 4 and 16, seeds 0-1 at depth 64.
# Phase 2 continues the depth-4 and depth-16 runs of seed 0 (CLAIM1_EXTEND_SEEDS="0 1 2" for all) to the preset's
# 1.28M env steps (`--resume --total-env-steps`; the replay keeps the whole run, so this equals a fresh 1.28M run);
# depth 64 (15 s an epoch) stays at 640k.
# Then one `crl-eval report` over the final runs (success, time at goal, curves against env steps and wall clock).
#
#   studies/claim1_depth.sh [--quick] [--core N] [--resume]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
parse_study_args "$@"

if [ "$QUICK" = 1 ]; then
  # toy size: the test suite's tiny trainer (tests/conftest.py TINY_TRAIN, so depth 4 reuses its compiled programs
  # from JAX's cache) on the 5x5 U, two depths, one seed
  RUNS_OF=("4:0" "8:0")
  COMMON=(--env point_u_maze --episode-length 30 --num-envs 4 --unroll-length 10 --batch-size 16 --sgd-steps 2
          --replay-size 400 --min-replay-size 80 --total-env-steps 400 --eval-every 5 --num-eval-envs 4
          --checkpoint-every 5 --width 32 --repr-dim 8 --train-env task)
else
  RUNS_OF=("4:0" "64:0" "16:0" "4:1" "16:1" "64:1" "4:2" "16:2")  # interleaved: every depth early
  # a check of why depth 64 fails: its critic with a depth-4 actor (the depth-64 actor's entropy collapses)
  RUNS_OF+=("64a4:0")
  BUDGET="${CLAIM1_BUDGET:-640000}"
  COMMON=(--env point_u4_maze --total-env-steps "$BUDGET" --width "${STUDY_WIDTH:-128}")
  EXTEND_TO="${CLAIM1_EXTEND_TO:-1280000}"; EXTEND_DEPTHS=" 4 16 "; EXTEND_SEEDS=" ${CLAIM1_EXTEND_SEEDS:-0} "
fi

dirs=()
for spec in "${RUNS_OF[@]}"; do
  depth="${spec%%:*}"; seed="${spec##*:}"; actor=()
  case "$depth" in *a*) actor=(--actor-depth "${depth#*a}"); depth="${depth%a*}" ;; esac
  name="d$depth${actor[1]:+a${actor[1]}}-s$seed"
  out="$RUNS/claim1/$name"
  dirs+=("$out")
  run_step "$out" crl-train online "${COMMON[@]}" --depth "$depth" "${actor[@]}" --seed "$seed" --no-progress
  if [ "$STEP_SKIPPED" = 1 ]; then continue; fi
  publish_run "$out" "$RESULTS/claim1/$name"
done

# the comparison: one report over every run (evaluations cached in each run's eval_cache)
steps_only_exit  # a helper worker (STUDY_STEPS_ONLY=1) leaves the rest to the main one
wait_for_steps "${dirs[@]}"

# phase 2: the shallower runs continued to the preset's budget
if [ -n "${EXTEND_TO:-}" ]; then
  for out in "${dirs[@]}"; do
    name=$(basename "$out"); depth="${name%%-*}"; depth="${depth#d}"  # d64a4 -> 64a4: not extended
    seed="${name##*-s}"
    case "$EXTEND_DEPTHS" in *" $depth "*) ;; *) continue ;; esac
    case "$EXTEND_SEEDS" in *" $seed "*) ;; *) continue ;; esac
    [ -f "$out/EXTENDED_DONE" ] && continue
    claim_step "$out" || continue
    echo "[study] extend to $EXTEND_TO: $out"
    t0=$(date +%s)
    pinned crl-train online --out "$out" --resume --total-env-steps "$EXTEND_TO" --no-progress
    echo $(( $(date +%s) - t0 )) >> "$out/wall_s.txt"
    touch "$out/EXTENDED_DONE"; rm -rf "$out.lock"
    publish_run "$out" "$RESULTS/claim1/$name"
  done
fi
once "$RUNS/claim1/report.done" crl-eval report "${dirs[@]}" --out "$RESULTS/claim1/report" \
  --evaluators goals --no-progress --title "Claim 1: depth vs online goal reaching (point_u4_maze)"
for out in "${dirs[@]}"; do publish_run "$out" "$RESULTS/claim1/$(basename "$out")"; done  # + the report's evaluations
python "$STUDY_ROOT/summarize.py" claim1 "$RESULTS/claim1"
