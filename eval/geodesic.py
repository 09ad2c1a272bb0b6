"""Geodesicity of a learned critic: does f(s, pi(s, g), g) follow the maze's corridors or the straight line?

`geodesicity(maze, energy)` samples position pairs uniformly over the free space, scores them with `energy(xy_a,
xy_b)` (higher = closer) and reports Spearman correlations of minus the energy with the geodesic distance
(`rho_geo`) and with the Euclidean distance (`rho_euc`), and the geodesicity index `rho_geo - rho_euc`, on all
pairs and on the wall pairs (geodesic longer than Euclidean by more than one cell, where the two disagree), with
bootstrap 95% intervals. This is the paper's figure 7 analysis (Wang et al. 2025, "deep networks learn geodesic
representations") made a number: a shallow critic's values track Euclidean distance through walls, a deep one's
track the corridors.

On open mazes geodesic and Euclidean distance nearly agree over uniform pairs (measured at cell size 4 with 2,000
pairs: Spearman 0.98 on `big`, 0.80 on `u5`, -0.45 on u5's wall pairs), so the all-pairs index is then small for
any critic; the result carries a note and the wall-pair numbers are the ones to read.

`run_geodesic` probes a checkpoint's critic: the state part of the observation at xy_a (point mass: that position at
zero velocity; ant/humanoid: the env's initial posture without reset noise, placed at xy_a), the deterministic
actor's action there towards goal xy_b, and the logit `paired_logits(params, state, action, goal(xy_b))`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from crl.errors import ConfigError
from crl.eval.policies import resolve_policy
from crl.eval.registry import Evaluator, needs_crl_maze, register
from crl.eval.results import default_out, header, write_json
from crl.goal_rollouts import goal_vector

Energy = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""energy(xy_a [N, 2], xy_b [N, 2]) -> [N] scores, higher = closer."""

AGREE = 0.95
"""Spearman(geodesic, Euclidean) above which a pair set cannot tell the two apart (a note is added)."""
MIN_WALL_PAIRS = 30


def sample_free_positions(maze: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, 2] world positions uniform over the free space (a free cell uniformly, then uniform inside it)."""
    cells = np.asarray(maze.free_cells(), dtype=np.float64)
    pick = cells[rng.integers(0, len(cells), n)]
    return (pick + rng.uniform(-0.5, 0.5, (n, 2))) * maze.cell_size


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rank correlation along the last axis (average ranks for ties); NaN for constant input."""
    rx, ry = _ranks(np.asarray(x, np.float64)), _ranks(np.asarray(y, np.float64))
    rx = rx - rx.mean(-1, keepdims=True)
    ry = ry - ry.mean(-1, keepdims=True)
    denom = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(-1) / denom


def _stats(neg: np.ndarray, geo: np.ndarray, euc: np.ndarray, rng: np.random.Generator, bootstrap: int
           ) -> dict[str, Any]:
    """rho_geo, rho_euc, index and Spearman(geo, euc) with percentile-bootstrap 95% intervals."""
    n = len(neg)
    if n < 3:
        return {"pairs": int(n), "rho_geo": None, "rho_euc": None, "index": None, "spearman_geo_euc": None}
    rho_geo, rho_euc = float(spearman(neg, geo)), float(spearman(neg, euc))
    out: dict[str, Any] = {"pairs": int(n), "rho_geo": rho_geo, "rho_euc": rho_euc, "index": rho_geo - rho_euc,
                           "spearman_geo_euc": float(spearman(geo, euc))}
    if bootstrap > 0:
        idx = rng.integers(0, n, (bootstrap, n))
        bg, be = spearman(neg[idx], geo[idx]), spearman(neg[idx], euc[idx])
        ci = lambda v: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))]  # noqa: E731
        out["ci95"] = {"rho_geo": ci(bg), "rho_euc": ci(be), "index": ci(bg - be)}
    return out


