"""Humanoid maze: a 17-motor humanoid in a maze with cell size 2; goal = torso (x, y, z) with target z 1.25.

Own MJCF with the classic MuJoCo humanoid proportions (torso, head, waist, pelvis, legs, arms; timestep 0.003,
5 substeps) as in JaxGCRL. Collisions only where needed: the foot spheres touch the floor; torso, head, pelvis,
shins, feet and hands touch the walls (collision bit 1: floor, bit 2: walls); no self-collision.
Observation state part (278 values): qpos (24), qvel (23), the body inertias about the centre of mass
`cinert` (13 bodies x 10), the body velocities `cvel` (13 x 6) and the actuator forces `qfrc_actuator` (23),
the MJX equivalents of JaxGCRL's humanoid maze observation. Unhealthy: torso z outside (1.0, 2.0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from crl.envs.maze_env import MazeEnv
from crl.envs.mjcf import wall_geoms_xml

TARGET_Z = 1.25
_WALL = 'contype="2"'


def _leg(side: str, s: int) -> str:
    """s = -1 for the right side (negative y), +1 for the left."""
    return f"""
        <body name="{side}_thigh" pos="0 {0.1 * s:g} -0.04">
          <joint name="{side}_hip_x" axis="{-s} 0 0" range="-25 5" class="big"/>
          <joint name="{side}_hip_z" axis="0 0 {-s}" range="-60 35" class="big"/>
          <joint name="{side}_hip_y" axis="0 1 0" range="-110 20" class="big" stiffness="20" armature="0.008"/>
          <geom type="capsule" fromto="0 0 0 0 {-0.01 * s:g} -0.34" size="0.06"/>
          <body name="{side}_shin" pos="0 {-0.01 * s:g} -0.403">
            <joint name="{side}_knee" pos="0 0 0.02" axis="0 -1 0" range="-160 -2" armature="0.006"/>
            <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.049" {_WALL}/>
            <body name="{side}_foot" pos="0 0 -0.45">
              <geom name="{side}_foot" type="sphere" pos="0 0 0.1" size="0.075" contype="3"/>
            </body>
          </body>
        </body>"""


def _arm(side: str, s: int) -> str:
    return f"""
      <body name="{side}_upper_arm" pos="0 {0.17 * s:g} 0.06">
        <joint name="{side}_shoulder1" axis="2 {-s} 1" range="-85 60" armature="0.0068"/>
        <joint name="{side}_shoulder2" axis="0 {s} 1" range="-85 60" armature="0.0051"/>
        <geom type="capsule" fromto="0 0 0 0.16 {0.16 * s:g} -0.16" size="0.04"/>
        <body name="{side}_lower_arm" pos="0.18 {0.18 * s:g} -0.18">
          <joint name="{side}_elbow" axis="0 {s} 1" range="-90 50" armature="0.0028"/>
          <geom type="capsule" fromto="0.01 {0.01 * s:g} 0.01 0.17 {0.17 * s:g} 0.17" size="0.031"/>
          <geom name="{side}_hand" type="sphere" pos="0.18 {0.18 * s:g} 0.18" size="0.04" {_WALL}/>
        </body>
      </body>"""


_MOTORS = (
    ("abdomen_y", 100), ("abdomen_z", 100), ("abdomen_x", 100),
    ("right_hip_x", 100), ("right_hip_z", 100), ("right_hip_y", 300), ("right_knee", 200),
    ("left_hip_x", 100), ("left_hip_z", 100), ("left_hip_y", 300), ("left_knee", 200),
    ("right_shoulder1", 25), ("right_shoulder2", 25), ("right_elbow", 25),
    ("left_shoulder1", 25), ("left_shoulder2", 25), ("left_elbow", 25),
)


def humanoid_xml(walls: str, start_xy: tuple[float, float]) -> str:
    """The humanoid world: floor, walls, humanoid standing with its torso at `start_xy`, height 1.4."""
    motors = "\n    ".join(f'<motor joint="{j}" gear="{g}" ctrlrange="-0.4 0.4"/>' for j, g in _MOTORS)
    legs = _leg("right", -1) + _leg("left", 1)
    return f"""
