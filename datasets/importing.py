"""Shared helpers for importers: goal slicing, success labels, env-spec dicts, write-all-or-nothing commits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from crl.datasets.store import DatasetStore
from crl.datasets.writer import DEFAULT_SHARD_ROWS
from crl.errors import DatasetError


def parse_indices(text: str | None) -> tuple[int, ...] | None:
    """'0,1' -> (0, 1); None/'' -> None. Raises DatasetError on junk."""
    if text is None or text == "":
        return None
    try:
        out = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise DatasetError(f"goal indices must be comma-separated integers like 0,1, got {text!r}") from None
    if any(i < 0 for i in out):
        raise DatasetError(f"goal indices must be >= 0, got {text!r}")
    return out


def success_labels(next_achieved: np.ndarray, desired: np.ndarray, threshold: float) -> np.ndarray:
    """success[t] = ||achieved(s_{t+1}) - desired_goal_t|| <= threshold (the paper's 0.5 criterion)."""
    return np.linalg.norm(next_achieved - desired, axis=-1) <= threshold


def imported_spec(
    name: str,
    *,
    state_size: int,
    action_size: int,
    goal_size: int,
    goal_indices: tuple[int, ...],
    nq: int,
    nv: int,
    episode_length: int,
    success_threshold: float,
    gym_id: str | None = None,
    family: str = "imported",
) -> dict[str, Any]:
    """An EnvSpec-shaped dict for data whose env is not a crl env."""
    return {
        "name": name, "family": family, "layout": "unknown", "observation_size": state_size + goal_size,
        "state_size": state_size, "goal_size": goal_size, "action_size": action_size,
        "goal_indices": list(goal_indices), "episode_length": int(episode_length),
        "success_threshold": float(success_threshold), "nq": nq, "nv": nv, "gym_id": gym_id, "config": {},
    }


def write_version(
    store: DatasetStore,
    name: str,
    env_spec: dict[str, Any],
    provenance: dict[str, Any],
    batches: Iterable[dict[str, np.ndarray]],
    parent: str | None = None,
    shard_rows: int = DEFAULT_SHARD_ROWS,
) -> dict[str, Any]:
    """Write batches as the next version of `name` and commit it; on any error nothing is left behind."""
    staging = store.begin(name, env_spec, provenance=provenance, parent=parent)
    try:
        writer = staging.writer("import", shard_rows=shard_rows)
        try:
            n = 0
            for b in batches:
                writer.append(b)
                n += 1
            if n == 0:
                raise DatasetError("the input holds no complete episodes")
        finally:
            writer.close()
        return staging.commit()
    except BaseException:
        staging.abort()
        raise
