"""OGBench's own evaluation protocol for crl policies: its Gymnasium locomaze env, its 5 fixed tasks, its success.

Protocol (OGBench `impls/main.py` + `impls/utils/evaluation.py`, v1.x): for task_id = 1..5 run N episodes of
`env.reset(options=dict(task_id=task_id, render_goal=False))`, acting until `terminated or truncated` (the env
terminates when the agent is within the goal tolerance, 1.0 for point and 0.5 for ant/humanoid, and truncates at
1000 steps); an episode's success is the final step's `info['success']`; a task's success is the mean over its
episodes; the overall success is the mean over the 5 tasks (OGBench's `evaluation/overall_success`). Actions are
clipped to [-1, 1] as OGBench does. OGBench's default is 20 episodes per task (`--eval_episodes`).

Observation layout (what a crl policy sees): crl actors act on `concat(state, goal)`. A learner trained on an
OGBench dataset imported with `crl-data import ogbench` (crl.datasets.ogbench_io) has state = the full env
observation (`state_size` = the observation dimension) and goal = the goal observation's `goal_indices` (default
(0, 1), the x-y position), because the import sets `achieved_goal = observation[:, goal_indices]`. So here
`policy_input = concat(ob, info['goal'][goal_indices])` with `goal_indices` read from the run's env spec, and the
sizes are checked against the env (a mismatch is a one-line CrlError naming both).

Randomness: OGBench draws start/goal noise (and teleports) from NumPy's global generator; this module seeds it
(and each env's `reset(seed=...)`) from `seed` and restores the global state afterwards. Episodes run in lockstep
over `num_envs` env copies with one batched policy call per step (same episodes, same semantics as OGBench's
one-at-a-time loop; numbers depend on the seed and on `num_envs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crl.ogbench_tasks import (  # noqa: F401  (re-exported: the protocol's names live in the core)
    DEFAULT_EPISODES,
    ENV_NAMES,
    INSTALL_HINT,
    ORACLE_NOISE,
    PREFIX,
    BatchAct,
    GlobalNumpySeed,
    OgbenchEnvError,
    OgbenchMissingError,
    env_id,
    is_ogbench,
    make_env,
    maze_geometry,
    ogbench_version,
    require_ogbench,
    rollout_tasks,
    wilson,
)

# ---- policies -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OgbPolicy:
    """A policy that acts in OGBench envs, with what identifies it in results."""

    name: str
    act: BatchAct
    info: dict[str, Any]


def checkpoint_policy(run_dir: str | Path, env: Any, step: int | None = None, loaded: Any = None) -> OgbPolicy:
    """A crl run's deterministic actor on `concat(ob, goal_ob[goal_indices])` (see the module docstring); `loaded`
    is the run already loaded (crl.checkpoint.LoadedAgent or LoadedPolicy), else it is loaded here."""
    import jax
    import jax.numpy as jnp

    from crl.checkpoint import load_policy

    lp = loaded if loaded is not None else load_policy(run_dir, step)
    spec = lp.env_spec
    ob_dim = int(np.prod(env.observation_space.shape))
    act_dim = int(np.prod(env.action_space.shape))
    gi = np.asarray(spec.get("goal_indices") or [], dtype=np.int64)
    problems = []
    if int(spec["state_size"]) != ob_dim:
        problems.append(f"state size {spec['state_size']} (env observation: {ob_dim})")
    if int(spec["action_size"]) != act_dim:
        problems.append(f"action size {spec['action_size']} (env: {act_dim})")
    if len(gi) != int(spec["goal_size"]) or (len(gi) and gi.max() >= ob_dim):
        problems.append(f"goal indices {gi.tolist()} for goal size {spec['goal_size']}")
    if problems:
        raise OgbenchEnvError(
            f"run {run_dir} (env {spec.get('name')!r}) does not fit OGBench's {env.spec.id}: "
            f"{'; '.join(problems)}; evaluate a run trained on a dataset imported with `crl-data import ogbench` "
            f"from the same env")
    fn = jax.jit(lp.act)

    def act(obs: np.ndarray, goals: np.ndarray, envs: list[Any]) -> np.ndarray:
        x = np.concatenate([obs, goals[:, gi]], axis=1).astype(np.float32)
        return np.asarray(fn(jnp.asarray(x)), dtype=np.float32)

    return OgbPolicy(f"checkpoint:{run_dir}", act, {
        "kind": lp.kind, "checkpoint_step": lp.step, "run_dir": str(lp.run_dir), "trained_env": spec.get("name"),
        "observation_layout": f"concat(observation[{ob_dim}], goal_observation[{gi.tolist()}])"})


def planned_policy(run_dir: str | Path, env: Any, step: int | None, waypoints: int, seed: int = 0) -> OgbPolicy:
    """A crl run's actor driven along a shortest path over `waypoints` states of the run's own dataset, the critic
    measuring the hops (crl.planning.WaypointPlanner): test-time planning, recorded as such in the result."""
    from crl.checkpoint import load_agent
    from crl.errors import ConfigError
    from crl.planning import WaypointPlanner, dataset_waypoints

    la = load_agent(run_dir, step)
    base = checkpoint_policy(run_dir, env, step, la)  # the same size checks as the plain actor
    dataset = la.config.get("dataset")
    if not isinstance(dataset, str):
        raise ConfigError(f"run {run_dir} is a {la.kind} run with no dataset to draw waypoints from; "
                          f"planning needs an offline run")
    planner = WaypointPlanner.from_agent(la.agent, la.params, dataset_waypoints(dataset, waypoints, seed),
                                         la.env_spec.get("goal_indices") or [])
    info = {**base.info, "planner": {"kind": "waypoints", "dataset": dataset, "seed": seed, **planner.info()}}
    return OgbPolicy(f"{base.name}+plan{waypoints}", planner, info)


def random_policy(env: Any, seed: int) -> OgbPolicy:
    """Uniform actions in the env's action box (seeded)."""
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low.astype(np.float32), env.action_space.high.astype(np.float32)

    def act(obs: np.ndarray, goals: np.ndarray, envs: list[Any]) -> np.ndarray:
        return rng.uniform(low, high, (len(obs), *low.shape)).astype(np.float32)

    return OgbPolicy("random", act, {"kind": "random"})


