"""Gymnasium view of a maze env: one env, numpy in and out, Dict observation (observation / achieved_goal /
desired_goal), so Minari datasets can record and `recover_environment()` it. Registered ids: `crl/PointUMaze-v0`,
`crl/AntBigMaze-v0`, ... (see `register_gym_envs`).

The Dict follows Gymnasium-Robotics' goal-env convention: `observation` is the state part only (state_size
columns; the MJX env's flat observation is concat(state part, goal)), the goal is in `desired_goal` alone. A crl
policy takes `np.concatenate([obs["observation"], obs["desired_goal"]])`."""

from __future__ import annotations

from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from crl.envs.registry import LAYOUTS, families, gym_id, make


class GymMazeEnv(gymnasium.Env):
    """A registered crl env behind the Gymnasium API; `env_name` and config overrides as for `crl.envs.make`."""

    metadata = {"render_modes": []}

    def __init__(self, env_name: str = "point_u_maze", **overrides: Any):
        self.env = make(env_name, **overrides)
        spec = self.env.spec
        box = lambda n: spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float32)  # noqa: E731
        self.observation_space = spaces.Dict(
            {"observation": box(spec.state_size), "achieved_goal": box(spec.goal_size),
             "desired_goal": box(spec.goal_size)}
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(spec.action_size,), dtype=np.float32)
        self._reset = jax.jit(self.env.reset)
        self._step = jax.jit(self.env.step)
        self._goal_idx = np.asarray(spec.goal_indices)
        self._state_size = spec.state_size
        self._state = None

    @property
    def mjx_state(self) -> Any:
        """The wrapped MJX env's current State (its `obs` is concat(state part, goal)); None before reset()."""
        return self._state

    def _obs(self) -> dict[str, np.ndarray]:
        obs = np.asarray(self._state.obs, dtype=np.float32)
        return {"observation": obs[: self._state_size].copy(), "achieved_goal": obs[self._goal_idx].copy(),
                "desired_goal": np.asarray(self._state.goal, dtype=np.float32)}

    def _info(self) -> dict[str, Any]:
        return {"success": bool(self._state.metrics["success"] > 0), "dist": float(self._state.metrics["dist"])}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """New episode; the JAX key is drawn from the seeded `np_random`, so equal seeds give equal episodes."""
        super().reset(seed=seed)
        key = jax.random.PRNGKey(int(self.np_random.integers(0, 2**31 - 1)))
        self._state = self._reset(key)
        return self._obs(), self._info()

    def step(self, action: np.ndarray):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._state = self._step(self._state, jnp.asarray(action, jnp.float32))
        truncated = bool(self._state.truncation > 0)
        terminated = bool(self._state.done > 0) and not truncated
        return self._obs(), float(self._state.reward), terminated, truncated, self._info()

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Sparse success reward for relabelled goals (GoalEnv convention)."""
        dist = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return (dist < self.env.config.success_threshold).astype(np.float32)


def register_gym_envs() -> list[str]:
    """Register every built-in env under its gymnasium id (idempotent); returns the ids."""
    ids = []
    for family in families():
        for layout in LAYOUTS:
            gid = gym_id(family, layout)
            if gid not in gymnasium.registry:
                gymnasium.register(
                    id=gid, entry_point="crl.envs.gym_wrapper:GymMazeEnv",
                    kwargs={"env_name": f"{family}_{layout}_maze"},
                )
            ids.append(gid)
    return ids
