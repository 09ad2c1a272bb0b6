"""OGBench `.npz` import: observations, actions, terminals (+ qpos, qvel) with one row per state.

In OGBench's files every trajectory of L transitions is L+1 rows; the last row (terminals == 1) is the final
state s_L, whose action is a placeholder. So transitions are the rows with terminals == 0 and the terminal row
becomes the episode's `final_*` entry (its placeholder action is kept as `final_action`, so nothing is lost).
OGBench data carry no commanded goal: desired_goal is the episode's final achieved goal (hindsight), and
success/reward follow from it with the success threshold. Episodes end by the time limit (truncation).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from crl.datasets.importing import imported_spec, success_labels, write_version
from crl.datasets.store import DatasetStore
from crl.errors import CrlError, DatasetError

REQUIRED = ("observations", "actions", "terminals")


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read an OGBench npz into memory, validating keys and row counts."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"OGBench file {p} does not exist")
    try:
        with np.load(p, allow_pickle=False) as f:
            data = {k: np.asarray(f[k]) for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"{p} is not a readable .npz file ({type(e).__name__}: {e})") from e
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise DatasetError(f"{p} lacks OGBench keys {missing} (has {sorted(data)})")
    n = len(data["observations"])
    for k in ("actions", "terminals", "qpos", "qvel"):
        if k in data and len(data[k]) != n:
            raise DatasetError(f"{p}: '{k}' has {len(data[k])} rows but observations has {n}")
    if data["observations"].ndim != 2 or data["actions"].ndim != 2:
        raise DatasetError(f"{p}: observations and actions must be 2-D (visual datasets are not supported)")
    term = data["terminals"]
    if n == 0 or not np.isin(term, (0, 1)).all():
        raise DatasetError(f"{p}: terminals must be 0/1 and the file non-empty")
    if term[-1] != 1:
        raise DatasetError(f"{p}: the last row is not terminal (truncated or corrupted file)")
    return data


def _episodes(
    data: dict[str, np.ndarray], goal_indices: tuple[int, ...], threshold: float, per_batch: int
) -> Iterator[dict[str, np.ndarray]]:
    obs = data["observations"].astype(np.float32, copy=False)
    act = data["actions"].astype(np.float32, copy=False)
    n = len(obs)
    qpos = data.get("qpos", np.zeros((n, 0), np.float32)).astype(np.float32, copy=False)
    qvel = data.get("qvel", np.zeros((n, 0), np.float32)).astype(np.float32, copy=False)
    ends = np.flatnonzero(data["terminals"] == 1)
    starts = np.concatenate([[0], ends[:-1] + 1])
    if np.any(ends - starts < 1):
        bad = int(np.flatnonzero(ends - starts < 1)[0])
        raise DatasetError(f"trajectory {bad} has no transition (two terminal rows in a row at {int(ends[bad])})")
    gi = np.asarray(goal_indices)
    for b0 in range(0, len(ends), per_batch):
        sl = slice(b0, min(b0 + per_batch, len(ends)))
        s, e = starts[sl], ends[sl]
        rows = np.concatenate([np.arange(a, z) for a, z in zip(s, e, strict=True)])
        lengths = e - s
        nxt = rows + 1  # s_{t+1} is the next row; for the last transition that is the terminal row
        goal = obs[e][:, gi]
        desired = np.repeat(goal, lengths, axis=0)
        success = success_labels(obs[nxt][:, gi], desired, threshold)
        trunc = np.zeros(len(rows), bool)
        trunc[np.cumsum(lengths) - 1] = True
        ids = np.repeat(np.arange(sl.start, sl.stop, dtype=np.int64), lengths)
        steps = (np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)).astype(np.int32)
        yield {
            "observation": obs[rows], "action": act[rows], "achieved_goal": obs[rows][:, gi],
            "desired_goal": desired, "reward": success.astype(np.float32), "success": success,
            "terminal": np.zeros(len(rows), bool), "truncation": trunc, "qpos": qpos[rows], "qvel": qvel[rows],
            "episode_id": ids, "step": steps,
            "final_observation": obs[e], "final_achieved_goal": goal, "final_desired_goal": goal,
            "final_qpos": qpos[e], "final_qvel": qvel[e], "final_action": act[e],
            "episode_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        }


_LOCOMAZE = re.compile(r"^(?P<base>(?:point|ant|humanoid)maze-(?:medium|large|giant|teleport|arena)"
                       r"(?:-(?:navigate|stitch|explore|stitch-\w+))?)(?P<version>-v\d+)?$")


def normalise_env_name(name: str) -> str:
    """An env name (or file stem) as the `ogbench:` name OGBench's protocol accepts: for a locomaze dataset name,
    'ogbench:' prefixed, '-val' dropped and '-v0' added when it has no version ('pointmaze-medium-navigate' ->
    'ogbench:pointmaze-medium-navigate-v0'); any other name is kept (a bare file stem gets the 'ogbench:' prefix)."""
    bare = name.removeprefix("ogbench:").removesuffix("-val")
    m = _LOCOMAZE.match(bare)
    if m is None:
        return name if ":" in name else f"ogbench:{bare}"
    return f"ogbench:{bare if m['version'] else bare + '-v0'}"


def maze_layout(env_name: str) -> dict[str, Any] | None:
    """The OGBench maze record (map, cell size, offset, crl layout text) of a locomaze env name, or None when the
    name is no locomaze or `ogbench` is not installed (the import then records the layout as unknown)."""
    from crl.ogbench_tasks import env_id

    try:
        gid = env_id(env_name)
    except CrlError:
        return None
    try:
        from crl.datasets.ogbench_gen import ogbench_layout

        return ogbench_layout(gid)
    except CrlError:
        return None


def ogbench_spec(env_name: str, data: dict[str, np.ndarray], goal_indices: tuple[int, ...], threshold: float,
                 layout: dict[str, Any] | None) -> dict[str, Any]:
    """The env spec of OGBench data, the same for generated and imported data of one env: family 'ogbench', the
    OGBench env name, and (when known) the maze layout: OGBench's map / unit / offset under 'ogbench_maze' and the
    crl layout text + cell size that `crl-data split stitch` reads."""
    ends = np.flatnonzero(data["terminals"] == 1)
    lengths = np.diff(np.concatenate([[-1], ends])) - 1
    spec = imported_spec(
        env_name, state_size=data["observations"].shape[1], action_size=data["actions"].shape[1],
        goal_size=len(goal_indices), goal_indices=goal_indices, nq=data.get("qpos", np.zeros((0, 0))).shape[1],
        nv=data.get("qvel", np.zeros((0, 0))).shape[1], episode_length=int(lengths.max()),
        success_threshold=threshold, family="ogbench")
    if layout is not None:
        from crl.ogbench_tasks import env_id

        spec["gym_id"] = env_id(env_name)
        spec["ogbench_maze"] = {k: layout[k] for k in ("maze_map", "maze_unit", "maze_offset")}
        if "layout_text" in layout:
            spec["layout"] = spec["gym_id"]
            spec["layout_text"] = layout["layout_text"]
            spec["config"] = {"cell_size": layout["maze_unit"]}
    return spec


def import_arrays(
    store: DatasetStore, data: dict[str, np.ndarray], name: str, env_name: str, provenance: dict[str, Any],
    layout: dict[str, Any] | None, goal_indices: tuple[int, ...] = (0, 1), success_threshold: float = 0.5,
    parent: str | None = None, episodes_per_batch: int = 256,
) -> dict[str, Any]:
    """Write OGBench-layout arrays (rows as in OGBench's npz files) as the next version of `name`."""
    obs_dim = data["observations"].shape[1]
    if any(i >= obs_dim for i in goal_indices):
        raise DatasetError(f"goal indices {goal_indices} out of range for {obs_dim}-dim observations")
    spec = ogbench_spec(env_name, data, goal_indices, success_threshold, layout)
    batches = _episodes(data, goal_indices, success_threshold, episodes_per_batch)
    return write_version(store, name, spec, provenance, batches, parent=parent)


def import_ogbench(
    store: DatasetStore,
    path: str | Path,
    name: str,
    goal_indices: tuple[int, ...] = (0, 1),
    success_threshold: float = 0.5,
    env_name: str | None = None,
    parent: str | None = None,
    episodes_per_batch: int = 256,
) -> dict[str, Any]:
    """Import one OGBench npz as the next version of `name`; returns its manifest. The env name (default: the file
    stem) is normalised to one OGBench's protocol accepts, and the maze layout is recorded when ogbench is
    installed (as `crl-data generate ogbench` does)."""
    p = Path(path)
    data = load_npz(p)
    stem = p.name[: -len(".npz")] if p.name.endswith(".npz") else p.stem
    env = normalise_env_name(env_name or stem)
    provenance = {
        "source": "ogbench", "file": p.name, "split": "val" if stem.endswith("-val") else "train",
        "rows_in_file": int(len(data["observations"])),
        "goals": "hindsight: desired_goal = final achieved goal of the episode",
    }
    return import_arrays(store, data, name, env, provenance, maze_layout(env), goal_indices, success_threshold,
                         parent, episodes_per_batch)


def val_file(path: str | Path) -> Path | None:
    """The `-val` sibling of an OGBench file (x.npz -> x-val.npz), if it exists."""
    p = Path(path)
    if p.name.endswith("-val.npz"):
        return None
    q = p.with_name(p.name[: -len(".npz")] + "-val.npz")
    return q if q.is_file() else None