<mujoco model="humanoid_maze">
  <compiler angle="degree" autolimits="true"/>
  <default>
    <joint type="hinge" damping="5" stiffness="10" armature="0.02" limited="true"/>
    <geom contype="0" conaffinity="0" condim="3" friction="0.7 0.1 0.1" rgba="0.8 0.6 0.4 1"/>
    <default class="big">
      <joint damping="5" stiffness="10"/>
    </default>
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="0 0 0.1" conaffinity="1" rgba="0.9 0.9 0.9 1"/>
    {walls}
    <body name="torso" pos="{start_xy[0]:g} {start_xy[1]:g} 1.4">
      <joint name="root" type="free" armature="0" damping="0" stiffness="0" limited="false"/>
      <geom name="torso" type="capsule" fromto="0 -0.07 0 0 0.07 0" size="0.07" {_WALL}/>
      <geom name="head" type="sphere" pos="0 0 0.19" size="0.09" {_WALL}/>
      <geom name="uwaist" type="capsule" fromto="-0.01 -0.06 -0.12 -0.01 0.06 -0.12" size="0.06"/>
      <body name="lwaist" pos="-0.01 0 -0.26">
        <geom type="capsule" fromto="0 -0.06 0 0 0.06 0" size="0.06"/>
        <joint name="abdomen_z" pos="0 0 0.065" axis="0 0 1" range="-45 45" stiffness="20"/>
        <joint name="abdomen_y" pos="0 0 0.065" axis="0 1 0" range="-75 30"/>
        <body name="pelvis" pos="0 0 -0.165">
          <joint name="abdomen_x" pos="0 0 0.1" axis="1 0 0" range="-35 35"/>
          <geom name="butt" type="capsule" fromto="-0.02 -0.07 0 -0.02 0.07 0" size="0.09" {_WALL}/>{legs}
        </body>
      </body>{_arm("right", -1)}{_arm("left", 1)}
    </body>
  </worldbody>
  <actuator>
    {motors}
  </actuator>
</mujoco>
"""


class HumanoidMaze(MazeEnv):
    """Humanoid in a maze (see module docstring)."""

    family = "humanoid"
    goal_indices = (0, 1, 2)

    def _xml(self) -> str:
        walls = wall_geoms_xml(self.maze, height=0.5 * self.maze.cell_size, conaffinity=2)
        start = tuple(float(v) for v in self.maze.cell_to_xy(self.maze.start_cells()[0]))
        return humanoid_xml(walls, start)

    def goal_from_xy(self, xy: jax.Array) -> jax.Array:
        return jnp.concatenate([xy, jnp.full((1,), TARGET_Z, xy.dtype)])

    def _init_qpos_qvel(self, key: jax.Array, start_xy: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_q, k_v = jax.random.split(key)
        noise = self.config.reset_noise_scale
        q0 = jnp.asarray(np.asarray(self.mj_model.qpos0), jnp.float32)
        qpos = q0 + jax.random.uniform(k_q, q0.shape, minval=-noise, maxval=noise)
        qpos = qpos.at[:2].set(start_xy)
        qpos = qpos.at[3:7].set(qpos[3:7] / jnp.linalg.norm(qpos[3:7]))
        qvel = jax.random.uniform(k_v, (self.mj_model.nv,), minval=-noise, maxval=noise)
        return qpos, qvel

    def _state_obs(self, data: mjx.Data) -> jax.Array:
        impl = getattr(data, "_impl", data)  # mjx 3.17 keeps cinert on the JAX implementation's data
        return jnp.concatenate(
            [data.qpos, data.qvel, impl.cinert[1:].ravel(), data.cvel[1:].ravel(), data.qfrc_actuator]
        ).astype(jnp.float32)

    def _is_healthy(self, data: mjx.Data) -> jax.Array:
        lo, hi = self.config.healthy_z_range
        z = data.qpos[2]
        return ((z >= lo) & (z <= hi)).astype(jnp.float32)
