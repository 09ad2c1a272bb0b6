"""Stitching distance: success as a function of the BFS cell distance between start and goal.

Tasks are (start cell, goal cell) pairs: every ordered pair of distinct, connected free cells of the maze (on large
mazes at most `max_pairs_per_distance` pairs per distance, sampled without replacement with `seed`), or a
stitching split's evaluation tasks (`crl.datasets.stitch_split.load_tasks`). Each task runs `episodes_per_pair`
episodes of the env's length from the start cell's centre to the goal cell's centre (both jittered like the env's
own resets) with `crl.goal_rollouts.evaluate_pairs`.

success(d) = mean success over the episodes of the tasks at distance d (95% Wilson interval over episodes; the
episodes of one task are not independent, so the interval is optimistic when episodes_per_pair > 1).
Stitching distance = the largest d such that success(d') >= 0.5 for every evaluated d' <= d (0 when even the
shortest distance fails). The paper's protocol (Wang et al. 2025, section 5.3): train on pairs at most 3 cells
apart, test on pairs 4-6 cells apart; a split records its training range as `max_cells`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from crl.errors import ConfigError
from crl.eval.policies import Policy, resolve_policy
from crl.eval.registry import Evaluator, needs_crl_maze, register
from crl.eval.results import default_out, header, write_json
from crl.goal_rollouts import evaluate_pairs, wilson_ci

THRESHOLD = 0.5
"""success(d) needed at every distance up to the stitching distance."""


def all_pairs(maze: Any, max_pairs_per_distance: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Ordered pairs of distinct connected free cells: start_cell [T, 2], goal_cell [T, 2], distance [T] (BFS
    steps), sorted by distance; at most `max_pairs_per_distance` per distance (uniform, without replacement)."""
    cells = np.asarray(maze.free_cells(), dtype=np.int64)
    dist = maze.cell_distance_matrix
    i, j = np.nonzero(np.isfinite(dist) & (dist > 0))
    order = np.argsort(dist[i, j], kind="stable")
    i, j = i[order], j[order]
    tasks = {"start_cell": cells[i], "goal_cell": cells[j], "distance": dist[i, j].astype(np.int64)}
    return tasks if max_pairs_per_distance is None else _subsample(tasks, max_pairs_per_distance, seed)


def stitching_distance(distances: list[int], success: list[float], threshold: float = THRESHOLD) -> int:
    """Largest d with success(d') >= threshold for every evaluated d' <= d (0 if the smallest fails)."""
    best = 0
    for d, s in sorted(zip(distances, success, strict=True)):
        if s < threshold:
            break
        best = d
    return int(best)


