"""Coverage maps: where a dataset's states are, computed with Dask over its shards, drawn over the maze.

One Dask task per shard reads that shard's achieved goals (the position) chunk by chunk and returns a 2-D
histogram on a fixed grid, per-cell visit counts, episode lengths and a sample of episode starts and goals; the
partial results are summed, so a dataset is never loaded whole. A split counts the rows of its segments (read
from the parent's shards) and draws its evaluation tasks. An env without a maze layout gets the histogram alone.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np

from crl.datasets.ids import parse_id
from crl.datasets.location import Location
from crl.datasets.shard import open_shard
from crl.datasets.staging import version_rel
from crl.datasets.store import DatasetStore
from crl.errors import CrlError, DatasetError

BINS = 160
"""Histogram bins along the longer side of the map."""
MARKERS = 200
"""At most this many start and goal markers are drawn (an even sample)."""
_CHUNK = 1 << 20


@dataclass
class Coverage:
    """What a coverage map shows, and the figures that summarise it."""

    dataset: str
    kind: str
    transitions: int
    episodes: int
    extent: tuple[float, float, float, float]
    """(low0, high0, low1, high1): world bounds along goal coordinates 0 (plot rows) and 1 (plot columns)."""
    hist: np.ndarray
    episode_lengths: np.ndarray
    starts: np.ndarray
    goals: np.ndarray
    maze: Any = None
    free_cells: list[tuple[int, int]] = field(default_factory=list)
    cell_counts: np.ndarray | None = None
    tasks: dict[str, np.ndarray] | None = None
    shards: int = 0
    seconds: float = 0.0

    @property
    def fraction_visited(self) -> float | None:
        """Free cells with at least one state, over all free cells (None without a maze)."""
        if self.cell_counts is None:
            return None
        return float((self.cell_counts > 0).mean())

    @property
    def entropy(self) -> float | None:
        """Entropy of the states' cell distribution over log2(free cells): 1 = uniform, 0 = one cell."""
        if self.cell_counts is None or self.cell_counts.sum() == 0 or len(self.cell_counts) < 2:
            return None
        p = self.cell_counts[self.cell_counts > 0] / self.cell_counts.sum()
        return float(-(p * np.log2(p)).sum() / math.log2(len(self.cell_counts)))

    def summary(self) -> dict[str, Any]:
        """The numbers of the map (JSON-ready)."""
        lengths = self.episode_lengths
        return {"dataset": self.dataset, "kind": self.kind, "transitions": self.transitions,
                "episodes": self.episodes, "free_cells": len(self.free_cells) or None,
                "cells_visited": None if self.cell_counts is None else int((self.cell_counts > 0).sum()),
                "fraction_visited": self.fraction_visited, "entropy": self.entropy,
                "episode_length": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                                   "max": int(lengths.max())} if lengths.size else None,
                "shards": self.shards, "seconds": round(self.seconds, 3)}


def _maze(spec: dict[str, Any]) -> Any:
    from crl.envs import maze_from_spec  # imported on use: crl.envs loads MuJoCo

    try:
        return maze_from_spec(spec)
    except CrlError:
        return None


