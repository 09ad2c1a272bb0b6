"""Goal-reaching rollouts for evaluation, shared by the trainers and the evaluators (`crl.eval`): a fixed policy on
the env's own goals or on given start/goal pairs, and the statistics of their successes (Wilson and mean intervals).

Both roll a fixed policy out for one episode per env, all envs in parallel, inside one `lax.scan` (pure and
jittable: close over `env` and `act`, pass arrays). A policy is `act(obs [N, obs_size]) -> actions [N, action_size]`,
deterministic; one that needs randomness (the uniform random policy) is passed with `keyed=True` and called as
`act(obs, key)` with the per-step key. Per-episode outputs stay on the device; `summarize_goals` turns them into
means with 95% confidence intervals on the host.

Protocol (scaling-crl `evaluator.py` / JaxGCRL `CrlEvaluator`): deterministic actor, one episode of the env's full
length per eval env; success = the goal was reached (within `success_threshold`) at ANY step before the episode
ended, time at goal = steps within the threshold, final distance = distance at the last step of the episode.
Goals cycle through the layout's goal cells (episode i gets goal cell i mod their number) so each goal cell is
weighted equally.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

ActFn = Callable[..., jax.Array]
"""`act(obs) -> actions` (deterministic), or `act(obs, key) -> actions` when passed with `keyed=True`."""

GOAL_METRICS = ("eval/success", "eval/time_at_goal", "eval/final_dist")
"""The trainer's evaluation metric names (means over episodes)."""


def _rollout(env: Any, act: ActFn, state: Any, key: jax.Array, keyed: bool) -> dict[str, jax.Array]:
    """One episode of `env.episode_length` steps from batched `state`; per-episode success/time/final distance.

    Steps after an episode's `done` still run (the scan has a fixed length) but no longer count."""
    n = state.obs.shape[0]

    def step(carry, k):
        s, alive, last_dist = carry
        a = act(s.obs, k) if keyed else act(s.obs)
        s2 = jax.vmap(env.step)(s, a)
        at_goal = s2.metrics["success"] * alive
        last_dist = jnp.where(alive > 0, s2.metrics["dist"], last_dist)
        return (s2, alive * (1.0 - s2.done), last_dist), at_goal

    init = (state, jnp.ones((n,), jnp.float32), state.metrics["dist"])
    (_, _, final_dist), at_goal = jax.lax.scan(step, init, jax.random.split(key, env.episode_length))
    return {
        "success": jnp.max(at_goal, axis=0),
        "time_at_goal": jnp.sum(at_goal, axis=0),
        "final_dist": final_dist,
    }


def evaluate_goals(env: Any, act: ActFn, key: jax.Array, num_episodes: int, keyed: bool = False) -> dict[str, Any]:
    """Per-episode results [num_episodes] of the env's own task, goals cycling through the goal cells.

    Exactly `Trainer._evaluate`'s semantics and key use: `k_reset, k_run = split(key)`, episode i resets with
    `split(k_reset, n)[i]` to goal cell `i mod num_goal_cells` (`env.reset_to_goal_cell`; an env without goal
    cells uses `env.reset` and reports goal_cell -1), per-step keys `split(k_run, episode_length)`.
    Returns {success (0/1), time_at_goal (steps), final_dist, goal_cell (int index into `maze.goal_cells()`)}.
    Jittable with `env`, `act`, `num_episodes`, `keyed` static.
    """
    k_reset, k_run = jax.random.split(key)
    keys = jax.random.split(k_reset, num_episodes)
    index = jnp.arange(num_episodes)
    if hasattr(env, "reset_to_goal_cell"):
        state = jax.vmap(env.reset_to_goal_cell)(keys, index)
        goal_cell = jnp.mod(index, env.num_goal_cells)
    else:  # an env without goal cells: its own goal distribution
        state = jax.vmap(env.reset)(keys)
        goal_cell = jnp.full((num_episodes,), -1)
    return {**_rollout(env, act, state, k_run, keyed), "goal_cell": goal_cell}


