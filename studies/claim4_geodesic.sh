#!/usr/bin/env bash
# Claim 4 (the paper's Q-value figure): are deeper critics' values geodesic (following the maze's corridors) rather
# than Euclidean (through walls)? `crl-eval geodesic` on claim 1's online runs and claim 3's offline learners: the
# geodesicity index (Spearman with geodesic minus Spearman with Euclidean distance) on all pairs and on wall pairs,
# against depth, and the Q-value heatmaps side by side. Needs claims 1 and 3 (same --quick setting).
#
#   studies/claim4_geodesic.sh [--quick] [--core N] [--resume]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
parse_study_args "$@"

# goal cell (4,1) of the U4: the corridor's far end, 10 cells from the start (2,1) by the corridor, 2 straight down
if [ "$QUICK" = 1 ]; then GEO=(--pairs 50 --bootstrap 20); else GEO=(--pairs 2000 --bootstrap 200 --goal 4,1); fi

for claim in claim1 claim3; do
  for run in "$RUNS/$claim"/d*-s*; do
    [ -d "$run" ] || continue
    if ! step_done "$run"; then echo "skipping unfinished $run"; continue; fi
    once "$run/eval/geodesic.json" crl-eval geodesic --policy "checkpoint:$run" "${GEO[@]}" \
      --out "$run/eval"
    publish_run "$run" "$RESULTS/$claim/$(basename "$run")"
  done
done
python "$STUDY_ROOT/summarize.py" claim4 "$RESULTS/claim4" "$RESULTS/claim1" "$RESULTS/claim3"
