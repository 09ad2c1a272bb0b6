"""The goal-conditioned maze environment shared by the point, ant and humanoid families.

A subclass supplies the MJCF, the initial joint state, the state part of the observation and (optionally) a health
check; this class owns goal/start sampling, success, reward, termination, truncation and episode bookkeeping.
Everything lives in `State`; `reset` and `step` are pure and jit/vmap-able.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from crl.envs.base import EnvSpec, State
from crl.envs.config import MazeEnvConfig
from crl.envs.maze import Maze, load_layout


class MazeEnv:
    """Base class; see the module docstring. Construct through `crl.envs.make`."""

    family: ClassVar[str] = ""
    goal_indices: tuple[int, ...] = (0, 1)

    def __init__(self, config: MazeEnvConfig, name: str, gym_id: str | None = None):
        config.validate()
        self.config = config
        self.maze: Maze = load_layout(config.layout, config.cell_size)
        self.mj_model = mujoco.MjModel.from_xml_string(self._xml())
        opt = self.mj_model.opt
        opt.timestep = config.timestep
        opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
        opt.iterations = config.solver_iterations
        opt.ls_iterations = config.ls_iterations
        opt.disableflags = opt.disableflags | mujoco.mjtDisableBit.mjDSBL_EULERDAMP
        self.mjx_model = mjx.put_model(self.mj_model)
        self._data0 = mjx.make_data(self.mjx_model)
        start_cells = self.maze.start_cells() if config.start_cells == "start" else self.maze.free_cells()
        self._starts = jnp.asarray(np.array([self.maze.cell_to_xy(c) for c in start_cells]), jnp.float32)
        self._goals = jnp.asarray(np.array([self.maze.cell_to_xy(c) for c in self.maze.goal_cells()]), jnp.float32)
        ctrl_range = np.asarray(self.mj_model.actuator_ctrlrange, dtype=np.float32)
        self._ctrl_lo, self._ctrl_hi = jnp.asarray(ctrl_range[:, 0]), jnp.asarray(ctrl_range[:, 1])

        self.action_size = int(self.mj_model.nu)
        self.state_size = int(jax.eval_shape(self._state_obs, self._data0).shape[-1])
        self.goal_size = len(self.goal_indices)
        self.observation_size = self.state_size + self.goal_size
        self.episode_length = config.episode_length
        self.dt = config.timestep * config.substeps
        self.spec = EnvSpec(
            name=name,
            family=self.family,
            layout=config.layout,
            observation_size=self.observation_size,
            state_size=self.state_size,
            goal_size=self.goal_size,
            action_size=self.action_size,
            goal_indices=tuple(self.goal_indices),
            episode_length=config.episode_length,
            success_threshold=config.success_threshold,
            nq=int(self.mj_model.nq),
            nv=int(self.mj_model.nv),
            gym_id=gym_id,
            config=config.to_dict(),
            layout_text=self.maze.to_text(),
        )

    # ------------------------------------------------------------ family hooks
    def _xml(self) -> str:
        raise NotImplementedError

    def _init_qpos_qvel(self, key: jax.Array, start_xy: jax.Array) -> tuple[jax.Array, jax.Array]:
        raise NotImplementedError

    def _state_obs(self, data: mjx.Data) -> jax.Array:
        raise NotImplementedError

    def goal_from_xy(self, xy: jax.Array) -> jax.Array:
        """The goal vector for a goal position in the plane (humanoid adds the target height)."""
        return xy

    def _is_healthy(self, data: mjx.Data) -> jax.Array:
        """1.0 while the agent is healthy (torso height in range); the point mass is always healthy."""
        return jnp.ones((), jnp.float32)

    # ------------------------------------------------------------ sampling
    def _sample_xy(self, key: jax.Array, centres: jax.Array, jitter: float) -> jax.Array:
        k_idx, k_jit = jax.random.split(key)
        xy = centres[jax.random.randint(k_idx, (), 0, centres.shape[0])]
        if jitter > 0:
            xy = xy + jax.random.uniform(k_jit, (2,), minval=-jitter, maxval=jitter)
        return xy

    def sample_goal(self, key: jax.Array) -> jax.Array:
        """A goal from the layout's goal cells with the configured jitter."""
        return self.goal_from_xy(self._sample_xy(key, self._goals, self.config.goal_jitter))

    # ------------------------------------------------------------ API
    def with_config(self, **overrides: Any) -> MazeEnv:
        """The same env with some config fields changed (e.g. start_cells='free' for a training copy)."""
        return type(self)(self.config.replace(**overrides), self.spec.name, self.spec.gym_id)

    def reset_to_goal_cell(self, key: jax.Array, index: jax.Array) -> State:
        """A new episode (start as in `reset`) whose goal is goal cell `index` modulo their number, jittered as in
        `sample_goal`. Evaluations cycle `index` so every goal cell gets the same number of episodes."""
        centre = self._goals[jnp.mod(index, self.num_goal_cells)][None]
        return self._new_episode(
            key, lambda k: self.goal_from_xy(self._sample_xy(k, centre, self.config.goal_jitter)))

    @property
    def num_goal_cells(self) -> int:
        """How many goal cells the layout has."""
        return int(self._goals.shape[0])

    def reset(self, key: jax.Array) -> State:
        """A new episode: start from a start cell, goal from a goal cell (both jittered)."""
        return self._new_episode(key, self.sample_goal)

    def _new_episode(self, key: jax.Array, goal_fn: Callable[[jax.Array], jax.Array]) -> State:
        """Start sampled from the start cells, goal from `goal_fn(key)`; one key split shared by every reset."""
        k_start, k_goal, k_init, k_rng = jax.random.split(key, 4)
        start = self._sample_xy(k_start, self._starts, self.config.start_jitter)
        return self.reset_to(k_init, start, goal_fn(k_goal), k_rng)

    def reset_to(self, key: jax.Array, start_xy: jax.Array, goal: jax.Array, rng: jax.Array | None = None) -> State:
        """A new episode from an explicit start position and goal (evaluators and stitching tasks use this)."""
        qpos, qvel = self._init_qpos_qvel(key, jnp.asarray(start_xy, jnp.float32))
        data = mjx.forward(self.mjx_model, self._data0.replace(qpos=qpos, qvel=qvel))
        goal = jnp.asarray(goal, jnp.float32)
        state_obs = self._state_obs(data)
        dist = jnp.linalg.norm(state_obs[jnp.asarray(self.goal_indices)] - goal)
        zero = jnp.zeros((), jnp.float32)
        return State(
            data=data,
            obs=jnp.concatenate([state_obs, goal]),
            goal=goal,
            reward=zero,
            done=zero,
            truncation=zero,
            metrics={"dist": dist, "success": (dist < self.config.success_threshold).astype(jnp.float32)},
            step=jnp.zeros((), jnp.int32),
            episode_id=jnp.zeros((), jnp.int32),
            rng=key if rng is None else rng,
            info={},
        )

    def step(self, state: State, action: jax.Array) -> State:
        """Apply `action` (in [-1, 1]^action_size, clipped) for `substeps` physics steps."""
        cfg = self.config
        a = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        ctrl = self._ctrl_lo + (a + 1.0) * 0.5 * (self._ctrl_hi - self._ctrl_lo)
        data = state.data.replace(ctrl=ctrl)
        data = jax.lax.fori_loop(0, cfg.substeps, lambda _, d: mjx.step(self.mjx_model, d), data)

        state_obs = self._state_obs(data)
        dist = jnp.linalg.norm(state_obs[jnp.asarray(self.goal_indices)] - state.goal)
        success = (dist < cfg.success_threshold).astype(jnp.float32)
        reward = -dist if cfg.dense_reward else success
        if cfg.terminate_when_unhealthy:
            terminated = 1.0 - self._is_healthy(data)
        else:
            terminated = jnp.zeros((), jnp.float32)
        step = state.step + 1
        truncated = (step >= cfg.episode_length).astype(jnp.float32)
        done = jnp.maximum(terminated, truncated)

        rng, k_goal = jax.random.split(state.rng)
        goal = state.goal
        if cfg.new_goal_on_success:
            goal = jnp.where(success > 0, self.sample_goal(k_goal), goal)
        return state.replace(
            data=data,
            obs=jnp.concatenate([state_obs, goal]),
            goal=goal,
            reward=reward,
            done=done,
            truncation=truncated * (1.0 - terminated),
            metrics={"dist": dist, "success": success},
            step=step,
            rng=rng,
        )
