#!/bin/bash
# One `crl-eval report` per dataset over the issue-21 runs that have checkpoints (OGBench's 5 tasks, 20 episodes per
# task, each run's last checkpoint) of the finished runs, written to studies/ogbench/results/reports/<dataset>/.
# usage: studies/ogbench/reports.sh CONFIG... (run folders under $RUNS/<config>/<dataset>/s<seed>)
cd "$(dirname "$0")/../.." && . .venv/bin/activate
RUNS=${RUNS:-/work/ogb21/runs}; CORE=${CORE:-1}
DATASETS=${DATASETS:-pointmaze-medium-navigate pointmaze-large-navigate pointmaze-medium-stitch pointmaze-large-stitch}
for ds in $DATASETS; do
  dirs=()
  for cfg in "$@"; do for d in "$RUNS/$cfg/$ds"/s*/; do  # finished runs only: their records are committed
    d=${d%/}; [ -f "studies/ogbench/results/$cfg/$ds/$(basename "$d")/metrics.jsonl" ] && dirs+=("$d"); done; done
  [ ${#dirs[@]} -eq 0 ] && continue
  out=studies/ogbench/results/reports/$ds
  taskset -c "$CORE" crl-eval report "${dirs[@]}" --out "$out" --evaluators goals --title "OGBench $ds" \
    || echo "report $ds: exit $?"
done
