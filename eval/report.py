"""`crl-eval report`: evaluate runs (goals; stitching and geodesic on crl mazes) and write one HTML page + a Markdown
twin with learning curves, a comparison table, overlaid curves and every evaluator's tables and figures.

Runs are run folders (`crl-train ... --out RUN_DIR`: config.json, metrics.jsonl, checkpoints/). For each run the
report picks its evaluators from its env: `goals` always (OGBench's own protocol for runs on an imported OGBench
dataset, `crl.eval.ogbench_protocol`), `stitching` and `geodesic` when the env is a crl maze; anything skipped is
listed with its reason.

Cache: every evaluation is keyed by (run folder, its config.json, checkpoint step, evaluator, settings, CACHE_VERSION)
and stored as `<cache>/<evaluator>-step<N>-<hash>/` (result.json + its PNG); `<cache>` is `RUN_DIR/eval_cache` unless
`cache_dir` is given. A report re-run finds them and evaluates nothing (`ReportResult.cache` counts hits and misses).
Fan-out: evaluations that miss the cache are independent Dask tasks: `workers > 1` starts a LocalCluster,
`scheduler` joins an existing one (shared filesystem, as the collector assumes), `client` passes one in; one worker
and no scheduler evaluates in this process. A failed evaluation is retried once by Dask and then shown as an error
in the report (it is not cached).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crl.errors import ConfigError, CrlError

log = logging.getLogger("crl.eval.report")

EVALUATORS = ("goals", "stitching", "geodesic")
CACHE_VERSION = 1
"""Bump when an evaluator's output changes meaning, so old cache entries are not reused."""
CRL_MAZE_FAMILIES = ("point", "ant", "humanoid")


@dataclass(frozen=True)
class ReportSettings:
    """What the evaluations run with (part of every cache key)."""

    evaluators: tuple[str, ...] = EVALUATORS
    """Evaluators to run where they apply."""
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
        bad = [e for e in self.evaluators if e not in EVALUATORS]
        if bad or not self.evaluators:
            raise ConfigError(f"unknown evaluator(s) {bad}; choose from {', '.join(EVALUATORS)}")
        for name in ("goals_episodes", "stitching_max_pairs_per_distance", "ogbench_max_episode_steps"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name.replace('_', '-')}={v} must be >= 1")
        if self.stitching_episodes_per_pair < 1 or self.geodesic_pairs < 10 or self.geodesic_bootstrap < 0:
            raise ConfigError("stitching episodes per pair must be >= 1, geodesic pairs >= 10, bootstrap >= 0")
        return self

    def for_evaluator(self, evaluator: str, ogbench: bool) -> dict[str, Any]:
        """The settings one evaluation depends on (its cache key and its call)."""
        if evaluator == "goals" and ogbench:
            return {"protocol": "ogbench", "episodes": self.goals_episodes, "seed": self.seed,
                    "max_episode_steps": self.ogbench_max_episode_steps}
        if evaluator == "goals":
            return {"episodes": self.goals_episodes, "seed": self.seed}
        if evaluator == "stitching":
            return {"episodes_per_pair": self.stitching_episodes_per_pair,
                    "max_pairs_per_distance": self.stitching_max_pairs_per_distance, "seed": self.seed or 0}
        return {"pairs": self.geodesic_pairs, "bootstrap": self.geodesic_bootstrap, "seed": self.seed or 0}