def oracle_policy(env: Any, noise: float = 0.0, seed: int = 0) -> OgbPolicy:
    """OGBench's point-maze expert (data_gen_scripts/generate_locomaze.py): move at full speed towards the BFS
    oracle subgoal `env.get_oracle_subgoal(xy, goal_xy)`, plus Gaussian action noise `noise`. Point mazes only:
    ant and humanoid need OGBench's trained low-level experts, which do not ship with the package."""
    if not env.spec.id.startswith("pointmaze"):
        raise OgbenchEnvError(f"policy 'oracle' is only defined for OGBench point mazes (got {env.spec.id}): ant "
                              f"and humanoid need OGBench's trained experts; use checkpoint:RUN_DIR or random")
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray, goals: np.ndarray, envs: list[Any]) -> np.ndarray:
        out = np.zeros((len(envs), 2), np.float32)
        for i, e in enumerate(envs):
            u = e.unwrapped
            xy = u.get_xy()
            sub, _ = u.get_oracle_subgoal(xy, np.asarray(u.cur_goal_xy))
            d = np.asarray(sub) - xy
            out[i] = d / (np.linalg.norm(d) + 1e-6)
        if noise > 0:
            out = out + rng.normal(0.0, noise, out.shape)
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    return OgbPolicy("oracle", act, {"kind": "oracle", "action_noise": noise})


def make_policy(name: str, env: Any, seed: int = 0, step: int | None = None, plan_waypoints: int = 0
                ) -> OgbPolicy:
    """'checkpoint:RUN_DIR', 'random' or 'oracle' (point mazes) -> an OgbPolicy for `env`; `plan_waypoints` > 0
    plans a checkpoint's moves over that many dataset waypoints (`planned_policy`)."""
    if name.startswith("checkpoint:"):
        run_dir = name[len("checkpoint:"):]
        if plan_waypoints:
            return planned_policy(run_dir, env, step, plan_waypoints, seed)
        return checkpoint_policy(run_dir, env, step)
    if plan_waypoints:
        raise OgbenchEnvError(f"planning needs a trained critic: use --policy checkpoint:RUN_DIR, not {name!r}")
    if name == "random":
        return random_policy(env, seed)
    if name == "oracle":
        return oracle_policy(env, noise=ORACLE_NOISE, seed=seed)
    raise OgbenchEnvError(f"unknown policy {name!r}; use checkpoint:RUN_DIR, oracle or random")