def geodesicity(
    maze: Any,
    energy: Energy,
    num_pairs: int = 2000,
    seed: int = 0,
    bootstrap: int = 1000,
    xy_a: np.ndarray | None = None,
    xy_b: np.ndarray | None = None,
) -> dict[str, Any]:
    """Geodesicity of `energy` on `maze` over `num_pairs` uniform position pairs (or the given `xy_a`, `xy_b`).

    Returns {pairs, rho_geo, rho_euc, index, spearman_geo_euc, ci95, wall_pairs: {same}, notes: [...]}:
    rho_* = Spearman(-energy, distance); index = rho_geo - rho_euc (> 0: the energy follows the corridors);
    wall pairs = geodesic > Euclidean + one cell. `notes` says when geodesic and Euclidean distances barely
    disagree on these pairs (Spearman > 0.95) or there are too few wall pairs, i.e. when the index cannot tell."""
    rng = np.random.default_rng(seed)
    if xy_a is None or xy_b is None:
        xy_a = sample_free_positions(maze, num_pairs, rng)
        xy_b = sample_free_positions(maze, num_pairs, rng)
    xy_a, xy_b = np.asarray(xy_a, np.float64), np.asarray(xy_b, np.float64)
    geo = np.asarray(maze.geodesic_distance(xy_a, xy_b), np.float64).reshape(-1)
    euc = np.linalg.norm(xy_a - xy_b, axis=-1)
    neg = -np.asarray(energy(xy_a, xy_b), np.float64).reshape(-1)
    if neg.shape != geo.shape:
        raise ConfigError(f"energy returned {neg.size} scores for {geo.size} pairs; it must map [N, 2], [N, 2] -> [N]")
    ok = np.isfinite(geo) & np.isfinite(neg)
    neg, geo, euc = neg[ok], geo[ok], euc[ok]
    wall = geo > euc + maze.cell_size
    result = {**_stats(neg, geo, euc, rng, bootstrap), "wall_pairs": _stats(neg[wall], geo[wall], euc[wall], rng,
                                                                             bootstrap)}
    notes = []
    sge = result.get("spearman_geo_euc")
    if sge is not None and sge > AGREE:
        notes.append(f"geodesic and Euclidean distances barely disagree on these pairs (Spearman {sge:.2f} > "
                     f"{AGREE}): the all-pairs index cannot tell a geodesic critic from a Euclidean one; read the "
                     f"wall pairs")
    n_wall = int(wall.sum())
    if n_wall < MIN_WALL_PAIRS:
        notes.append(f"only {n_wall} wall pairs (geodesic > Euclidean + one cell): the maze is too open to test "
                     f"geodesicity; use more --pairs or a maze with walls between its corridors")
    result["notes"] = notes
    result["cell_size"] = float(maze.cell_size)
    return result


# ---- a checkpoint's critic as an energy ----------------------------------------------------------------------------
def probe_env(env: Any) -> Any:
    """The env whose `reset_to` gives the nominal posture (no reset noise, zero velocity) at a position."""
    if hasattr(env, "with_config") and getattr(env.config, "reset_noise_scale", 0.0) != 0.0:
        return env.with_config(reset_noise_scale=0.0)
    return env


def critic_energy(loaded: Any, env: Any, batch: int = 1024) -> Energy:
    """energy(xy_a, xy_b) = f(s(xy_a), pi(s(xy_a), g(xy_b)), g(xy_b)) of a `LoadedAgent`, in fixed-size batches."""
    env = probe_env(env)
    agent, params, state_size = loaded.agent, loaded.params, env.state_size

    @jax.jit
    def score(a: jax.Array, b: jax.Array) -> jax.Array:
        goal = goal_vector(env, b)
        keys = jax.random.split(jax.random.PRNGKey(0), a.shape[0])
        obs = jax.vmap(env.reset_to)(keys, a, goal).obs
        action = agent.policy(params, obs, jax.random.PRNGKey(0), deterministic=True)
        return agent.paired_logits(params, obs[:, :state_size], action, goal)

    def energy(xy_a: np.ndarray, xy_b: np.ndarray) -> np.ndarray:
        xy_a = np.asarray(xy_a, np.float32).reshape(-1, 2)
        xy_b = np.asarray(xy_b, np.float32).reshape(-1, 2)
        n = len(xy_a)
        size = min(batch, n)
        out = []
        for lo in range(0, n, size):
            a, b = xy_a[lo:lo + size], xy_b[lo:lo + size]
            pad = size - len(a)
            if pad:
                a = np.concatenate([a, np.repeat(a[:1], pad, 0)])
                b = np.concatenate([b, np.repeat(b[:1], pad, 0)])
            out.append(np.asarray(score(jnp.asarray(a), jnp.asarray(b)))[: size - pad])
        return np.concatenate(out) if out else np.zeros(0)

    return energy