def evaluate_tasks(policy: Policy, tasks: dict[str, np.ndarray], episodes_per_pair: int, seed: int,
                   max_envs: int = 512) -> dict[str, np.ndarray]:
    """Run `evaluate_pairs` over the tasks in fixed-size chunks (one compile); per-task success rate,
    mean time at goal and final distance, each [T]."""
    env = policy.env
    maze = env.maze
    start = np.asarray([maze.cell_to_xy(c) for c in tasks["start_cell"]], np.float32).reshape(-1, 2)
    goal = np.asarray([maze.cell_to_xy(c) for c in tasks["goal_cell"]], np.float32).reshape(-1, 2)
    t = len(start)
    chunk = max(1, min(t, max_envs // episodes_per_pair))
    fn = jax.jit(lambda k, s, g: evaluate_pairs(env, policy.act, k, s, g, episodes_per_pair, keyed=policy.keyed))
    key = jax.random.PRNGKey(seed)
    outs: dict[str, list[np.ndarray]] = {"success": [], "time_at_goal": [], "final_dist": []}
    for n, lo in enumerate(range(0, t, chunk)):
        s, g = start[lo:lo + chunk], goal[lo:lo + chunk]
        pad = chunk - len(s)
        if pad:  # same shapes every call: repeat the first task, drop the padding after
            s = np.concatenate([s, np.repeat(s[:1], pad, 0)])
            g = np.concatenate([g, np.repeat(g[:1], pad, 0)])
        res = jax.device_get(fn(jax.random.fold_in(key, n), jnp.asarray(s), jnp.asarray(g)))
        for k in outs:
            outs[k].append(np.asarray(res[k])[: chunk - pad])
    return {k: np.concatenate(v, 0) if v else np.zeros((0, episodes_per_pair)) for k, v in outs.items()}


def summarize(tasks: dict[str, np.ndarray], per_task: dict[str, np.ndarray], max_cells: int | None = None,
              ) -> dict[str, Any]:
    """success(d) with Wilson CIs, the stitching distance, and in/out-of-distribution means when a training
    range (`max_cells`, or the tasks' `in_distribution` flags) is known."""
    dist = np.asarray(tasks["distance"]).astype(int)
    succ = np.asarray(per_task["success"], np.float64)
    tag = np.asarray(per_task["time_at_goal"], np.float64)
    rows = []
    for d in np.unique(dist):
        m = dist == d
        s = succ[m].ravel()
        rows.append({"distance": int(d), "pairs": int(m.sum()), "episodes": int(s.size), "success": float(s.mean()),
                     "ci95": list(wilson_ci(float(s.sum()), int(s.size))),
                     "time_at_goal": float(tag[m].mean())})
    result: dict[str, Any] = {
        "success_by_distance": rows,
        "stitching_distance": stitching_distance([r["distance"] for r in rows], [r["success"] for r in rows]),
        "threshold": THRESHOLD,
        "max_distance": int(dist.max()) if dist.size else 0,
        "pairs": int(dist.size),
        "success": float(succ.mean()) if succ.size else float("nan"),
    }
    if "in_distribution" in tasks:
        inside = np.asarray(tasks["in_distribution"]).astype(bool)
    elif max_cells is not None:
        inside = dist <= max_cells
    else:
        inside = None
    result["max_cells"] = max_cells
    if inside is not None:
        for name, m in (("in_distribution", inside), ("out_of_distribution", ~inside)):
            s = succ[m].ravel()
            result[name] = {"pairs": int(m.sum()), "episodes": int(s.size),
                            "success": float(s.mean()) if s.size else float("nan"),
                            "ci95": list(wilson_ci(float(s.sum()), int(s.size)))}
    result["per_pair"] = [
        {"start": [int(v) for v in a], "goal": [int(v) for v in b], "distance": int(d), "success": float(s)}
        for a, b, d, s in zip(tasks["start_cell"], tasks["goal_cell"], dist, succ.mean(axis=-1), strict=True)
    ]
    return result


def split_tasks(split: str, store: Any | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tasks, env spec) of a stitching split `namespace/name-vN`: `crl.datasets.stitch_split.load_tasks` (start_cell,
    goal_cell, distance, in_distribution, max_cells) and the env spec its manifest records."""
    from crl.datasets.stitch_split import load_tasks
    from crl.datasets.store import DatasetStore

    store = store if store is not None else DatasetStore()
    tasks = load_tasks(store, split)
    return tasks, dict(store.manifest(split).get("env_spec") or {})


def run_stitching(
    policy: str,
    env: str | None = None,
    split: str | None = None,
    episodes_per_pair: int = 1,
    max_pairs_per_distance: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    episode_length: int | None = None,
    max_cells: int | None = None,
    step: int | None = None,
    store: Any | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """`crl-eval stitching`: success vs start-goal cell distance for `policy` (`checkpoint:RUN_DIR`, `oracle`,
    `random`) over every free-cell pair of `env`'s maze (default: the run's env), or over split `split`'s tasks.
    `max_cells`: the training range to shade and to split in/out-of-distribution means (a split brings its own).
    Writes `stitching.json` + `stitching.png` into `out` and returns the result: `success_by_distance` (distance,
    pairs, episodes, success, ci95, time_at_goal), `stitching_distance`, `in_distribution` /
    `out_of_distribution` when a training range is known, `per_pair`, and the header fields."""
    if episodes_per_pair < 1:
        raise ConfigError(f"--episodes-per-pair must be >= 1, got {episodes_per_pair}")
    if max_pairs_per_distance is not None and max_pairs_per_distance < 1:
        raise ConfigError(f"--max-pairs-per-distance must be >= 1, got {max_pairs_per_distance}")
    overrides = {} if episode_length is None else {"episode_length": int(episode_length)}
    dataset = None
    if split is not None:
        if env is not None:
            raise ConfigError("pass --split or --env, not both (a split brings its env)")
        from crl.envs import task_env_from_spec

        tasks, env_spec = split_tasks(split, store)
        dataset = split
        max_cells = int(tasks.pop("max_cells"))
        tasks = {k: np.asarray(v) for k, v in tasks.items()}
        pol = resolve_policy(policy, task_env_from_spec(env_spec, **overrides), step=step, env_overrides=overrides)
        if max_pairs_per_distance is not None:
            tasks = _subsample(tasks, max_pairs_per_distance, seed)
    else:
        pol = resolve_policy(policy, env, step=step, env_overrides=overrides)
        if not hasattr(pol.env, "maze"):
            raise ConfigError(f"{pol.env.spec.name} has no maze: stitching needs a maze env")
        tasks = all_pairs(pol.env.maze, max_pairs_per_distance, seed)
    if len(tasks["distance"]) == 0:
        raise ConfigError("no (start, goal) pairs to evaluate: the maze has a single free cell or the split no tasks")
    per_task = evaluate_tasks(pol, tasks, episodes_per_pair, seed)
    result = {
        **header("stitching", pol, seed, int(len(tasks["distance"]) * episodes_per_pair), dataset,
                 episodes_per_pair=episodes_per_pair, max_pairs_per_distance=max_pairs_per_distance),
        **summarize(tasks, per_task, max_cells),
    }
    out_dir = Path(out) if out is not None else default_out(pol, pol.env.spec.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    if plot:
        from crl.eval.plots import plot_stitching

        png = out_dir / "stitching.png"
        plot_stitching(result, png)
        result["png"] = str(png)
    result["json"] = str(out_dir / "stitching.json")
    write_json(out_dir, "stitching", result)
    return result


def _subsample(tasks: dict[str, np.ndarray], per_distance: int, seed: int) -> dict[str, np.ndarray]:
    """At most `per_distance` tasks per distance (uniform, without replacement)."""
    dist = np.asarray(tasks["distance"]).astype(int)
    rng = np.random.default_rng(seed)
    keep = []
    for d in np.unique(dist):
        idx = np.nonzero(dist == d)[0]
        if len(idx) > per_distance:
            idx = np.sort(rng.choice(idx, per_distance, replace=False))
        keep.append(idx)
    sel = np.concatenate(keep)
    return {k: (np.asarray(v)[sel] if np.ndim(v) and len(v) == len(dist) else v) for k, v in tasks.items()}


# ---- in `crl-eval report` ----------------------------------------------------------------------------------------
def _settings(s: Any, info: Any) -> dict[str, Any]:
    return {"episodes_per_pair": s.stitching_episodes_per_pair,
            "max_pairs_per_distance": s.stitching_max_pairs_per_distance, "seed": s.seed or 0}


def _run(policy: str, step: int, s: dict[str, Any], out: Path) -> dict[str, Any]:
    return run_stitching(policy, None, None, s["episodes_per_pair"], s["max_pairs_per_distance"], s["seed"], out,
                         step=step)


def _blocks(r: dict[str, Any]) -> list[Any]:
    from crl.eval.report_render import ci_text, fmt

    out: list[Any] = [
        ("p", f"{r.get('pairs')} (start, goal) pairs x {r.get('episodes_per_pair')} episodes: stitching distance "
              f"**{r['stitching_distance']}** (success >= {r.get('threshold')} at every distance up to it; largest "
              f"distance {r.get('max_distance')})."),
        ("table", ["distance", "pairs", "success", "95% CI"],
         [[fmt(d["distance"]), fmt(d["pairs"]), fmt(d["success"]), ci_text(d.get("ci95")).strip()]
          for d in r.get("success_by_distance", [])])]
    for part in ("in_distribution", "out_of_distribution"):
        if part in r:
            b = r[part]
            out.append(("p", f"{part.replace('_', ' ')}: success {fmt(b['success'])}{ci_text(b.get('ci95'))} "
                             f"over {b['pairs']} pairs."))
    return out


register(Evaluator("stitching", needs_crl_maze("stitching"), _settings, _run, _blocks, "stitching distance",
                   lambda r: str(r["stitching_distance"])))
