"""The report's cache: one evaluation of (run, checkpoint step, evaluator, settings) is an `EvalTask`, stored as
`<cache>/<evaluator>-step<N>-<hash>/` (result.json + its PNG). `evaluate_task` runs one (a Dask task body) into a
temporary folder renamed into place, so a half-written entry is never read."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crl.eval.runs import RunInfo, checkpoint_folder

CACHE_VERSION = 1
"""Bump when an evaluator's output changes meaning, so old cache entries are not reused."""


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
        from crl.eval.registry import evaluators

        t0 = time.perf_counter()
        r = evaluators()[task.evaluator].run(f"checkpoint:{task.run}", task.step, task.settings, tmp)
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