# ---- the protocol ---------------------------------------------------------------------------------------------------
def evaluate_ogbench(
    env_name: str,
    policy: str,
    episodes: int = DEFAULT_EPISODES,
    seed: int = 0,
    num_envs: int | None = None,
    max_episode_steps: int | None = None,
    tasks: list[int] | None = None,
    step: int | None = None,
    out_dir: str | Path | None = None,
    plan_waypoints: int = 0,
) -> dict[str, Any]:
    """Run OGBench's evaluation of `policy` ('checkpoint:RUN_DIR', 'random', 'oracle') in `env_name`
    ('ogbench:pointmaze-medium-navigate-v0', ...); returns a JSON-able dict with per-task and overall success
    (`overall_success`, also under `eval/success`) and, when `out_dir` is given, writes `ogbench_tasks.png` there.

    `max_episode_steps` (default: the env's 1000) and `tasks` (default: all 5) deviate from the protocol and are
    recorded in the result; `num_envs` env copies run in lockstep (default: `episodes`, at most 50);
    `plan_waypoints` > 0 evaluates a checkpoint with test-time planning (`planned_policy`)."""
    ogbench = require_ogbench()
    if episodes < 1:
        raise OgbenchEnvError(f"episodes={episodes} must be >= 1 (OGBench uses {DEFAULT_EPISODES} per task)")
    gid = env_id(env_name)
    k = max(1, min(num_envs or min(episodes, 50), episodes * 5))
    envs = [make_env(env_name, max_episode_steps) for _ in range(k)]
    try:
        u = envs[0].unwrapped
        maze_map, unit, ox, oy = maze_geometry(u)
        task_infos = list(u.task_infos)
        all_tasks = list(range(1, len(task_infos) + 1))
        chosen = all_tasks if tasks is None else [int(t) for t in tasks]
        bad = [t for t in chosen if t not in all_tasks]
        if bad:
            raise OgbenchEnvError(f"task ids {bad} unknown; {gid} has tasks {all_tasks}")
        pol = make_policy(policy, envs[0], seed, step, plan_waypoints)
        records = rollout_tasks(envs, pol.act, chosen, episodes, seed)
        limit = envs[0].spec.max_episode_steps
    finally:
        for e in envs:
            e.close()
    rows = []
    for t in chosen:
        recs = [r for r in records if r["task_id"] == t]
        s = np.array([r["success"] for r in recs])
        info = task_infos[t - 1]
        rows.append({
            "task_id": t, "task_name": info["task_name"], "init_ij": list(info["init_ij"]),
            "goal_ij": list(info["goal_ij"]), "init_xy": [float(v) for v in info["init_xy"]],
            "goal_xy": [float(v) for v in info["goal_xy"]], "episodes": len(recs), "success": float(s.mean()),
            "ci95": wilson(float(s.sum()), len(recs)),
            "mean_steps": float(np.mean([r["steps"] for r in recs])),
            "mean_steps_success": (float(np.mean([r["steps"] for r in recs if r["success"]]))
                                   if s.any() else None),
            "trace_xy": next(r["trace_xy"] for r in recs if "trace_xy" in r),
        })
    overall = float(np.mean([r["success"] for r in rows]))
    all_s = np.array([r["success"] for r in records])
    result: dict[str, Any] = {
        "evaluator": "goals", "protocol": "ogbench", "env": env_name if is_ogbench(env_name) else PREFIX + env_name,
        "gym_id": gid, "policy": pol.name, "policy_info": pol.info, "episodes_per_task": episodes, "seed": seed,
        "num_envs": k, "max_episode_steps": int(limit), "tasks": rows, "overall_success": overall,
        "eval/success": overall, "ci95": {"eval/success": wilson(float(all_s.sum()), len(all_s))},
        "episodes": len(records), "ogbench_version": getattr(ogbench, "__version__", None) or ogbench_version(),
        "deviations": [d for d in (
            f"max_episode_steps={limit} (protocol: 1000)" if limit != 1000 else "",
            f"tasks={chosen} (protocol: all {len(all_tasks)})" if chosen != all_tasks else "",
            f"test-time planning over {plan_waypoints} dataset waypoints (crl.planning)" if plan_waypoints else "",
        ) if d],
        "maze_map": maze_map.tolist(), "maze_unit": unit, "maze_offset": [ox, oy],
    }
    if out_dir is not None:
        from crl.eval.plots import safe_figure

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        result["images"] = ["ogbench_tasks.png"] if safe_figure(plot_tasks, result, out / "ogbench_tasks.png") else []
    return result


