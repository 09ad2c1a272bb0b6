"""What every evaluator records, and where it writes (`<out>/<evaluator>.json` + `<evaluator>.png`)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np


def default_out(policy: Any, env_name: str) -> Path:
    """`RUN_DIR/eval` for a checkpoint policy, else `eval_results/<kind>_<env>` in the working directory."""
    if policy.run_dir is not None:
        return Path(policy.run_dir) / "eval"
    return Path("eval_results") / f"{policy.kind}_{env_name}"


def header(evaluator: str, policy: Any, seed: int | None, episodes: int, dataset: str | None = None,
           **extra: Any) -> dict[str, Any]:
    """The common fields: evaluator, policy/run/checkpoint step, env (name, layout, episode length), seed,
    episodes, dataset id (None when there is none), code version, time."""
    from crl import code_version

    env = policy.env
    config = getattr(env, "config", None)
    return {
        "evaluator": evaluator,
        **policy.record(),
        "env": env.spec.name,
        "layout": env.maze.name if hasattr(env, "maze") else None,
        "episode_length": int(env.episode_length),
        "cell_size": float(config.cell_size) if config is not None else None,
        "seed": seed,
        "episodes": int(episodes),
        "dataset": dataset,
        "code_version": code_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }


def _clean(x: Any) -> Any:
    """JSON-safe: numpy scalars/arrays to Python, NaN/inf to None."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json(out_dir: Path, name: str, result: dict[str, Any]) -> Path:
    """Write `<out_dir>/<name>.json` (creating the folder) and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(result), indent=2) + "\n")
    tmp.replace(path)
    return path


def dumps(result: dict[str, Any]) -> str:
    """The JSON text `--json` prints."""
    return json.dumps(_clean(result), indent=2)
