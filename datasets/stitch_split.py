"""Making a stitching split: cut a version's episodes into segments in which every pair of states is at most K maze
cells apart (BFS distance), so every (state, future goal) pair a learner draws is at most K cells apart (the paper's
stitching setting), and ship the evaluation tasks (start cell, goal cell) grouped by distance with them.

A split is a version of its own that copies none of its parent's data: a small Zarr group (`split.zarr`) holds
the segments (parent global row ranges) and the tasks; its manifest has `kind: "split"` (datasets/FORMAT.md).
`DatasetStore.open(split_id)` reads it like any dataset whose episodes are the segments (`split_reader.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from crl.datasets.ids import DatasetId, parse_id, parse_name
from crl.datasets.manifest import MANIFEST, content_hash, now_iso
from crl.datasets.schema import FORMAT_NAME, FORMAT_VERSION
from crl.datasets.shard import DEFAULT_COMPRESSION, compressors
from crl.datasets.staging import STAGING_INFO, version_rel
from crl.errors import CrlError, DatasetError

if TYPE_CHECKING:
    from crl.datasets.reader import DatasetReader
    from crl.datasets.store import DatasetStore
    from crl.envs.maze import Maze

SPLIT_KIND = "split"
INDEX = "split.zarr"
INDEX_FORMAT = "crl-split"
TASK_ARRAYS = ("start_cell", "goal_cell", "distance", "in_distribution")


def stitch_rule(max_cells: int) -> str:
    """The stitching rule in words (recorded in the manifest)."""
    return (f"every pair of states in a segment (its final next state included) is at most {max_cells} maze "
            f"cells apart by BFS over free cells; a state in a wall counts as the nearest free cell")


# ------------------------------------------------------------------------------------------------- geometry
def maze_diameter(maze: Maze) -> int:
    """The largest finite BFS distance between two free cells."""
    d = maze.cell_distance_matrix
    return int(d[np.isfinite(d)].max())


def state_cells(maze: Maze, xy: np.ndarray) -> np.ndarray:
    """Index (into `maze.free_cells()`) of the cell each point [..., 2] is in; a point in a wall or outside the grid
    (a point mass grazing a wall) gets the free cell whose square is nearest to it."""
    p = np.asarray(xy, dtype=np.float64).reshape(-1, 2) / maze.cell_size
    if not np.isfinite(p).all():
        raise DatasetError("non-finite achieved goals (NaN/Inf) in the data; cannot place states in maze cells")
    free = np.asarray(maze.free_cells(), dtype=np.int64)
    grid = np.full(maze.shape, -1, dtype=np.int64)
    grid[free[:, 0], free[:, 1]] = np.arange(len(free))
    rc = np.floor(p + 0.5).astype(np.int64)
    inside = (rc >= 0).all(axis=1) & (rc[:, 0] < maze.shape[0]) & (rc[:, 1] < maze.shape[1])
    idx = np.full(len(p), -1, dtype=np.int64)
    idx[inside] = grid[rc[inside, 0], rc[inside, 1]]
    bad = idx < 0
    if bad.any():
        q = p[bad]
        clipped = np.clip(q[:, None, :], free[None] - 0.5, free[None] + 0.5)
        idx[bad] = np.argmin(np.linalg.norm(clipped - q[:, None, :], axis=-1), axis=1)
    return idx.reshape(np.shape(xy)[:-1])


def cut_episode(cells: np.ndarray, dist: np.ndarray, max_cells: int) -> list[tuple[int, int]]:
    """Greedy left-to-right cut of one episode whose T+1 states s_0..s_T are in free cells `cells` [T+1].

    Returns transition ranges [a, b) (states s_a..s_b) in which every pair of cells is at most `max_cells` apart
    under `dist`. A new segment starts at the transition whose next state would break the rule; a transition whose
    own two states are further apart than `max_cells` is in no segment.
    """
    cells = np.asarray(cells)
    T = len(cells) - 1
    out: list[tuple[int, int]] = []
    a, members = 0, {int(cells[0])}
    for p in (np.flatnonzero(cells[1:] != cells[:-1]) + 1).tolist():  # states where the cell changes
        c = int(cells[p])
        if c in members or all(dist[c, m] <= max_cells for m in members):
            members.add(c)
            continue
        if p - 1 > a:
            out.append((a, p - 1))
        prev = int(cells[p - 1])
        if dist[prev, c] <= max_cells:
            a, members = p - 1, {prev, c}
        else:
            a, members = p, {c}
    if T > a:
        out.append((a, T))
    return out


@dataclass(frozen=True)
class Segments:
    """Kept segments as parent global row ranges [start, end), and what the minimum length dropped."""

    start: np.ndarray
    end: np.ndarray
    dropped_segments: int
    dropped_transitions: int


def stitch_segments(reader: DatasetReader, maze: Maze, max_cells: int, min_length: int = 2) -> Segments:
    """Cut every episode of `reader` (shard by shard, so memory stays one shard) and drop segments shorter than
    `min_length` transitions. `dropped_transitions` counts every parent transition in no kept segment."""
    gi = list(reader.env_spec["goal_indices"])
    dist = maze.cell_distance_matrix
    starts: list[int] = []
    ends: list[int] = []
    short = 0
    base = 0
    for ep in reader.iter_episodes(["observation", "final_observation"]):
        xy = np.concatenate([ep["observation"][:, gi], ep["final_observation"][None, gi]])
        for a, b in cut_episode(state_cells(maze, xy), dist, max_cells):
            if b - a >= min_length:
                starts.append(base + a)
                ends.append(base + b)
            else:
                short += 1
        base += len(ep["observation"])
    start, end = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    return Segments(start, end, short, int(base - (end - start).sum()))


# ------------------------------------------------------------------------------------------------- tasks
def stitching_tasks(maze: Maze, max_cells: int) -> dict[str, Any]:
    """Evaluation tasks of a maze: every ordered pair of distinct, connected free cells, sorted by BFS distance
    (then start, then goal), flagged in-distribution when the distance is at most `max_cells`.

    Returns numpy arrays `start_cell` [T, 2] int64, `goal_cell` [T, 2] int64, `distance` [T] int64,
    `in_distribution` [T] bool, and `max_cells` (int).
    """
    if int(max_cells) != max_cells or max_cells < 1:
        raise DatasetError(f"max_cells must be a whole number >= 1, got {max_cells}")
    cells = np.asarray(maze.free_cells(), dtype=np.int64)
    d = maze.cell_distance_matrix
    i, j = np.nonzero(np.isfinite(d) & (d >= 1))
    dist = d[i, j].astype(np.int64)
    order = np.lexsort((j, i, dist))
    i, j, dist = i[order], j[order], dist[order]
    return {"start_cell": cells[i], "goal_cell": cells[j], "distance": dist,
            "in_distribution": dist <= int(max_cells), "max_cells": int(max_cells)}


def _index_group(store: DatasetStore, dsid: DatasetId, manifest: dict[str, Any]) -> zarr.Group:
    if manifest.get("kind") != SPLIT_KIND:
        raise DatasetError(f"{dsid} is not a split (kind {manifest.get('kind', 'data')!r}); "
                           f"make one with `crl-data split stitch {dsid} --max-cells K`")
    rel = f"{version_rel(dsid)}/{manifest['split']['path']}"
    try:
        return zarr.open_group(store=store.loc.zarr_store(rel, read_only=True), mode="r", zarr_format=3)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        raise DatasetError(f"{dsid}: its index {manifest['split']['path']} is missing; the split is damaged "
                           f"(`crl-data verify {dsid}`)") from None


def _read_index(store: DatasetStore, dsid: DatasetId, manifest: dict[str, Any], names: list[str]) -> list[Any]:
    g = _index_group(store, dsid, manifest)
    try:
        return [np.asarray(g[n][...]) for n in names]
    except Exception as e:  # noqa: BLE001 - any read failure of the index is damage
        raise DatasetError(f"{dsid}: its index cannot be read ({type(e).__name__}: {e}); the split is damaged "
                           f"(`crl-data verify {dsid}`)") from e


def load_tasks(store: DatasetStore, split_id: str) -> dict[str, Any]:
    """The evaluation tasks a split ships with (same keys as `stitching_tasks`); does not need the parent."""
    dsid = parse_id(split_id)
    m = store.manifest(split_id)
    arrays = _read_index(store, dsid, m, [f"task_{n}" for n in TASK_ARRAYS])
    out: dict[str, Any] = dict(zip(TASK_ARRAYS, arrays, strict=True))
    out["in_distribution"] = out["in_distribution"].astype(bool)
    out["max_cells"] = int(m["split"]["max_cells"])
    return out


def load_segments(store: DatasetStore, dsid: DatasetId, manifest: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A split's segments as parent global row ranges (start, end)."""
    start, end = _read_index(store, dsid, manifest, ["segment_start", "segment_end"])
    return start.astype(np.int64), end.astype(np.int64)