def goal_means(per_episode: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """The trainer's metrics from `evaluate_goals`' output: device means under `GOAL_METRICS` (jittable)."""
    return {
        "eval/success": jnp.mean(per_episode["success"]),
        "eval/time_at_goal": jnp.mean(per_episode["time_at_goal"]),
        "eval/final_dist": jnp.mean(per_episode["final_dist"]),
    }


def goal_vector(env: Any, xy: jax.Array) -> jax.Array:
    """The env's goal vector for goal positions `xy` [..., 2] (humanoid appends its target height)."""
    fn = getattr(env, "goal_from_xy", None)  # MazeEnv's family hook (humanoid appends a height)
    xy = jnp.asarray(xy, jnp.float32)
    if fn is None:
        return xy
    return jnp.vectorize(fn, signature="(2)->(g)")(xy)


def evaluate_pairs(
    env: Any,
    act: ActFn,
    key: jax.Array,
    start_xy: jax.Array,
    goal_xy: jax.Array,
    episodes_per_pair: int = 1,
    keyed: bool = False,
) -> dict[str, jax.Array]:
    """Per-episode results [T, episodes_per_pair] for explicit start/goal positions (stitching tasks).

    Task t starts at `start_xy[t]` and commands `goal_xy[t]`, each jittered uniformly by the env's
    `start_jitter` / `goal_jitter` (as `env.reset` jitters cell centres), through `env.reset_to`.
    Keys: `k_jit, k_reset, k_run = split(key, 3)`; one `lax.scan` over `episode_length` steps for all
    T * episodes_per_pair episodes at once (chunk T on the host for large sets). Jittable.
    Returns {success, time_at_goal, final_dist}, each [T, episodes_per_pair].
    """
    start_xy = jnp.asarray(start_xy, jnp.float32)
    goal_xy = jnp.asarray(goal_xy, jnp.float32)
    t = start_xy.shape[0]
    n = t * episodes_per_pair
    k_jit, k_reset, k_run = jax.random.split(key, 3)
    cfg = getattr(env, "config", None)
    sj = float(getattr(cfg, "start_jitter", 0.0))
    gj = float(getattr(cfg, "goal_jitter", 0.0))
    ks, kg = jax.random.split(k_jit)
    starts = jnp.repeat(start_xy, episodes_per_pair, axis=0)
    goals = jnp.repeat(goal_xy, episodes_per_pair, axis=0)
    if sj > 0:
        starts = starts + jax.random.uniform(ks, starts.shape, minval=-sj, maxval=sj)
    if gj > 0:
        goals = goals + jax.random.uniform(kg, goals.shape, minval=-gj, maxval=gj)
    state = jax.vmap(env.reset_to)(jax.random.split(k_reset, n), starts, goal_vector(env, goals))
    out = _rollout(env, act, state, k_run, keyed)
    return {k: v.reshape(t, episodes_per_pair) for k, v in out.items()}


# ---- host-side statistics ------------------------------------------------------------------------------------------
Z95 = 1.959963984540054


def wilson_ci(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (good at 0 and 1, unlike the normal interval)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_ci(x: np.ndarray, confidence: float = 0.95, lower: float = -math.inf) -> tuple[float, float]:
    """Student-t interval of a mean ([m, m] for constant data, NaN for fewer than 2 values), clipped below at
    `lower` (time at goal and distances are never negative)."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return (math.nan, math.nan)
    m, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))
    if se == 0:
        return (m, m)
    h = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * se
    return (max(lower, m - h), m + h)


def summarize_goals(per_episode: dict[str, Any], goal_cells: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """Host summary of `evaluate_goals`: means under `GOAL_METRICS`, 95% CIs (`ci95`: Wilson for success,
    Student t for time at goal and final distance), the episode count and a per-goal-cell table (one row per goal
    cell index: cell (row, col) when `goal_cells` is given, episodes, success, time_at_goal, final_dist)."""
    d = {k: np.asarray(v) for k, v in per_episode.items()}
    succ, tag, fd = (d[k].astype(np.float64).ravel() for k in ("success", "time_at_goal", "final_dist"))
    n = int(succ.size)
    out: dict[str, Any] = {
        "eval/success": float(succ.mean()),
        "eval/time_at_goal": float(tag.mean()),
        "eval/final_dist": float(fd.mean()),
        "ci95": {
            "eval/success": list(wilson_ci(float(succ.sum()), n)),
            "eval/time_at_goal": list(mean_ci(tag, lower=0.0)),
            "eval/final_dist": list(mean_ci(fd, lower=0.0)),
        },
        "episodes": n,
    }
    cells = np.asarray(d.get("goal_cell", np.full(n, -1))).ravel()
    rows = []
    for g in sorted(set(cells.tolist())):
        m = cells == g
        row: dict[str, Any] = {"goal_cell": int(g)}
        if goal_cells is not None and 0 <= g < len(goal_cells):
            row["cell"] = [int(v) for v in goal_cells[g]]
        row.update(episodes=int(m.sum()), success=float(succ[m].mean()), time_at_goal=float(tag[m].mean()),
                   final_dist=float(fd[m].mean()))
        rows.append(row)
    out["per_goal_cell"] = rows
    return out