# ---- runs ------------------------------------------------------------------------------------------------------------
@dataclass
class RunInfo:
    """What the report knows about a run folder without loading its checkpoint."""

    path: Path
    label: str
    config: dict[str, Any]
    env_spec: dict[str, Any]
    records: list[dict[str, Any]]
    steps: list[int]
    config_hash: str
    kind: str = "?"
    """online, offline, finetune (config.json's `kind`) or collector (a dataset version)."""
    problem: str | None = None

    @property
    def trained(self) -> str:
        """How it was trained: the kind, and the dataset for offline and fine-tune runs."""
        ds = self.config.get("dataset")
        return f"{self.kind} on {ds}" if ds and self.kind != "collector" else self.kind

    @property
    def env_name(self) -> str:
        return str(self.env_spec.get("name", "?"))

    @property
    def is_ogbench(self) -> bool:
        return self.env_name.startswith("ogbench:")

    @property
    def is_crl_maze(self) -> bool:
        return self.env_spec.get("family") in CRL_MAZE_FAMILIES

    def agent_field(self, name: str) -> Any:
        """A config field wherever the config nests it (top level, `learner`, `agent`, `learner.agent`)."""
        todo = [self.config]
        while todo:
            d = todo.pop(0)
            if name in d and not isinstance(d[name], dict):
                return d[name]
            todo += [v for v in d.values() if isinstance(v, dict)]
        return None


def _flat_config(doc: dict[str, Any]) -> dict[str, Any]:
    """The training config inside config.json, whatever the run kind wrote it under."""
    for key in ("train", "offline", "finetune", "config"):
        if isinstance(doc.get(key), dict):
            return doc[key]
    return doc


