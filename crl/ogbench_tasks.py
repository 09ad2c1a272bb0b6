"""OGBench's locomaze tasks for crl policies, in the core so the trainer and `crl.eval` share one rollout.

OGBench's protocol (its `impls/main.py` + `impls/utils/evaluation.py`, v1.x): for task_id = 1..5 run N episodes of
`env.reset(options=dict(task_id=task_id, render_goal=False))`, acting until `terminated or truncated`; an episode's
success is the final step's `info['success']`, a task's success the mean over its episodes, the overall success
the mean over the tasks. Actions are clipped to [-1, 1]. OGBench draws reset noise from NumPy's global generator:
`GlobalNumpySeed` seeds it for a rollout and restores it afterwards. `ogbench` is an optional extra, imported on use.
"""


from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from crl.errors import CrlError

PREFIX = "ogbench:"
INSTALL_HINT = 'OGBench is not installed; install the extra: pip install -e ".[ogbench]"'
DEFAULT_EPISODES = 20
"""OGBench's `--eval_episodes` default (episodes per task)."""
ORACLE_NOISE = 0.2
"""Action noise of policy 'oracle' (OGBench's generator default): the noiseless expert can stick on a wall corner
(1 of 20 medium-maze episodes did, at seed 0)."""

_NAME = re.compile(r"^(?P<loco>point|ant|humanoid)maze-(?P<size>medium|large|giant|teleport)"
                   r"(?:-(?P<kind>navigate|stitch|explore))?-v(?P<version>\d+)$")
ENV_NAMES = tuple(f"{loco}maze-{size}-navigate-v0" for loco in ("point", "ant")
                  for size in ("medium", "large", "giant", "teleport"))
"""The state-based locomaze navigate datasets this protocol is documented for (stitch/explore and humanoidmaze
names map onto the same envs and tasks)."""


class OgbenchMissingError(CrlError):
    """The optional `ogbench` package is not installed."""


class OgbenchEnvError(CrlError):
    """An `ogbench:` name this protocol does not know, or a policy that does not fit the env."""


BatchAct = Callable[[np.ndarray, np.ndarray, list[Any]], np.ndarray]
"""`act(obs [K, ob_dim], goals [K, goal_ob_dim], envs) -> actions [K, action_dim]` (envs: the K gym envs). A
stateful one may also have `reset(i)`, called when env slot i starts an episode."""


def is_ogbench(env: str | None) -> bool:
    """True for `ogbench:...` env names (the goals command's branch)."""
    return bool(env) and str(env).startswith(PREFIX)


def require_ogbench() -> Any:
    """Import ogbench (which registers its Gymnasium envs) or raise OgbenchMissingError with the install line."""
    try:
        import ogbench
    except ImportError:
        raise OgbenchMissingError(INSTALL_HINT) from None
    return ogbench


def env_id(name: str) -> str:
    """'ogbench:pointmaze-medium-navigate-v0' (a dataset name, as `crl-data import ogbench` names the env) or
    'ogbench:pointmaze-medium-v0' -> OGBench's Gymnasium id 'pointmaze-medium-v0'."""
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    m = _NAME.match(bare)
    if m is None or (m["loco"] == "humanoid" and m["size"] == "teleport"):
        raise OgbenchEnvError(f"{name!r} is not an OGBench state-based locomaze env; use e.g. "
                              f"{', '.join(PREFIX + n for n in ENV_NAMES[:2])}, ... ({PREFIX}<point|ant>maze-"
                              f"<medium|large|giant|teleport>-navigate-v0)")
    return f"{m['loco']}maze-{m['size']}-v{m['version']}"


def make_env(name: str, max_episode_steps: int | None = None, **env_kwargs: Any) -> Any:
    """OGBench's Gymnasium env for `name` (as `ogbench.make_env_and_datasets(..., env_only=True)` builds it);
    `env_kwargs` go to the env's constructor (e.g. `terminate_at_goal=False`, as OGBench's data scripts pass)."""
    require_ogbench()
    import gymnasium

    kw = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    return gymnasium.make(env_id(name), **kw, **env_kwargs)


def maze_geometry(u: Any) -> tuple[np.ndarray, float, float, float]:
    """(maze_map as ints, cell size, x offset, y offset) of an unwrapped OGBench locomaze env: cell (i, j) is at
    xy = (j * unit - offset_x, i * unit - offset_y). OGBench keeps the last three only in private attributes
    (`_maze_unit`, `_offset_x`, `_offset_y`); this is the one place that reads them."""
    return (np.asarray(u.maze_map).astype(int), float(u._maze_unit), float(u._offset_x), float(u._offset_y))


