#!/usr/bin/env bash
# Claim 2 (the paper's exploration vs expressivity experiment): datasets recorded by a shallow and a deep CRL
# collector (`crl-data collect --collector-depth D`: every transition the collector saw while it learned online),
# equal env steps (depth 4 and depth 16: the deepest affordable here, and depth 64's online actor collapsed in
# claim 1); each dataset trains a shallow and a deep learner offline. The 2x2 table of final success and
# time at goal, with seeds.
#
#   studies/claim2_collector.sh [--quick] [--core N] [--resume]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
parse_study_args "$@"

if [ "$QUICK" = 1 ]; then
  ENV=point_u_maze  # the test suite's tiny trainer shapes (tests/conftest.py TINY_TRAIN): depth 4 is in JAX's cache
  COLLECTORS=(4 8); LEARNERS=(4 8); SEEDS=(0)
  COLLECT=(--env-steps 400 --num-envs 4 --unroll-length 10 --episode-length 30 --batch-size 16 --sgd-steps 2
           --width 32 --eval-every 5)
  TRAIN=(--steps 20 --sgd-steps 10 --batch-size 32 --width 32 --repr-dim 8 --num-eval-envs 4)
else
  ENV=point_u4_maze
  COLLECTORS=(4 ${CLAIM2_DEEP:-16}); LEARNERS=(4 ${CLAIM2_DEEP:-16}); read -r -a SEEDS <<< "${CLAIM2_SEEDS:-0 1}"
  COLLECT=(--env-steps "${CLAIM2_ENV_STEPS:-256000}" --num-envs 256 --unroll-length 50 --width "${STUDY_WIDTH:-128}"
           --eval-every 5)
  TRAIN=(--steps "${CLAIM2_STEPS:-2000}" --sgd-steps 500 --eval-every 2 --width "${STUDY_WIDTH:-128}")
fi

for cdepth in "${COLLECTORS[@]}"; do
  # the collector: a CRL agent of depth cdepth learning point_u4_maze online, every env step recorded
  once "$RUNS/claim2/collect-d$cdepth.done" crl-data collect --env "$ENV" --collector-depth "$cdepth" \
    "${COLLECT[@]}" --seed 0 --dataset "study/u4-collector-d$cdepth" --no-progress
  mkdir -p "$RESULTS/claim2"
  crl-data show "study/u4-collector-d$cdepth-v0" --json > "$RESULTS/claim2/collector-d$cdepth-manifest.json"
  for ldepth in "${LEARNERS[@]}"; do
    for seed in "${SEEDS[@]}"; do
      name="c$cdepth-l$ldepth-s$seed"
      out="$RUNS/claim2/$name"
      run_step "$out" crl-train offline --dataset "study/u4-collector-d$cdepth-v0" "${TRAIN[@]}" --depth "$ldepth" \
        --seed "$seed" --no-progress
  if [ "$STEP_SKIPPED" = 1 ]; then continue; fi
      publish_run "$out" "$RESULTS/claim2/$name"
    done
  done
done
steps_only_exit
python "$STUDY_ROOT/summarize.py" claim2 "$RESULTS/claim2"
