#!/bin/bash
# The issue-21 grid on a shared 2-core CPU: one run at a time on core $CORE (default 1), resumable (finished runs
# are skipped; two workers on one grid share it run by run); $EVAL_EVERY epochs (of 500 SGD steps) between OGBench
# evaluations (default 1).
# usage: studies/ogbench/grid.sh CONFIG STEPS "SEEDS" "DATASETS" [extra crl-train options...]
cd "$(dirname "$0")/../.." && . .venv/bin/activate
export CRL_DATA_DIR=${CRL_DATA_DIR:-/work/ogb21/data}
RUNS=${RUNS:-/work/ogb21/runs}
CORE=${CORE:-1}; EVAL_EVERY=${EVAL_EVERY:-1}
cfg=$1; steps=$2; seeds=$3; dsets=$4; shift 4
for seed in $seeds; do for ds in $dsets; do
  out=$RUNS/$cfg/$ds/s$seed; res=studies/ogbench/results/$cfg/$ds/s$seed
  [ -f $res/metrics.jsonl ] && continue
  while [ ! -f $CRL_DATA_DIR/ogbench/$ds/v0/manifest.json ]; do sleep 20; done
  mkdir -p $(dirname $out); t0=$(date +%s)
  exec 9> $out.lock; flock -n 9 || continue  # another worker (e.g. on the other core) holds this run
  train() { taskset -c $CORE crl-train offline --dataset ogbench/$ds-v0 --seed $seed --steps $steps \
    --eval-every $EVAL_EVERY --ogbench-episodes 10 --checkpoint-every $EVAL_EVERY --out $out --no-progress "$@"; }
  # a killed run continues from its last checkpoint; one that cannot (none written yet) starts again
  if [ -f $out/config.json ] && train --resume "$@" >> $out.log 2>&1; then :
  else rm -rf $out; train "$@" > $out.log 2>&1 || { echo "FAIL $out"; continue; }; fi
  mkdir -p $res && cp $out/config.json $out/metrics.jsonl $res/ && echo "{\"wall_s\": $(( $(date +%s)-t0 ))}" > $res/wall.json
  echo "done $cfg $ds s$seed $(( $(date +%s)-t0 )) s"
done; done