# ------------------------------------------------------------------------------------------------- writing
def _maze_of(parent: dict[str, Any]) -> Maze:
    from crl.envs import maze_from_spec  # imported on use: crl.envs loads MuJoCo

    try:
        return maze_from_spec(parent["env_spec"])
    except CrlError as e:
        raise DatasetError(f"cannot make a stitching split of {parent['id']}: {e}") from None


def stitch_split(
    store: DatasetStore,
    parent_id: str,
    max_cells: int,
    name: str | None = None,
    min_length: int = 2,
) -> dict[str, Any]:
    """Make and commit the stitching split of `parent_id` with rule `max_cells`; returns its manifest.

    The new version is the next of `name` (default `<parent namespace>/<parent name>-stitch<K>`). Bad input is
    refused before anything is written; the write goes through a staging folder and an atomic rename.
    """
    pm = store.manifest(parent_id)
    if pm.get("kind") == SPLIT_KIND:
        raise DatasetError(f"{parent_id} is itself a split; make splits of plain versions only: split its parent "
                           f"{pm['parent']['id']} instead")
    if min_length < 1:
        raise DatasetError(f"--min-length must be >= 1, got {min_length}")
    maze = _maze_of(pm)
    diameter = maze_diameter(maze)
    if max_cells < 1 or max_cells >= diameter:
        raise DatasetError(f"--max-cells {max_cells} is out of range for maze {maze.name!r} (diameter {diameter}): "
                           f"choose 1..{diameter - 1} so some evaluation pairs lie further apart than the rule")
    spec = dict(pm["env_spec"])
    gi = list(spec.get("goal_indices") or [])
    width = int(pm["fields"]["observation"]["shape"][0])
    if len(gi) != 2 or max(gi) >= width:
        raise DatasetError(f"{parent_id}: goal_indices {gi} do not pick an (x, y) from its {width}-wide observation")
    pid = parse_id(parent_id)
    target = name or f"{pid.namespace}/{pid.name}-stitch{max_cells}"
    parse_name(target)
    segs = stitch_segments(store.open(parent_id), maze, max_cells, min_length)
    if segs.start.size == 0:
        raise DatasetError(f"no segment of {parent_id} has {min_length} or more transitions under --max-cells "
                           f"{max_cells}; lower --min-length or raise --max-cells")
    tasks = stitching_tasks(maze, max_cells)
    spec.setdefault("layout_text", maze.to_text())
    provenance = {**(pm.get("provenance") or {}), "split_method": "stitch", "split_parent": pm["id"],
                  "max_cells": max_cells}
    st = store.begin(target, spec, provenance=provenance, parent=parent_id)
    try:
        return _commit(store, st.id, pm, spec, provenance, segs, tasks, max_cells, min_length, diameter)
    except BaseException:
        st.abort()
        raise


