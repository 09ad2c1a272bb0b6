"""A scripted controller for point mazes that follows the BFS waypoint path to the goal.

Waypoint rule: in the goal's cell, head for the goal itself; otherwise head for the centre of the next cell on a
shortest 4-connected path (`Maze.next_cell_table`). The straight segment from anywhere in a cell to the centre of
a neighbouring free cell stays inside those two cells, so the path never cuts a wall. The action is a saturated
proportional command towards the waypoint with velocity damping. Reference policy for tests and a
data-collection policy (with `noise_std` > 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from crl.envs.base import State
from crl.envs.maze_env import MazeEnv
from crl.errors import ConfigError


def _tables(env: MazeEnv) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(cell index grid [R, C] with -1 for walls, next-cell table [n, n], free-cell centres [n, 2])."""
    maze = env.maze
    grid = np.full(maze.shape, -1, dtype=np.int32)
    for i, (r, c) in enumerate(maze.free_cells()):
        grid[r, c] = i
    centres = np.array([maze.cell_to_xy(c) for c in maze.free_cells()], dtype=np.float32)
    return jnp.asarray(grid), jnp.asarray(maze.next_cell_table, jnp.int32), jnp.asarray(centres)


def _cell_index(grid: jax.Array, xy: jax.Array, cell_size: float) -> jax.Array:
    rc = jnp.floor(xy / cell_size + 0.5).astype(jnp.int32)
    r = jnp.clip(rc[..., 0], 0, grid.shape[0] - 1)
    c = jnp.clip(rc[..., 1], 0, grid.shape[1] - 1)
    return grid[r, c]


def waypoint(env: MazeEnv, xy: jax.Array, goal_xy: jax.Array) -> jax.Array:
    """The point the oracle heads for from `xy` towards `goal_xy` (broadcasts over leading dims)."""
    grid, table, centres = _tables(env)
    here = _cell_index(grid, xy, env.maze.cell_size)
    there = _cell_index(grid, goal_xy, env.maze.cell_size)
    valid = (here >= 0) & (there >= 0)
    nxt = table[jnp.maximum(here, 0), jnp.maximum(there, 0)]
    follow = valid & (here != there)
    return jnp.where(follow[..., None], centres[nxt], goal_xy)


def oracle_action(
    env: MazeEnv,
    state_or_obs: State | jax.Array,
    key: jax.Array | None = None,
    noise_std: float = 0.0,
    gain: float = 1.0,
    damping: float = 0.3,
) -> jax.Array:
    """Action in [-1, 1]^2 for a point maze: steer to the next BFS waypoint; optional Gaussian action noise.

    Accepts a `State` or an observation array (`[..., observation_size]`, batched or not). Jittable; `noise_std`
    > 0 needs `key`.
    """
    if env.family != "point":
        raise ConfigError(f"the oracle controller drives point mazes only, not {env.spec.name!r}")
    obs = state_or_obs.obs if isinstance(state_or_obs, State) else jnp.asarray(state_or_obs)
    xy, vel = obs[..., 0:2], obs[..., 2:4]
    goal = obs[..., env.state_size : env.state_size + 2]
    target = waypoint(env, xy, goal)
    action = gain * (target - xy) - damping * vel
    # saturate by norm so the direction is kept when far from the waypoint
    norm = jnp.linalg.norm(action, axis=-1, keepdims=True)
    action = action / jnp.maximum(norm, 1.0)
    if noise_std > 0:
        if key is None:
            raise ConfigError("oracle_action with noise_std > 0 needs a PRNG key")
        action = action + noise_std * jax.random.normal(key, action.shape)
    return jnp.clip(action, -1.0, 1.0)