def heatmap(maze: Any, energy: Energy, goal_xy: np.ndarray, per_cell: int = 8) -> dict[str, np.ndarray]:
    """energy(s, goal) on a grid of `per_cell` x `per_cell` points per free cell: {x, y, value [H, W] (NaN in
    walls), goal}; x runs along the rows as in the maze convention."""
    rows, cols = maze.shape
    cs = maze.cell_size
    step = cs / per_cell
    xs = (np.arange(rows * per_cell) + 0.5) * step - cs / 2
    ys = (np.arange(cols * per_cell) + 0.5) * step - cs / 2
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    pts = np.stack([gx.ravel(), gy.ravel()], -1)
    free = np.array([maze.is_free(maze.xy_to_cell(p)) for p in pts])
    value = np.full(len(pts), np.nan)
    if free.any():
        goal = np.broadcast_to(np.asarray(goal_xy, np.float64), (int(free.sum()), 2))
        value[free] = energy(pts[free], goal)
    return {"x": xs, "y": ys, "value": value.reshape(gx.shape), "goal": np.asarray(goal_xy, np.float64)}


def parse_cell(text: str | None, maze: Any) -> tuple[int, int]:
    """`R,C` -> a free cell; None -> the goal cell farthest (BFS) from the first start cell."""
    if text is None:
        start = maze.start_cells()[0]
        return max(maze.goal_cells(), key=lambda g: maze.cell_distance(start, g))
    try:
        r, c = (int(v) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        raise ConfigError(f"--goal {text!r}: expected ROW,COL of a free cell, e.g. 1,3") from None
    if not maze.is_free((r, c)):
        raise ConfigError(f"--goal {r},{c} is a wall or outside the {maze.shape[0]}x{maze.shape[1]} maze "
                          f"{maze.name}; pick a free cell")
    return r, c


def run_geodesic(
    policy: str,
    env: str | None = None,
    pairs: int = 2000,
    goal: str | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    step: int | None = None,
    bootstrap: int = 1000,
    plot: bool = True,
) -> dict[str, Any]:
    """`crl-eval geodesic`: geodesicity of a checkpoint's critic (`policy` = `checkpoint:RUN_DIR`) over `pairs`
    uniform position pairs of `env`'s maze (default: the run's env), plus the logit heatmap for goal cell `goal`
    (`R,C`; default the goal cell farthest from the start). Writes `geodesic.json` + `geodesic.png`; returns
    `geodesicity`'s dict with the header fields and the heatmap goal."""
    if not policy.startswith("checkpoint:"):
        raise ConfigError(f"geodesic probes a critic: --policy must be checkpoint:RUN_DIR, not {policy!r}")
    if pairs < 10:
        raise ConfigError(f"--pairs must be >= 10, got {pairs}")
    pol = resolve_policy(policy, env, step=step)
    maze = pol.env.maze
    goal_cell = parse_cell(goal, maze)
    energy = critic_energy(pol.loaded, pol.env)
    result = {**header("geodesic", pol, seed, pairs), **geodesicity(maze, energy, pairs, seed, bootstrap)}
    result["heatmap_goal_cell"] = list(goal_cell)
    out_dir = Path(out) if out is not None else default_out(pol, pol.env.spec.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    if plot:
        from crl.eval.plots import plot_geodesic

        hm = heatmap(maze, energy, maze.cell_to_xy(goal_cell), per_cell=max(2, min(8, 48 // max(maze.shape))))
        png = out_dir / "geodesic.png"
        plot_geodesic(maze, hm, result, png)
        result["png"] = str(png)
    result["json"] = str(out_dir / "geodesic.json")
    write_json(out_dir, "geodesic", result)
    return result


# ---- in `crl-eval report` ----------------------------------------------------------------------------------------
def _settings(s: Any, info: Any) -> dict[str, Any]:
    return {"pairs": s.geodesic_pairs, "bootstrap": s.geodesic_bootstrap, "seed": s.seed or 0}


def _run(policy: str, step: int, s: dict[str, Any], out: Path) -> dict[str, Any]:
    return run_geodesic(policy, None, s["pairs"], None, s["seed"], out, step, s["bootstrap"])


def _blocks(r: dict[str, Any]) -> list[Any]:
    from crl.eval.report_render import ci_text, fmt

    rows = []
    for label, b in (("all pairs", r), ("wall pairs", r.get("wall_pairs") or {})):
        ci = b.get("ci95") or {}
        rows.append([label, fmt(b.get("pairs"))] + [fmt(b.get(k)) + ci_text(ci.get(k))
                                                     for k in ("rho_geo", "rho_euc", "index")])
    return [("p", "Spearman correlation of the critic's -logit with geodesic (rho_geo) and Euclidean (rho_euc) "
                  "distance; index = rho_geo - rho_euc."),
            ("table", ["pairs", "n", "rho_geo", "rho_euc", "index"], rows)]


def _index(r: dict[str, Any]) -> str:
    from crl.eval.report_render import fmt

    return fmt(r.get("index"))


register(Evaluator("geodesic", needs_crl_maze("geodesic"), _settings, _run, _blocks, "geodesic index", _index))