def _shard_part(loc: Location, rel: str, ranges: np.ndarray | None, extent: tuple[float, ...], bins: tuple[int, int],
                goal_dims: tuple[int, int], maze: Any) -> dict[str, Any]:
    """One shard's share: histogram, cell counts, episode (or segment) lengths, start/goal samples.

    ranges: [k, 2] local row ranges to count (a split's segments), or None for every row (episodes from the
    shard's offsets)."""
    from crl.datasets.stitch_split import state_cells

    g = open_shard(loc, rel)
    ag, dg = g["achieved_goal"], g["desired_goal"]
    keep = None
    if ranges is None:  # every row
        offsets = np.asarray(g["episode_offsets"][:], dtype=np.int64)
        ranges = np.stack([offsets[:-1], offsets[1:]], axis=1)
    hist = np.zeros(bins, np.int64)
    cells = np.zeros(len(maze.free_cells()) if maze is not None else 0, np.int64)
    n = int(ranges[-1, 1]) if len(ranges) else 0
    if int((ranges[:, 1] - ranges[:, 0]).sum()) != n:  # a split's segments: only their rows
        keep = np.zeros(n, bool)
        for a, b in ranges:
            keep[a:b] = True
    for lo in range(0, n, _CHUNK):
        xy = np.asarray(ag[lo:min(n, lo + _CHUNK)])[:, list(goal_dims)]
        if keep is not None:
            xy = xy[keep[lo:lo + _CHUNK]]
        hist += _hist2d(xy, extent, bins)
        if maze is not None and len(xy):
            cells += np.bincount(state_cells(maze, xy), minlength=len(cells))
    step = max(1, len(ranges) // MARKERS)
    first = ranges[::step, 0]
    return {"hist": hist, "cells": cells, "lengths": ranges[:, 1] - ranges[:, 0],
            "starts": np.asarray(ag.get_orthogonal_selection((first, list(goal_dims)))) if len(first) else
            np.zeros((0, 2)),
            "goals": np.asarray(dg.get_orthogonal_selection((first, list(goal_dims)))) if len(first) else
            np.zeros((0, 2))}


def _hist2d(xy: np.ndarray, extent: tuple[float, ...], bins: tuple[int, int]) -> np.ndarray:
    """np.histogram2d's counts (points outside the extent dropped), by direct bin arithmetic (faster than
    np.histogram2d: bench/RESULTS.md, "Coverage maps")."""
    i = np.floor((xy[:, 0] - extent[0]) / (extent[1] - extent[0]) * bins[0]).astype(np.int64)
    j = np.floor((xy[:, 1] - extent[2]) / (extent[3] - extent[2]) * bins[1]).astype(np.int64)
    i[xy[:, 0] == extent[1]] = bins[0] - 1  # the closed right edge, as numpy's
    j[xy[:, 1] == extent[3]] = bins[1] - 1
    ok = (i >= 0) & (i < bins[0]) & (j >= 0) & (j < bins[1])
    return np.bincount(i[ok] * bins[1] + j[ok], minlength=bins[0] * bins[1]).reshape(bins)


def _extent_from_data(loc: Location, rels: list[str], goal_dims: tuple[int, int]) -> tuple[float, ...]:
    import dask.array as da

    arrays = [da.from_zarr(open_shard(loc, r)["achieved_goal"])[:, list(goal_dims)] for r in rels]
    xy = da.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    lo, hi = dask.compute(xy.min(axis=0), xy.max(axis=0), scheduler="threads")
    pad = np.maximum((hi - lo) * 0.02, 1e-3)
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def compute_coverage(store: DatasetStore, dataset_id: str, scheduler: Any = "threads") -> Coverage:
    """The coverage of a committed version (data or split), with one Dask task per (parent) shard."""
    t0 = time.perf_counter()
    m = store.manifest(dataset_id)
    spec = m["env_spec"]
    goal_dims = (0, 1)
    if int(spec.get("goal_size", 2)) < 2:
        raise DatasetError(f"{dataset_id}: goals have {spec.get('goal_size')} dimension(s); a map needs 2")
    maze = _maze(spec)
    tasks = None
    if m.get("kind") == "split":
        from crl.datasets.stitch_split import load_segments, load_tasks

        pm = store.manifest(m["parent"]["id"])
        store.open(dataset_id)  # refuses a split whose parent is gone or changed, naming the fix
        start, end = load_segments(store, parse_id(dataset_id), m)
        tasks = load_tasks(store, dataset_id)
        data_m = pm
    else:
        data_m = m
    base = version_rel(parse_id(data_m["id"]))
    rels = [f"{base}/{s['path']}" for s in data_m["shards"]]
    rows = np.concatenate([[0], np.cumsum([s["rows"] for s in data_m["shards"]])])
    per_shard: list[np.ndarray | None] = [None] * len(rels)
    if m.get("kind") == "split":
        shard_of = np.searchsorted(rows, start, side="right") - 1
        per_shard = [np.stack([start[shard_of == s] - rows[s], end[shard_of == s] - rows[s]], axis=1)
                     for s in range(len(rels))]
    if maze is not None:
        rows_n, cols_n = maze.shape
        cs = maze.cell_size
        extent = (-cs / 2, (rows_n - 0.5) * cs, -cs / 2, (cols_n - 0.5) * cs)
    else:
        extent = _extent_from_data(store.loc, rels, goal_dims)
    span0, span1 = extent[1] - extent[0], extent[3] - extent[2]
    bins = (max(8, round(BINS * span0 / max(span0, span1))), max(8, round(BINS * span1 / max(span0, span1))))
    parts = [dask.delayed(_shard_part)(store.loc, rel, per_shard[s], extent, bins, goal_dims, maze)
             for s, rel in enumerate(rels) if per_shard[s] is None or len(per_shard[s])]
    done = dask.compute(*parts, scheduler=scheduler)
    return Coverage(
        dataset=m["id"], kind=m.get("kind", "data"), transitions=int(m["totals"]["transitions"]),
        episodes=int(m["totals"]["episodes"]), extent=extent,
        hist=sum((p["hist"] for p in done), np.zeros(bins, np.int64)),
        episode_lengths=np.concatenate([p["lengths"] for p in done]) if done else np.zeros(0, np.int64),
        starts=_thin(np.concatenate([p["starts"] for p in done])) if done else np.zeros((0, 2)),
        goals=_thin(np.concatenate([p["goals"] for p in done])) if done else np.zeros((0, 2)),
        maze=maze, free_cells=list(maze.free_cells()) if maze is not None else [],
        cell_counts=sum((p["cells"] for p in done), np.zeros(len(maze.free_cells()), np.int64))
        if maze is not None else None,
        tasks=tasks, shards=len(rels), seconds=time.perf_counter() - t0)


def _thin(points: np.ndarray) -> np.ndarray:
    return points[:: max(1, len(points) // MARKERS)]


def check_writable(path: str | os.PathLike[str]) -> Path:
    """The output path of a figure, refused up front (one line) when its folder is missing or not writable."""
    p = Path(path)
    if p.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise CrlError(f"--map {p}: give a .png, .pdf or .svg file name")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise CrlError(f"--map {p}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise CrlError(f"--map {p}: cannot write there (permission denied); choose another path")
    return p


def _short(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e4 else f"{n:.0f}"


def draw_coverage(cov: Coverage, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Write the map: walls, position histogram (log colour), start/goal markers, per-cell counts (or a split's
    tasks), and a panel with the episode length histogram and the summary figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    out = Path(path)
    lo0, hi0, lo1, hi1 = cov.extent
    aspect = (hi0 - lo0) / max(hi1 - lo1, 1e-9)
    fig, (ax, side) = plt.subplots(1, 2, figsize=(11, max(4.0, min(9.0, 6.5 * aspect))),
                                   gridspec_kw={"width_ratios": [2.2, 1]})
    hist = np.ma.masked_equal(cov.hist, 0)
    if hist.count():
        im = ax.imshow(hist, extent=(lo1, hi1, hi0, lo0), origin="upper", cmap="viridis", interpolation="nearest",
                       norm=LogNorm(vmin=1, vmax=max(2, int(cov.hist.max()))), zorder=1)
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="states per bin")
    if cov.maze is not None:
        cs = cov.maze.cell_size
        for r, c in cov.maze.wall_cells():
            ax.add_patch(Rectangle((c * cs - cs / 2, r * cs - cs / 2), cs, cs, color="0.2", lw=0, zorder=2))
        if cov.cell_counts is not None and len(cov.free_cells) <= 400:
            for (r, c), n in zip(cov.free_cells, cov.cell_counts, strict=True):
                ax.text(c * cs, r * cs + 0.32 * cs, _short(n), ha="center", va="center", fontsize=6,
                        color="black" if n else "red", zorder=4,
                        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "alpha": 0.6, "lw": 0})
    ax.set_xlim(lo1, hi1)
    ax.set_ylim(hi0, lo0)
    ax.set_aspect("equal")
    ax.set_xlabel("goal coordinate 1")
    ax.set_ylabel("goal coordinate 0")
    if cov.tasks is not None and cov.maze is not None:  # a split: its evaluation tasks' cells
        cs = cov.maze.cell_size
        test = ~cov.tasks["in_distribution"]
        s, g = cov.tasks["start_cell"][test] * cs, cov.tasks["goal_cell"][test] * cs
        ax.scatter(s[:, 1], s[:, 0], marker="o", s=40, facecolors="none", edgecolors="lime", zorder=5,
                   label=f"test task starts ({int(test.sum())})")
        ax.scatter(g[:, 1], g[:, 0], marker="*", s=70, c="red", zorder=5, label="test task goals")
    else:
        ax.scatter(cov.starts[:, 1], cov.starts[:, 0], marker="o", s=10, facecolors="none", edgecolors="lime",
                   lw=0.8, zorder=5, label="episode starts")
        ax.scatter(cov.goals[:, 1], cov.goals[:, 0], marker="*", s=18, c="red", zorder=5, label="episode goals")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    ax.set_title(title or f"{cov.dataset}: {_short(cov.transitions)} transitions, {cov.episodes} "
                 f"{'segments' if cov.kind == 'split' else 'episodes'}", fontsize=9)
    if cov.episode_lengths.size:
        side.hist(cov.episode_lengths, bins=min(40, max(5, int(np.unique(cov.episode_lengths).size))),
                  color="tab:blue")
    side.set_xlabel("segment length" if cov.kind == "split" else "episode length (transitions)")
    side.set_ylabel("count")
    lines = []
    if cov.fraction_visited is not None:
        lines.append(f"free cells visited {int((cov.cell_counts > 0).sum())}/{len(cov.free_cells)} "
                     f"({cov.fraction_visited:.0%})")
        lines.append(f"cell entropy {cov.entropy:.2f} of uniform" if cov.entropy is not None else "")
    else:
        lines.append("no maze layout: positions only")
    side.set_title("\n".join(x for x in lines if x), fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=110)
    except OSError as e:
        raise CrlError(f"--map {out}: cannot write it ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return out
