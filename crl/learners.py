"""Several offline learners on one dataset: one after another, or as Dask tasks (a LocalCluster or a scheduler).

`crl-train offline --depth 4,64 --seed 0,1` gives one run folder per learner (`OUT/d4-s0`, ...). On Dask each
learner is a task that is retried once when it fails (a resumed retry continues from its last checkpoint); a learner
that fails twice is reported and the others finish. Dask's INFO log lines are hidden, as in the collector.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _train_one(config: Any, out_dir: str, resume: bool, progress: bool, root: str | None) -> dict[str, float]:
    """One learner into `out_dir` (a Dask task body: resumes when a retry finds a checkpoint)."""
    from crl import enable_compile_cache
    from crl.datasets import DatasetStore
    from crl.offline import run_offline

    enable_compile_cache()
    store = DatasetStore(root)
    retry = resume or (Path(out_dir) / "checkpoints").is_dir()
    return run_offline(config, out_dir, resume=retry, progress=progress, store=store)


def learner_folders(grid: list[tuple[str, Any]], out: str | Path) -> dict[str, str]:
    """{name: run folder} of a grid: `out/name` per learner, or `out` itself for a single learner."""
    out = Path(out)
    return {name: str(out if len(grid) == 1 else out / name) for name, _ in grid}


def run_learners(
    grid: list[tuple[str, Any]], out: str | Path, resume: bool = False, progress: bool = True, workers: int = 0,
    scheduler: str | None = None, root: str | None = None,
) -> dict[str, dict[str, float] | str]:
    """Train every (name, OfflineConfig) of `grid` into `out/name` (or `out` itself for a single learner).

    Returns {name: last log record} for learners that finished and {name: "error message"} for those that failed
    (sequential runs raise a user error (CrlError) at once; it is the same for every learner)."""
    root = root or os.environ.get("CRL_DATA_DIR")
    folders = learner_folders(grid, out)
    if workers <= 0 and scheduler is None:
        return {name: _train_one(cfg, folders[name], resume, progress, root) for name, cfg in grid}
    return _fan_out(grid, folders, resume, workers, scheduler, root)


def _fan_out(grid: list[tuple[str, Any]], folders: dict[str, str], resume: bool, workers: int,
             scheduler: str | None, root: str | None) -> dict[str, dict[str, float] | str]:
    from crl.fanout import fan_out

    tasks = {f"offline-{name}-{abs(hash(folders[name]))}": (cfg, folders[name], resume, False, root)
             for name, cfg in grid}
    by_key = {key: name for key, (name, _) in zip(tasks, grid, strict=True)}
    results, errors = fan_out(_train_one, tasks, workers=workers, scheduler=scheduler)
    out: dict[str, dict[str, float] | str] = {by_key[k]: v for k, v in results.items()}
    out.update({by_key[k]: e for k, e in errors.items()})
    return dict(sorted(out.items()))
