"""What the report knows about a run folder without loading its checkpoint: config, env spec, metrics, checkpoint
steps and the evaluator results stored in it (`read_run`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crl.errors import ConfigError

CRL_MAZE_FAMILIES = ("point", "ant", "humanoid")


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
    """online, offline, finetune, collector (config.json's `kind`; a dataset version folder: its collector)."""
    problem: str | None = None
    """Why nothing about it can be reported beyond its folder (no config)."""
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Evaluator results kept in the folder (`stored_results`), by evaluator."""

    @property
    def records_only(self) -> bool:
        """A run folder without checkpoints (e.g. committed results): the report draws it from its records."""
        return self.problem is None and not self.steps

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
    """Where a run keeps its checkpoints (crl.checkpoint.find_checkpoints), or None when it has none."""
    from crl.checkpoint import find_checkpoints

    try:
        return find_checkpoints(run)
    except ConfigError:
        return None


def checkpoint_steps(run: Path) -> list[int]:
    """Committed checkpoint steps of a run (orbax step folders; temporary ones are not digits)."""
    ck = checkpoint_folder(run)
    if ck is None:
        return []
    return sorted(int(p.name) for p in ck.iterdir() if p.is_dir() and p.name.isdigit())


def read_run(path: str | Path, label: str | None = None) -> RunInfo:
    """Config, env spec, metrics, checkpoint steps and stored evaluator results of a run folder, or of a dataset
    version folder (its first collector worker's run folder; older versions: manifest.json); a problem is
    recorded, not raised."""
    from crl.metrics import read_jsonl

    run = Path(path).expanduser().absolute()
    if not run.is_dir():
        raise ConfigError(f"no run folder {run}; pass folders written by `crl-train ... --out RUN_DIR`")
    workers = sorted(p for p in (run / "collector").iterdir() if p.is_dir()) if (run / "collector").is_dir() else []
    version = not (run / "config.json").is_file() and (run / "manifest.json").is_file()
    if version and workers and (workers[0] / "config.json").is_file():
        run, version = workers[0], False  # a collector worker is a run folder like any other
    cfg_path = run / "manifest.json" if version else run / "config.json"
    text = cfg_path.read_text() if cfg_path.is_file() else ""
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        doc = {}
    if version:  # a version written before collectors were driver runs: its config and env from the manifest
        col = doc.get("provenance", {}).get("collector", {})
        src = col.get("source") if isinstance(col.get("source"), dict) else {}
        config = {**col, **_flat_config(src), "depth": col.get("collector_depth")}
        env_spec = doc.get("env_spec") or {"name": col.get("env", "?")}
    else:
        config = _flat_config(doc)
        env_spec = _env_spec(doc, config)
    kind = "collector" if version else str(doc.get("kind", "online" if "train" in doc else "?"))
    name = label or Path(path).name
    info = RunInfo(run, name + (" (collector)" if kind == "collector" else ""), config, env_spec,
                   read_jsonl(run / "metrics.jsonl"), checkpoint_steps(run),
                   hashlib.sha256(text.encode()).hexdigest()[:16], kind, stored=stored_results(run))
    if not text:
        info.problem = "no config.json (not a crl-train run folder) and no manifest.json (not a dataset version)"
    return info


def stored_results(run: Path) -> dict[str, dict[str, Any]]:
    """Evaluator results kept in a run folder, by evaluator: the report's cache entries
    (`eval_cache/*/result.json`: the latest checkpoint step, then the latest written) and `crl-eval` outputs
    (`eval/<name>.json`), the cache entries first. Each as a cache record: evaluator, step, settings, result,
    images, `_entry`."""
    found: dict[str, dict[str, Any]] = {}
    for f in sorted((run / "eval").glob("*.json")) if (run / "eval").is_dir() else []:
        try:
            r = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        ev = r.get("evaluator") if isinstance(r, dict) else None
        if ev:
            images = [p.name for p in (f.with_suffix(".png"),) if p.is_file()]
            found[ev] = {"evaluator": ev, "step": r.get("step"), "settings": {}, "images": images,
                         "_entry": str(f.parent), "result": {k: v for k, v in r.items() if k not in ("json", "png")}}
    cached: dict[str, dict[str, Any]] = {}
    for f in sorted(run.glob("eval_cache/*/result.json")) + sorted(run.glob("eval_cache/*/*/result.json")):
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        ev = rec.get("evaluator")
        order = (rec.get("step") or 0, f.stat().st_mtime_ns)
        if ev and (ev not in cached or order >= cached[ev]["_order"]):
            cached[ev] = {**rec, "_entry": str(f.parent), "_order": order}
    for rec in cached.values():
        rec.pop("_order")
    return {**found, **cached}


def labels(paths: list[Path]) -> list[str]:
    """Folder names, with parents added until they are unique."""
    depth = 1
    while True:
        labels = ["/".join(p.parts[-depth:]) for p in paths]
        if len(set(labels)) == len(labels) or depth > max(len(p.parts) for p in paths):
            return labels
        depth += 1
