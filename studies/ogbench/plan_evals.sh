#!/bin/bash
# Test-time planning against the actor alone on the same checkpoints, same protocol: `crl-eval goals`, OGBench's 5
# tasks, 10 episodes per task, seed 0, each run's last checkpoint; records (goals.json, ogbench_tasks.png, wall.json)
# land in studies/ogbench/results/planning/<config>/<dataset>/s<seed>/{plan<N>,actor}/. Resumable (done ones skipped).
# usage: CORE=N studies/ogbench/plan_evals.sh CONFIG "DATASETS" "SEEDS" [WAYPOINTS (default 800)]
cd "$(dirname "$0")/../.." && . .venv/bin/activate
export CRL_DATA_DIR=${CRL_DATA_DIR:-/work/ogb21/data}
RUNS=${RUNS:-/work/ogb21/runs}; CORE=${CORE:-1}
cfg=$1; dsets=$2; seeds=$3; n=${4:-800}
log=$(mktemp)
for ds in $dsets; do for s in $seeds; do
  run=$RUNS/$cfg/$ds/s$s
  for mode in plan$n actor; do
    res=studies/ogbench/results/planning/$cfg/$ds/s$s/$mode
    [ -f $res/goals.json ] && continue
    extra=(); [ $mode != actor ] && extra=(--plan-waypoints $n)
    t0=$(date +%s)
    taskset -c $CORE crl-eval goals --policy checkpoint:$run --env ogbench:$ds-v0 --episodes 10 --seed 0 \
      --out $res "${extra[@]}" > $log 2>&1 || { echo "FAIL $cfg $ds s$s $mode"; tail -3 $log; continue; }
    echo "{\"wall_s\": $(( $(date +%s)-t0 ))}" > $res/wall.json
    echo "$cfg $ds s$s $mode $(grep -o 'overall success [0-9.]*' $log) $(( $(date +%s)-t0 )) s"
  done
done; done
rm -f $log