class GlobalNumpySeed:
    """Seed NumPy's global generator (OGBench draws its reset noise from it) and restore it on exit."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        self.saved = np.random.get_state()
        np.random.seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        np.random.set_state(self.saved)


def wilson(successes: float, n: int, z: float = 1.959963984540054) -> list[float]:
    """95% Wilson score interval of a success rate (crl.goal_rollouts.wilson_ci, as a list)."""
    from crl.goal_rollouts import wilson_ci

    return list(wilson_ci(successes, n, z))


def rollout_tasks(
    envs: list[Any],
    act: BatchAct,
    tasks: list[int],
    episodes: int,
    seed: int,
    trace_every: int = 10,
) -> list[dict[str, Any]]:
    """Every (task, episode) pair, run in lockstep on `envs` (an env takes the next pair when its episode ends).

    Returns one record per episode: task_id, success (final info['success']), steps, the first episode of each
    task also with its x-y trace (every `trace_every` steps) for plots."""
    queue = [(t, e) for t in tasks for e in range(episodes)]
    k = len(envs)
    ob_dim = int(np.prod(envs[0].observation_space.shape))
    obs = np.zeros((k, ob_dim), np.float32)
    goal_dim = int(np.prod(envs[0].unwrapped.get_ob().shape))  # state-based locomaze: the goal is an observation
    goals = np.zeros((k, goal_dim), np.float32)
    job: list[tuple[int, int] | None] = [None] * k
    steps = np.zeros(k, np.int64)
    traces: dict[int, list[list[float]]] = {}
    out: list[dict[str, Any]] = []
    first_reset = [True] * k

    def start(i: int) -> None:
        if not queue:
            job[i] = None
            return
        job[i] = queue.pop(0)
        if hasattr(act, "reset"):  # a stateful policy (crl.planning.WaypointPlanner) forgets slot i's episode
            act.reset(i)
        kw: dict[str, Any] = {"options": {"task_id": job[i][0], "render_goal": False}}
        if first_reset[i]:
            kw["seed"] = seed + i
            first_reset[i] = False
        ob, info = envs[i].reset(**kw)
        obs[i] = ob
        goals[i] = np.asarray(info["goal"], np.float32).ravel()
        steps[i] = 0
        if job[i][1] == 0:
            traces[job[i][0]] = [list(map(float, envs[i].unwrapped.get_xy()))]

    with GlobalNumpySeed(seed):
        for i in range(k):
            start(i)
        while any(j is not None for j in job):
            actions = np.clip(act(obs, goals, envs), -1.0, 1.0)
            for i in range(k):
                if job[i] is None:
                    continue
                ob, _r, terminated, truncated, info = envs[i].step(actions[i])
                obs[i] = ob
                steps[i] += 1
                task, ep = job[i]
                if ep == 0 and (steps[i] % trace_every == 0 or terminated or truncated):
                    traces[task].append(list(map(float, envs[i].unwrapped.get_xy())))
                if terminated or truncated:
                    rec: dict[str, Any] = {"task_id": task, "episode": ep, "success": float(info["success"]),
                                           "steps": int(steps[i])}
                    if ep == 0:
                        rec["trace_xy"] = traces[task]
                    out.append(rec)
                    start(i)
    out.sort(key=lambda r: (r["task_id"], r["episode"]))
    return out


def ogbench_version() -> str | None:
    """The installed ogbench distribution's version (None when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ogbench")
    except PackageNotFoundError:
        return None


def crl_act(act: Callable[[Any], Any], goal_indices: list[int] | np.ndarray) -> BatchAct:
    """A crl actor `act(concat(state, goal)) -> actions` (jax) as a BatchAct on OGBench observations: the policy
    input is concat(ob, goal_ob[goal_indices]), the layout of data imported or generated from OGBench."""
    gi = np.asarray(goal_indices, dtype=np.int64)

    def batch_act(obs: np.ndarray, goals: np.ndarray, envs: list[Any]) -> np.ndarray:
        x = np.concatenate([obs, goals[:, gi]], axis=1).astype(np.float32)
        return np.asarray(act(x), dtype=np.float32)

    return batch_act


def task_success(records: list[dict[str, Any]], tasks: list[int]) -> dict[str, float]:
    """Per-task and overall success of `rollout_tasks` records, under the trainer's metric names:
    eval/task<i>_success and eval/success (the mean over tasks, OGBench's evaluation/overall_success)."""
    per = {t: float(np.mean([r["success"] for r in records if r["task_id"] == t])) for t in tasks}
    return {**{f"eval/task{t}_success": v for t, v in per.items()}, "eval/success": float(np.mean(list(per.values())))}


class TaskEvaluator:
    """OGBench's tasks of one env, evaluated during training: env copies built once, `episodes` per task, a
    seeded rollout per call. `__call__(act_fn, seed)` returns task_success's metrics."""

    def __init__(self, env_name: str, goal_indices: list[int], episodes: int, num_envs: int | None = None) -> None:
        if episodes < 1:
            raise OgbenchEnvError(f"episodes={episodes} must be >= 1 (OGBench's tables use 50 per task)")
        self.env_name, self.goal_indices, self.episodes = env_name, list(goal_indices), int(episodes)
        k = max(1, min(num_envs or 5 * self.episodes, 5 * self.episodes, 50))
        self.envs = [make_env(env_name) for _ in range(k)]
        self.tasks = list(range(1, len(self.envs[0].unwrapped.task_infos) + 1))

    def __call__(self, act: Callable[[Any], Any], seed: int) -> dict[str, float]:
        records = rollout_tasks(self.envs, crl_act(act, self.goal_indices), self.tasks, self.episodes, seed)
        return task_success(records, self.tasks)