def _env_spec(doc: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    for key in ("env", "env_spec"):
        if isinstance(doc.get(key), dict):
            return doc[key]
    for sub in doc.values():
        if isinstance(sub, dict) and isinstance(sub.get("env_spec"), dict):
            return sub["env_spec"]
    return {"name": config.get("env", "?")}


def checkpoint_folder(run: Path) -> Path | None:
    """Where a run keeps its checkpoints: `RUN/checkpoints`, or a collector's first worker folder in a dataset
    version (`<version>/collector/<worker>`), as `crl.checkpoint.load_agent` finds them."""
    cands = [run / "checkpoints"]
    if (run / "collector").is_dir():
        cands += sorted(p for p in (run / "collector").iterdir() if p.is_dir())
    for c in cands:
        if c.is_dir() and any(p.name.isdigit() for p in c.iterdir()):
            return c
    return None


def checkpoint_steps(run: Path) -> list[int]:
    """Committed checkpoint steps of a run (orbax step folders; temporary ones are not digits)."""
    ck = checkpoint_folder(run)
    if ck is None:
        return []
    return sorted(int(p.name) for p in ck.iterdir() if p.is_dir() and p.name.isdigit())


def read_run(path: str | Path, label: str | None = None) -> RunInfo:
    """Config, env spec, metrics and checkpoint steps of a run folder, or of a collector's dataset version folder
    (manifest.json + collector checkpoints); a problem is recorded, not raised."""
    from crl.metrics import read_jsonl

    run = Path(path).expanduser().absolute()
    if not run.is_dir():
        raise ConfigError(f"no run folder {run}; pass folders written by `crl-train ... --out RUN_DIR`")
    cfg_path, manifest = run / "config.json", run / "manifest.json"
    collector = not cfg_path.is_file() and manifest.is_file()
    text = (manifest if collector else cfg_path).read_text() if (collector or cfg_path.is_file()) else ""
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        doc = {}
    if collector:  # a dataset version recorded by a training collector: its config and env from the manifest
        col = doc.get("provenance", {}).get("collector", {})
        src = col.get("source") if isinstance(col.get("source"), dict) else {}
        config = {**col, **_flat_config(src), "depth": col.get("collector_depth")}
        env_spec = doc.get("env_spec") or {"name": col.get("env", "?")}
    else:
        config = _flat_config(doc)
        env_spec = _env_spec(doc, config)
    info = RunInfo(run, (label or run.name) + (" (collector)" if collector else ""), config, env_spec,
                   read_jsonl(run / "metrics.jsonl"), checkpoint_steps(run),
                   hashlib.sha256(text.encode()).hexdigest()[:16],
                   "collector" if collector else str(doc.get("kind", "online" if "train" in doc else "?")))
    if not text:
        info.problem = "no config.json (not a crl-train run folder) and no manifest.json (not a dataset version)"
    elif not info.steps:
        info.problem = "no checkpoints (nothing to evaluate)"
    return info


def _labels(paths: list[Path]) -> list[str]:
    """Folder names, with parents added until they are unique."""
    depth = 1
    while True:
        labels = ["/".join(p.parts[-depth:]) for p in paths]
        if len(set(labels)) == len(labels) or depth > max(len(p.parts) for p in paths):
            return labels
        depth += 1


# ---- one evaluation (a Dask task) -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalTask:
    """One (run, checkpoint step, evaluator, settings) evaluation and where its cache entry goes."""

    run: str
    evaluator: str
    step: int
    settings: dict[str, Any]
    cache_dir: str
    key: str

    @property
    def entry(self) -> Path:
        return Path(self.cache_dir) / f"{self.evaluator}-step{self.step}-{self.key[:16]}"


def cache_key(run: RunInfo, step: int, evaluator: str, settings: dict[str, Any]) -> str:
    """sha256 over what the result depends on: the run folder, its config, the checkpoint (step and the time its
    folder was committed, so a run retrained into the same folder is not mistaken for the old one), the evaluator
    and its settings."""
    folder = checkpoint_folder(run.path)
    try:
        committed = (folder / str(step)).stat().st_mtime_ns if folder is not None else None
    except OSError:
        committed = None
    doc = {"run": str(run.path), "config": run.config_hash, "step": step, "checkpoint_mtime_ns": committed,
           "evaluator": evaluator, "settings": settings, "cache_version": CACHE_VERSION}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def read_cached(task: EvalTask) -> dict[str, Any] | None:
    """The cached result of `task`, or None (a missing or unreadable entry is a miss)."""
    try:
        result = json.loads((task.entry / "result.json").read_text())
    except (OSError, ValueError):
        return None
    return result if result.get("cache_key") == task.key else None


def evaluate_task(task: EvalTask) -> dict[str, Any]:
    """Run one evaluation into its cache entry (written to a temporary folder, then renamed) and return it."""
    from crl import enable_compile_cache

    enable_compile_cache()
    entry = task.entry
    tmp = entry.with_name(f".{entry.name}.tmp-{time.time_ns()}")
    tmp.mkdir(parents=True)
    try:
        policy, s = f"checkpoint:{task.run}", task.settings
        t0 = time.perf_counter()
        if task.evaluator == "goals" and s.get("protocol") == "ogbench":
            from crl.eval.ogbench_protocol import evaluate_ogbench

            spec_env = s["env"]
            r = evaluate_ogbench(spec_env, policy, s["episodes"] or 20, s["seed"] or 0,
                                 max_episode_steps=s["max_episode_steps"], step=task.step, out_dir=tmp)
            r["png"] = str(tmp / "ogbench_tasks.png")
        elif task.evaluator == "goals":
            from crl.eval.goals import run_goals

            r = run_goals(policy, None, s["episodes"], s["seed"], tmp, step=task.step)
        elif task.evaluator == "stitching":
            from crl.eval.stitching import run_stitching

            r = run_stitching(policy, None, None, s["episodes_per_pair"], s["max_pairs_per_distance"], s["seed"],
                              tmp, step=task.step)
        else:
            from crl.eval.geodesic import run_geodesic

            r = run_geodesic(policy, None, s["pairs"], None, s["seed"], tmp, task.step, s["bootstrap"])
        images = [Path(r["png"]).name] if r.get("png") and Path(r["png"]).is_file() else []
        r = {k: v for k, v in r.items() if k not in ("json", "png", "images")}
        record = {"cache_key": task.key, "run": task.run, "evaluator": task.evaluator, "step": task.step,
                  "settings": task.settings, "images": images, "seconds": time.perf_counter() - t0,
                  "evaluated_on": _where(), "result": r}
        from crl.eval.results import write_json

        write_json(tmp, "result", record)
        for stale in tmp.glob(f"{task.evaluator}.json"):
            stale.unlink()
        if entry.exists():  # an unreadable entry (read_cached missed it): replace it
            shutil.rmtree(entry, ignore_errors=True)
        try:
            tmp.rename(entry)
        except OSError:  # another report wrote the same entry meanwhile: keep theirs
            if not (entry / "result.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return json.loads((entry / "result.json").read_text())


def _where() -> str:
    """The Dask worker running this evaluation, or 'local'."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


# ---- the report ------------------------------------------------------------------------------------------------------
@dataclass
class RunReport:
    """One run's section: its info, evaluations (by evaluator), skips and errors."""

    info: RunInfo
    step: int | None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class ReportResult:
    """What `make_report` wrote and how the cache did."""

    html: Path
    markdown: Path
    json: Path
    runs: list[RunReport]
    cache: dict[str, int]


def plan(runs: list[RunInfo], settings: ReportSettings, cache_dir: str | Path | None
         ) -> tuple[list[RunReport], list[EvalTask]]:
    """Each run's evaluations (tasks) and skips with their reasons."""
    reports, tasks = [], []
    for info in runs:
        step = None
        if info.problem is None:
            step = settings.step if settings.step is not None else info.steps[-1]
            if step not in info.steps:
                info.problem = f"no checkpoint at step {step} (has {info.steps})"
        rr = RunReport(info, step if info.problem is None else None)
        reports.append(rr)
        for ev in settings.evaluators:
            reason = _skip_reason(info, ev)
            if reason:
                rr.skipped[ev] = reason
                continue
            s = settings.for_evaluator(ev, info.is_ogbench)
            if info.is_ogbench:
                s["env"] = info.env_name
            folder = Path(cache_dir) / _run_slug(info) if cache_dir is not None else info.path / "eval_cache"
            tasks.append(EvalTask(str(info.path), ev, int(step), s, str(folder), cache_key(info, step, ev, s)))
    return reports, tasks


def _run_slug(info: RunInfo) -> str:
    return f"{info.path.name}-{hashlib.sha256(str(info.path).encode()).hexdigest()[:8]}"


def _skip_reason(info: RunInfo, evaluator: str) -> str | None:
    if info.problem:
        return info.problem
    if evaluator == "goals":
        if info.is_ogbench or info.is_crl_maze:
            return None
        return f"env {info.env_name!r} is neither a crl maze nor an OGBench env"
    if info.is_ogbench:
        return f"{evaluator} needs a crl maze (cell grid, BFS distances); {info.env_name} is an OGBench env"
    if not info.is_crl_maze:
        return f"{evaluator} needs a crl maze env; {info.env_name!r} is not one"
    return None


def run_tasks(tasks: list[EvalTask], workers: int = 1, scheduler: str | None = None, client: Any = None,
              progress: bool = False) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Evaluate `tasks` (all cache misses): in this process, or as Dask tasks. Returns (results, errors) by key."""
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
                errors[t.key] = _error_text(e)
        return results, errors
    from dask.distributed import Client, LocalCluster, as_completed

    own_cluster = own_client = None
    if client is None:
        if scheduler is None:
            own_cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, memory_limit=0, silence_logs=50)
            own_client = Client(own_cluster)
        else:
            own_client = Client(scheduler)
        client = own_client
    try:
        futures = {client.submit(evaluate_task, t, retries=1, pure=False, key=f"crl-eval-{t.key[:24]}"): t
                   for t in tasks}
        _say(progress, f"{len(futures)} evaluations submitted to {client.scheduler.address}")
        for fut in as_completed(futures):
            t = futures[fut]
            try:
                results[t.key] = fut.result()
                _say(progress, f"done {t.evaluator} of {t.run}")
            except Exception as e:  # noqa: BLE001 - shown in the report, not cached
                errors[t.key] = _error_text(e)
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
    return results, errors


def _error_text(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if isinstance(e, CrlError) else f"{type(e).__name__}: {text}"


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
    infos = [read_run(p, lab) for p, lab in zip(paths, _labels(paths), strict=True)]
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
    from crl.eval.report_html import write_report

    html, md, js = write_report(reports, Path(out), settings, cache, title)
    return ReportResult(html, md, js, reports, cache)


def settings_dict(settings: ReportSettings) -> dict[str, Any]:
    """JSON form of the settings."""
    d = asdict(settings)
    d["evaluators"] = list(settings.evaluators)
    return d

