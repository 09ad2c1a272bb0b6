"""Point-mass maze: a sphere on two slide joints pushed by two motors; the cheap env for CPU work and tests.

Observation state part: [x, y, vx, vy]; goal: [x, y]; action: force per axis in [-1, 1].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from mujoco import mjx

from crl.envs.maze_env import MazeEnv
from crl.envs.mjcf import point_xml


class PointMaze(MazeEnv):
    """Point mass in a maze (see module docstring)."""

    family = "point"
    goal_indices = (0, 1)

    def _xml(self) -> str:
        return point_xml(self.maze)

    def _init_qpos_qvel(self, key: jax.Array, start_xy: jax.Array) -> tuple[jax.Array, jax.Array]:
        return start_xy, jnp.zeros((2,), jnp.float32)

    def _state_obs(self, data: mjx.Data) -> jax.Array:
        return jnp.concatenate([data.qpos, data.qvel]).astype(jnp.float32)
