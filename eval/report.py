"""`crl-eval report`: evaluate runs (goals; stitching and geodesic on crl mazes) and write one HTML page + a Markdown
twin with learning curves, a comparison table, overlaid curves and every evaluator's tables and figures.

Rooms: `crl.eval.runs` reads run folders (no checkpoint loaded), `crl.eval.registry` holds the evaluators (each
registered by its own module: goals, stitching, geodesic) and record-only sections, `crl.eval.report_cache` runs
and caches one evaluation, `crl.eval.report_render` renders; this module plans and fans out.

Runs are run folders (`crl-train ... --out RUN_DIR`, a collector worker, or a dataset version folder). For each
run the report runs the evaluators that apply to its env (each says why not otherwise). A run folder without
checkpoints (committed results) is drawn from its records alone: learning curves and tables from config.json and
metrics.jsonl, evaluator sections from the results stored in it (`crl.eval.runs.stored_results`), and a note for
each evaluator that would need the checkpoint.

Cache: every evaluation is keyed by (run folder, its config.json, checkpoint step, evaluator, settings, CACHE_VERSION)
and stored under `RUN_DIR/eval_cache` unless `cache_dir` is given; a re-run evaluates nothing. Fan-out: evaluations
that miss the cache are Dask tasks (crl.fanout: `workers > 1` starts a LocalCluster, `scheduler` joins
one, `client` passes one in; one retry, then the failure is shown in the report and not cached); one worker and no
scheduler evaluates in this process.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crl.errors import ConfigError
from crl.eval.registry import EVALUATOR_MODULES, evaluators
from crl.eval.report_cache import EvalTask, cache_key, evaluate_task, read_cached
from crl.eval.runs import RunInfo, labels, read_run

log = logging.getLogger("crl.eval.report")

EVALUATORS = tuple(m.rsplit(".", 1)[1] for m in EVALUATOR_MODULES)
"""The built-in evaluators' names (the CLI's default --evaluators)."""


@dataclass(frozen=True)
class ReportSettings:
    """What the evaluations run with (part of every cache key)."""

    evaluators: tuple[str, ...] = EVALUATORS
    """Evaluators to run where they apply (names in crl.eval.registry)."""
    step: int | None = None
    """Checkpoint step to evaluate (None = each run's latest)."""
    goals_episodes: int | None = None
    """crl envs: episodes (None = the run's num_eval_envs); OGBench: episodes per task (None = OGBench's 20)."""
    seed: int | None = None
    """Evaluation seed (None: goals uses the trainer's eval key, so it matches the logged eval/*; others use 0)."""
    stitching_episodes_per_pair: int = 1
    """Episodes per (start, goal) pair."""
    stitching_max_pairs_per_distance: int | None = 32
    """Pairs sampled per BFS distance (None = every pair)."""
    geodesic_pairs: int = 2000
    """Position pairs for the geodesicity probe."""
    geodesic_bootstrap: int = 200
    """Bootstrap resamples for the geodesicity intervals."""
    ogbench_max_episode_steps: int | None = None
    """OGBench episode limit (None = the protocol's 1000; smaller only for smoke tests, recorded as a deviation)."""

    def validate(self) -> ReportSettings:
        known = evaluators()
        bad = [e for e in self.evaluators if e not in known]
        if bad or not self.evaluators:
            raise ConfigError(f"unknown evaluator(s) {bad}; choose from {', '.join(known)}")
        for name in ("goals_episodes", "stitching_max_pairs_per_distance", "ogbench_max_episode_steps"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name.replace('_', '-')}={v} must be >= 1")
        if self.stitching_episodes_per_pair < 1 or self.geodesic_pairs < 10 or self.geodesic_bootstrap < 0:
            raise ConfigError("stitching episodes per pair must be >= 1, geodesic pairs >= 10, bootstrap >= 0")
        return self


# ---- the report ------------------------------------------------------------------------------------------------------
@dataclass
class RunReport:
    """One run's section: its info, evaluations (by evaluator), skips and errors."""

    info: RunInfo
    step: int | None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportResult:
    """What `make_report` wrote and how the cache did."""

    html: Path
    markdown: Path
    json: Path
    runs: list[RunReport]
    cache: dict[str, int]


NEEDS_CHECKPOINT = "needs the run's checkpoint, which this folder does not have (records only)"


def plan(runs: list[RunInfo], settings: ReportSettings, cache_dir: str | Path | None
         ) -> tuple[list[RunReport], list[EvalTask]]:
    """Each run's evaluations (tasks), results stored in records-only runs, and skips with their reasons."""
    registry = evaluators()
    reports, tasks = [], []
    for info in runs:
        step = None
        if info.problem is None and not info.records_only:
            step = settings.step if settings.step is not None else info.steps[-1]
            if step not in info.steps:
                info.problem = f"no checkpoint at step {step} (has {info.steps})"
        rr = RunReport(info, step if info.problem is None else None)
        reports.append(rr)
        if info.records_only:
            rr.notes.append("no checkpoints in this folder: drawn from its records (config.json, metrics.jsonl) "
                            "and the evaluator results stored in it")
        for name in settings.evaluators:
            ev = registry[name]
            reason = info.problem or ev.skip_reason(info)
            if reason:
                rr.skipped[name] = reason
            elif info.records_only:
                if name in info.stored:
                    rr.results[name] = {**info.stored[name], "from_records": True}
                else:
                    rr.skipped[name] = NEEDS_CHECKPOINT
            else:
                s = ev.settings(settings, info)
                folder = Path(cache_dir) / _run_slug(info) if cache_dir is not None else info.path / "eval_cache"
                tasks.append(EvalTask(str(info.path), name, int(step), s, str(folder), cache_key(info, step, name, s)))
    return reports, tasks


def _run_slug(info: RunInfo) -> str:
    return f"{info.path.name}-{hashlib.sha256(str(info.path).encode()).hexdigest()[:8]}"


def run_tasks(tasks: list[EvalTask], workers: int = 1, scheduler: str | None = None, client: Any = None,
              progress: bool = False) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Evaluate `tasks` (all cache misses): in this process, or as Dask tasks. Returns (results, errors) by key."""
    from crl.fanout import error_text, fan_out

    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    if not tasks:
        return results, errors
    if client is None and workers <= 1 and scheduler is None:
        for t in tasks:
            _say(progress, f"evaluating {t.evaluator} of {t.run} (step {t.step})")
            try:
                results[t.key] = evaluate_task(t)
            except Exception as e:  # noqa: BLE001 - shown in the report, not cached
                errors[t.key] = error_text(e)
        return results, errors
    by_name = {f"eval-{t.key[:24]}": t for t in tasks}
    _say(progress, f"{len(tasks)} evaluations submitted to Dask")
    done, failed = fan_out(evaluate_task, {n: (t,) for n, t in by_name.items()}, workers, scheduler, client,
                           on_done=lambda n, _: _say(progress, f"done {by_name[n].evaluator} of {by_name[n].run}"))
    return ({by_name[n].key: r for n, r in done.items()}, {by_name[n].key: e for n, e in failed.items()})


def _say(enabled: bool, line: str) -> None:
    log.info(line)
    if enabled:
        import click

        click.echo(line, err=True)


def make_report(
    run_dirs: list[str | Path],
    out: str | Path,
    settings: ReportSettings | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    title: str = "crl report",
    progress: bool = False,
) -> ReportResult:
    """Evaluate `run_dirs` (cache first) and write `out/report.html` (self-contained), `out/report.md` (+ PNGs in
    `out/images/`) and `out/report.json`. Returns the paths, per-run results and cache counts."""
    settings = (settings or ReportSettings()).validate()
    if not run_dirs:
        raise ConfigError("pass at least one RUN_DIR")
    paths = [Path(p).expanduser().absolute() for p in run_dirs]
    infos = [read_run(p, lab) for p, lab in zip(paths, labels(paths), strict=True)]
    reports, tasks = plan(infos, settings, cache_dir)
    cached, todo = {}, []
    for t in tasks:
        hit = read_cached(t)
        if hit is not None:
            cached[t.key] = hit
            _say(progress, f"cache hit: {t.evaluator} of {t.run} (step {t.step}) in {t.entry}")
        else:
            todo.append(t)
    fresh, errors = run_tasks(todo, workers, scheduler, client, progress)
    by_key = {**cached, **fresh}
    for rr in reports:
        for t in tasks:
            if t.run != str(rr.info.path):
                continue
            if t.key in by_key:
                rec = by_key[t.key]
                rec["_entry"] = str(t.entry)
                rr.results[t.evaluator] = rec
            else:
                rr.errors[t.evaluator] = errors.get(t.key, "no result")
    cache = {"hits": len(cached), "misses": len(todo), "evaluated": len(fresh), "errors": len(errors)}
    from crl.eval.report_render import write_report

    html, md, js = write_report(reports, Path(out), settings, cache, title)
    return ReportResult(html, md, js, reports, cache)


def settings_dict(settings: ReportSettings) -> dict[str, Any]:
    """JSON form of the settings."""
    d = asdict(settings)
    d["evaluators"] = list(settings.evaluators)
    return d

