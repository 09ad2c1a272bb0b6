"""Figures of the evaluators (PNG, Agg backend): goal cells coloured by success, success vs distance, the critic
heatmap. Mazes are drawn with x (the row axis) running down, as the layout text reads."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def error_bars(est: Any, lo: Any, hi: Any) -> np.ndarray:
    """[2, n] non-negative error-bar lengths of intervals around estimates (matplotlib refuses negative ones: an
    interval bound a rounding error past its estimate must not cost a figure)."""
    est, lo, hi = (np.asarray(v, dtype=float) for v in (est, lo, hi))
    return np.stack([np.clip(est - lo, 0.0, None), np.clip(hi - est, 0.0, None)])


def safe_figure(draw: Callable[..., None], *args: Any) -> bool:
    """Call a figure function; a failure is a warning, never an error (a figure must not cost a result: callers
    write their results before drawing). Returns whether the figure was drawn."""
    try:
        draw(*args)
        return True
    except Exception as e:  # noqa: BLE001 - any plotting failure
        warnings.warn(f"figure not drawn ({type(e).__name__}: {e}); the results are written", stacklevel=2)
        return False


def draw_walls(ax: Any, maze: Any) -> None:
    """Wall cells as dark squares in world coordinates (plot x = column axis y, plot y = row axis x)."""
    from matplotlib.patches import Rectangle

    cs = maze.cell_size
    for r, c in maze.wall_cells():
        ax.add_patch(Rectangle((c * cs - cs / 2, r * cs - cs / 2), cs, cs, color="0.25", lw=0))
    rows, cols = maze.shape
    ax.set_xlim(-cs / 2, (cols - 0.5) * cs)
    ax.set_ylim((rows - 0.5) * cs, -cs / 2)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_goals(maze: Any, result: dict[str, Any], path: Path) -> None:
    """The maze with each goal cell coloured by its success rate and labelled with success / time at goal."""
    plt = _plt()
    from matplotlib.patches import Rectangle

    cs = maze.cell_size
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * maze.shape[1], 1.0 + 0.6 * maze.shape[0]))
    draw_walls(ax, maze)
    cmap = plt.get_cmap("RdYlGn")
    for row in result.get("per_goal_cell", []):
        if "cell" not in row:
            continue
        r, c = row["cell"]
        ax.add_patch(Rectangle((c * cs - cs / 2, r * cs - cs / 2), cs, cs, color=cmap(row["success"]), alpha=0.8))
        ax.text(c * cs, r * cs, f"{row['success']:.2f}\n{row['time_at_goal']:.0f}", ha="center", va="center",
                fontsize=7)
    for r, c in maze.start_cells():
        ax.plot(c * cs, r * cs, "b^", ms=8)
    lo, hi = result["ci95"]["eval/success"]
    ax.set_title(f"success {result['eval/success']:.2f} [{lo:.2f}, {hi:.2f}]\n"
                 f"time at goal {result['eval/time_at_goal']:.0f}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_stitching(result: dict[str, Any], path: Path) -> None:
    """success(d) with 95% intervals against cell distance; the training range (d <= max_cells) shaded, the
    0.5 threshold and the stitching distance marked."""
    plt = _plt()
    rows = result["success_by_distance"]
    d = np.array([r["distance"] for r in rows], float)
    s = np.array([r["success"] for r in rows], float)
    lo = np.array([r["ci95"][0] for r in rows], float)
    hi = np.array([r["ci95"][1] for r in rows], float)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    if result.get("max_cells") is not None:
        ax.axvspan(0.5, result["max_cells"] + 0.5, color="tab:blue", alpha=0.12, label="training range")
    ax.fill_between(d, lo, hi, color="tab:green", alpha=0.25, lw=0)
    ax.plot(d, s, "o-", color="tab:green", label="success")
    ax.axhline(result.get("threshold", 0.5), color="0.5", ls=":", lw=1)
    sd = result["stitching_distance"]
    if sd > 0:
        ax.axvline(sd, color="tab:red", ls="--", lw=1, label=f"stitching distance {sd}")
    ax.set_xlabel("start-goal distance (maze cells, BFS)")
    ax.set_ylabel("success")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xticks(d)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"{result.get('policy', '')} on {result.get('env', '')}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_geodesic(maze: Any, hm: dict[str, np.ndarray], result: dict[str, Any], path: Path) -> None:
    """Left: the critic logit f(s, pi(s, g), g) over the maze for one goal (walls drawn, goal starred; the
    paper's Q-value figure). Right: the geodesicity numbers."""
    plt = _plt()
    fig, (ax, ax_txt) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [1.4, 1]})
    x, y = hm["x"], hm["y"]
    extent = (y[0] - (y[1] - y[0]) / 2, y[-1] + (y[1] - y[0]) / 2, x[-1] + (x[1] - x[0]) / 2, x[0] - (x[1] - x[0]) / 2)
    im = ax.imshow(hm["value"], extent=extent, cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="critic logit f(s, pi(s,g), g)")
    draw_walls(ax, maze)
    g = hm["goal"]
    ax.plot(g[1], g[0], "r*", ms=14, mec="w")
    ax.set_title(f"critic logit, goal cell {tuple(maze.xy_to_cell(g))}", fontsize=9)
    lines = []
    for name, block in (("all pairs", result), ("wall pairs", result.get("wall_pairs", {}))):
        lines.append(f"{name}: {block.get('pairs', 0)}")
        for k in ("rho_geo", "rho_euc", "index"):
            v = block.get(k)
            ci = (block.get("ci95") or {}).get(k)
            txt = "n/a" if v is None else f"{v:+.3f}"
            if ci is not None and v is not None:
                txt += f"  [{ci[0]:+.2f}, {ci[1]:+.2f}]"
            lines.append(f"  {k:8s} {txt}")
        sge = block.get("spearman_geo_euc")
        if sge is not None:
            lines.append(f"  Spearman(geo, euc) {sge:+.2f}")
    for note in result.get("notes", []):
        lines.append("note: " + note[:60] + ("..." if len(note) > 60 else ""))
    ax_txt.axis("off")
    ax_txt.text(0.0, 1.0, "\n".join(lines), va="top", family="monospace", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