def plot_tasks(result: dict[str, Any], path: Path) -> None:
    """Maze with each task's start, goal and first-episode trace, next to per-task success bars with 95% CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crl.eval.plots import error_bars

    maze = np.asarray(result["maze_map"])
    unit, (ox, oy) = result["maze_unit"], result["maze_offset"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.2, 1]})
    # cell (i, j) has centre xy = (j * unit - ox, i * unit - oy) (OGBench's ij_to_xy)
    extent = (-0.5 * unit - ox, (maze.shape[1] - 0.5) * unit - ox, (maze.shape[0] - 0.5) * unit - oy,
              -0.5 * unit - oy)
    ax.imshow(maze, cmap="Greys", extent=extent, vmin=0, vmax=1.6)
    colors = plt.get_cmap("tab10")
    for n, row in enumerate(result["tasks"]):
        c = colors(n % 10)
        tr = np.asarray(row["trace_xy"])
        if len(tr):
            ax.plot(tr[:, 0], tr[:, 1], color=c, lw=1.2, alpha=0.8)
        ax.plot(*row["init_xy"], "o", color=c, ms=7, mec="k")
        ax.plot(*row["goal_xy"], "*", color=c, ms=13, mec="k")
        ax.annotate(str(row["task_id"]), row["goal_xy"], textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_ylim(extent[2], extent[3])
    ax.set_title(f"{result['gym_id']}: tasks (o start, * goal, first episode)", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    names = [r["task_name"] for r in result["tasks"]]
    s = np.array([r["success"] for r in result["tasks"]])
    lo = np.array([r["ci95"][0] for r in result["tasks"]])
    hi = np.array([r["ci95"][1] for r in result["tasks"]])
    bx.bar(names, s, color=[colors(i % 10) for i in range(len(s))], yerr=error_bars(s, lo, hi), capsize=3)
    bx.axhline(result["overall_success"], color="k", ls="--", lw=1, label=f"overall {result['overall_success']:.2f}")
    bx.set_ylim(0, 1.05)
    bx.set_ylabel("success")
    bx.set_title(f"{result['policy']} ({result['episodes_per_task']} episodes/task)", fontsize=9)
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_ogbench(
    policy: str,
    env: str,
    episodes: int | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    max_episode_steps: int | None = None,
    step: int | None = None,
    num_envs: int | None = None,
    plan_waypoints: int = 0,
) -> dict[str, Any]:
    """`crl-eval goals --env ogbench:...`: `evaluate_ogbench` writing `goals.json` + `ogbench_tasks.png` into `out`
    (default `RUN_DIR/eval/<env>` for a checkpoint, `RUN_DIR/eval/<env>-plan<N>` with planning, else
    `eval_results/<policy>_<env>`); returns the result with `json` and `png` paths (what `crl-eval goals` prints)."""
    from crl import code_version
    from crl.eval.results import write_json

    require_ogbench()
    env_id(env)  # validate the name before anything is built
    bare = env[len(PREFIX):] if is_ogbench(env) else env
    if out is None:
        if policy.startswith("checkpoint:"):
            out = Path(policy[len("checkpoint:"):]) / "eval" / (f"{bare}-plan{plan_waypoints}" if plan_waypoints
                                                                else bare)
        else:
            out = Path("eval_results") / f"{policy}_{bare}"
    out_dir = Path(out)
    r = evaluate_ogbench(env, policy, DEFAULT_EPISODES if episodes is None else episodes, 0 if seed is None else seed,
                         num_envs, max_episode_steps, None, step, None, plan_waypoints)
    r["code_version"] = code_version()
    r["json"] = str(out_dir / "goals.json")
    write_json(out_dir, "goals", r)  # the results first: a figure never costs them
    from crl.eval.plots import safe_figure

    if safe_figure(plot_tasks, r, out_dir / "ogbench_tasks.png"):
        r["png"] = str(out_dir / "ogbench_tasks.png")
        r["images"] = ["ogbench_tasks.png"]
        write_json(out_dir, "goals", r)
    return r


def summary_lines(result: dict[str, Any]) -> list[str]:
    """What `crl-eval goals --env ogbench:...` prints: overall and per-task success with 95% intervals."""
    ci = result["ci95"]["eval/success"]
    lines = [f"{result['policy']} on {result['env']} ({result['gym_id']}, OGBench protocol): "
             f"{result['episodes_per_task']} episodes x {len(result['tasks'])} tasks, seed {result['seed']}",
             f"  overall success {result['overall_success']:.3f} (all episodes [{ci[0]:.3f}, {ci[1]:.3f}])",
             "  task    start    goal     episodes  success  95% CI          mean steps"]
    for r in result["tasks"]:
        lines.append(f"  {r['task_name']:6s}  {tuple(r['init_ij'])!s:8s} {tuple(r['goal_ij'])!s:8s} "
                     f"{r['episodes']:8d}  {r['success']:7.3f}  [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]  "
                     f"{r['mean_steps']:10.1f}")
    for d in result.get("deviations", []):
        lines.append(f"  deviation from the protocol: {d}")
    return lines
