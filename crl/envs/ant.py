"""Ant maze: a four-legged ant (8 hinge motors) in a maze with cell size 4; goal = torso (x, y).

Own MJCF with the classic ant proportions (torso sphere r 0.25, legs of 0.2 + 0.2 + 0.4 capsules, gear 150,
timestep 0.01, 5 substeps) as in JaxGCRL. Collisions only where needed: the four foot spheres touch the floor, and
the torso and feet touch the walls (collision bit 1: floor, bit 2: walls), so the contact pass is sphere-plane and
sphere-box only. Observation state part: qpos (15) then qvel (14) = 29 (JaxGCRL's ant maze layout).
Unhealthy (episode terminates): torso z outside `healthy_z_range` (0.2, 1.0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from crl.envs.maze_env import MazeEnv
from crl.envs.mjcf import wall_geoms_xml

# (name, leg direction in the torso frame)
_LEGS = (("front_left", (1, 1)), ("front_right", (-1, 1)), ("back_right", (-1, -1)), ("back_left", (1, -1)))
INIT_Z = 0.55
INIT_ANKLE = 1.0  # rad, inside the ankle range [30, 70] degrees


def _leg_xml(i: int, name: str, d: tuple[int, int]) -> str:
    dx, dy = d
    hip, shin, foot = (0.2 * dx, 0.2 * dy), (0.2 * dx, 0.2 * dy), (0.4 * dx, 0.4 * dy)
    return f"""
      <body name="{name}_hip" pos="0 0 0">
        <geom type="capsule" fromto="0 0 0 {hip[0]:g} {hip[1]:g} 0" size="0.08"/>
        <body name="{name}_thigh" pos="{hip[0]:g} {hip[1]:g} 0">
          <joint name="hip_{i}" type="hinge" axis="0 0 1" range="-30 30"/>
          <geom type="capsule" fromto="0 0 0 {shin[0]:g} {shin[1]:g} 0" size="0.08"/>
          <body name="{name}_shin" pos="{shin[0]:g} {shin[1]:g} 0">
            <joint name="ankle_{i}" type="hinge" axis="{-dy} {dx} 0" range="30 70"/>
            <geom type="capsule" fromto="0 0 0 {foot[0]:g} {foot[1]:g} 0" size="0.08"/>
            <geom name="{name}_foot" type="sphere" pos="{foot[0]:g} {foot[1]:g} 0" size="0.08" mass="0"
                  contype="3"/>
          </body>
        </body>
      </body>"""


def ant_xml(maze_xml_walls: str, start_xy: tuple[float, float]) -> str:
    """The ant world: floor, walls, ant with torso at `start_xy`."""
    legs = "".join(_leg_xml(i + 1, n, d) for i, (n, d) in enumerate(_LEGS))
    motors = "\n    ".join(
        f'<motor joint="{j}_{i}" gear="150" ctrlrange="-1 1"/>' for i in range(1, 5) for j in ("hip", "ankle")
    )
    init_q = " ".join(["0", str(INIT_ANKLE)] * 4)
    return f"""
<mujoco model="ant_maze">
  <compiler angle="degree" autolimits="true"/>
  <default>
    <joint armature="1" damping="1"/>
    <geom contype="0" conaffinity="0" condim="3" density="5" friction="1 0.5 0.5" rgba="0.8 0.6 0.4 1"/>
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="0 0 0.1" conaffinity="1" rgba="0.9 0.9 0.9 1"/>
    {maze_xml_walls}
    <body name="torso" pos="{start_xy[0]:g} {start_xy[1]:g} 0.75">
      <joint name="root" type="free" armature="0" damping="0" limited="false"/>
      <geom name="torso" type="sphere" size="0.25" contype="3"/>{legs}
    </body>
  </worldbody>
  <actuator>
    {motors}
  </actuator>
  <keyframe>
    <key name="home" qpos="{start_xy[0]:g} {start_xy[1]:g} {INIT_Z} 1 0 0 0 {init_q}"/>
  </keyframe>
</mujoco>
"""


class AntMaze(MazeEnv):
    """Ant in a maze (see module docstring)."""

    family = "ant"
    goal_indices = (0, 1)

    def _xml(self) -> str:
        walls = wall_geoms_xml(self.maze, height=0.5 * self.maze.cell_size, conaffinity=2)
        start = tuple(float(v) for v in self.maze.cell_to_xy(self.maze.start_cells()[0]))
        return ant_xml(walls, start)

    def _init_qpos_qvel(self, key: jax.Array, start_xy: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_q, k_v = jax.random.split(key)
        noise = self.config.reset_noise_scale
        q0 = jnp.asarray(np.asarray(self.mj_model.key_qpos[0]), jnp.float32)
        qpos = q0 + jax.random.uniform(k_q, q0.shape, minval=-noise, maxval=noise)
        qpos = qpos.at[:2].set(start_xy)
        quat = qpos[3:7]
        qpos = qpos.at[3:7].set(quat / jnp.linalg.norm(quat))
        qvel = noise * jax.random.normal(k_v, (self.mj_model.nv,))
        return qpos, qvel

    def _state_obs(self, data: mjx.Data) -> jax.Array:
        return jnp.concatenate([data.qpos, data.qvel]).astype(jnp.float32)

    def _is_healthy(self, data: mjx.Data) -> jax.Array:
        lo, hi = self.config.healthy_z_range
        z = data.qpos[2]
        return ((z >= lo) & (z <= hi)).astype(jnp.float32)