def _write_index(store: DatasetStore, rel: str, segs: Segments, tasks: dict[str, Any], max_cells: int) -> None:
    arrays = {"segment_start": segs.start, "segment_end": segs.end,
              **{f"task_{n}": np.asarray(tasks[n]) for n in TASK_ARRAYS}}
    g = zarr.open_group(store=store.loc.zarr_store(rel), mode="w", zarr_format=3, attributes={
        "format": INDEX_FORMAT, "format_version": FORMAT_VERSION, "segments": int(segs.start.size),
        "tasks": int(tasks["distance"].size), "max_cells": int(max_cells)})
    for n, v in arrays.items():
        g.create_array(n, shape=v.shape, dtype=v.dtype, chunks=v.shape, compressors=compressors(DEFAULT_COMPRESSION),
                       fill_value=0)[...] = v


def _commit(store: DatasetStore, dsid: DatasetId, pm: dict[str, Any], spec: dict[str, Any],
            provenance: dict[str, Any], segs: Segments, tasks: dict[str, Any], max_cells: int, min_length: int,
            diameter: int) -> dict[str, Any]:
    from crl import code_version
    from crl.datasets.staging import staging_rel

    loc, rel, final = store.loc, staging_rel(dsid), version_rel(dsid)
    _write_index(store, f"{rel}/{INDEX}", segs, tasks, max_cells)
    sha, nbytes = loc.hash_tree(f"{rel}/{INDEX}")
    kept = int((segs.end - segs.start).sum())
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": SPLIT_KIND,
        "id": str(dsid),
        "created": now_iso(),
        "parent": {"id": pm["id"], "content_hash": pm["content_hash"]},
        "env_spec": spec,
        "provenance": provenance,
        "code_version": code_version(),
        "compression": DEFAULT_COMPRESSION,
        "fields": pm["fields"],
        "shards": [],
        "split": {
            "method": "stitch", "max_cells": int(max_cells), "min_length": int(min_length),
            "rule": stitch_rule(max_cells), "maze": spec.get("layout"), "diameter": int(diameter),
            "path": INDEX, "bytes": nbytes, "sha256": sha,
            "segments": int(segs.start.size), "transitions": kept,
            "dropped_segments": segs.dropped_segments, "dropped_transitions": segs.dropped_transitions,
            "parent_episodes": int(pm["totals"]["episodes"]), "parent_transitions": int(pm["totals"]["transitions"]),
            "tasks": int(tasks["distance"].size),
            "test_tasks": int((~tasks["in_distribution"]).sum()),
        },
        "totals": {"shards": 0, "episodes": int(segs.start.size), "transitions": kept, "bytes": nbytes},
        "content_hash": content_hash([sha]),
    }
    if loc.exists(final):
        raise DatasetError(f"{dsid} already exists; committed versions are immutable")
    loc.remove_tree(f"{rel}/shards")  # begin() made it; a split has no shards
    loc.write_json(f"{rel}/{MANIFEST}", manifest)
    loc.rename_dir(rel, final)
    loc.remove_file(f"{final}/{STAGING_INFO}")
    loc.make_read_only(final)
    return manifest
