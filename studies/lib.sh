# Shared helpers of the study scripts (studies/claim*.sh); sourced, not run.
#
# Every claim script takes the same options:
#   --quick        every step at toy size (minutes); runs and results go to studies/quick/ (git-ignored), or to
#                  $CRL_STUDY_QUICK_DIR (the slow test's temporary folder)
#   --core N       pin every learner to CPU core N (taskset; default 0; 'none' = no pinning)
#   --resume       accepted for symmetry: the scripts always resume (a finished step is skipped, an interrupted
#                  run is continued with the CLI's own --resume)
# Full runs go to studies/runs/ (git-ignored: checkpoints, datasets); what a table or figure needs (config.json,
# metrics.jsonl, evaluator JSON, small PNGs, the report) is copied to studies/results/<claim>/ to be committed.

set -euo pipefail

STUDY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$STUDY_ROOT")"
QUICK=0
CORE="${CRL_STUDY_CORE:-0}"

parse_study_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --quick) QUICK=1 ;;
      --resume) ;;
      --core) CORE="$2"; shift ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
      *) echo "unknown option $1 (use --quick, --core N, --resume)" >&2; exit 2 ;;
    esac
    shift
  done
  if [ "$QUICK" = 1 ]; then
    local quick_dir="${CRL_STUDY_QUICK_DIR:-$STUDY_ROOT/quick}"
    RUNS="$quick_dir/runs"; RESULTS="$quick_dir/results"
  else
    RUNS="$STUDY_ROOT/runs"; RESULTS="$STUDY_ROOT/results"
  fi
  # datasets of the study live beside its runs (never committed)
  export CRL_DATA_DIR="${CRL_STUDY_DATA:-$RUNS/data}"
  mkdir -p "$RUNS" "$RESULTS" "$CRL_DATA_DIR"
}

pinned() {
  # Run a command pinned to $CORE (one learner per core: XLA's thread pool only slows a shared 2-core box down).
  if [ "$CORE" = none ]; then "$@"; else taskset -c "$CORE" "$@"; fi
}

step_done() { [ -f "$1/STEP_DONE" ]; }

claim_step() {
  # claim_step OUT: take OUT for this worker (an atomic mkdir of OUT.lock holding our pid); false when a live worker
  # holds it. Several workers (one per core) may run the same claim script at once: each takes the next free step.
  local lock="$1.lock"
  mkdir -p "$(dirname "$1")"
  if mkdir "$lock" 2>/dev/null; then echo $$ > "$lock/pid"; return 0; fi
  local holder; holder=$(cat "$lock/pid" 2>/dev/null || echo 0)
  if [ "$holder" != 0 ] && kill -0 "$holder" 2>/dev/null; then return 1; fi
  echo $$ > "$lock/pid"; return 0  # the holder died: take over (the step resumes)
}

run_step() {
  # run_step OUT CMD...: run a learner into OUT once. A finished OUT (STEP_DONE) is skipped; one another live
  # worker is running sets STEP_SKIPPED=1 (callers skip what follows: that worker does it); an OUT holding an
  # interrupted run is continued with --resume; the wall time of each attempt is appended to OUT/wall_s.txt.
  local out="$1"; shift
  STEP_SKIPPED=0
  if step_done "$out"; then echo "[study] done already: $out"; return 0; fi
  if ! claim_step "$out"; then echo "[study] another worker runs: $out"; STEP_SKIPPED=1; return 0; fi
  local extra=()
  if [ -f "$out/config.json" ]; then extra=(--resume); echo "[study] resuming: $out"; else echo "[study] run: $out"; fi
  local t0; t0=$(date +%s)
  pinned "$@" --out "$out" "${extra[@]}"
  echo $(( $(date +%s) - t0 )) >> "$out/wall_s.txt"
  touch "$out/STEP_DONE"
  rm -rf "$out.lock"
}

steps_only_exit() {
  # a helper worker (STUDY_STEPS_ONLY=1, e.g. a second core) runs learners only; the main worker reports
  if [ "${STUDY_STEPS_ONLY:-0}" = 1 ]; then echo "[study] steps done (STUDY_STEPS_ONLY)"; exit 0; fi
}

wait_for_steps() {
  # wait_for_steps OUT...: block until every step is finished (steps other workers run); report steps follow this
  local out
  for out in "$@"; do
    while ! step_done "$out"; do sleep 20; done
  done
}

once() {
  # once MARKER CMD...: run a non-learner step (collect, split, evaluate) once; MARKER is a file it leaves behind.
  # A step another live worker is running is waited for.
  local marker="$1"; shift
  if [ -e "$marker" ]; then echo "[study] done already: $marker"; return 0; fi
  mkdir -p "$(dirname "$marker")"
  while ! claim_step "$marker"; do sleep 10; done
  if [ ! -e "$marker" ]; then pinned "$@"; touch "$marker"; fi
  rm -rf "$marker.lock"
}

publish_run() {
  # publish_run RUN_DIR DEST: the small files a table or figure needs (no checkpoints).
  local run="$1" dest="$2"
  mkdir -p "$dest"
  dest="$(cd "$dest" && pwd)"
  for f in config.json metrics.jsonl wall_s.txt learning_curve.png; do
    if [ -f "$run/$f" ]; then cp "$run/$f" "$dest/"; fi
  done
  if [ -d "$run/eval" ]; then
    mkdir -p "$dest/eval"
    find "$run/eval" -maxdepth 1 \( -name '*.json' -o -name '*.png' \) -exec cp {} "$dest/eval/" \;
  fi
  # the report's stored evaluations (crl-eval report reads them back in a folder without checkpoints)
  if [ -d "$run/eval_cache" ]; then
    (cd "$run" && find eval_cache -name result.json -exec cp --parents {} "$dest/" \;)
  fi
}

machine_note() {
  # one line naming the machine, for the results' README
  local cpu; cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
  local avx512=no; grep -q avx512f /proc/cpuinfo && avx512=yes
  echo "$cpu, $(nproc) cores, AVX-512: $avx512, $(date -u +%Y-%m-%d)"
}
