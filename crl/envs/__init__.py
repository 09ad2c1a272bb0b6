"""Goal-conditioned MJX maze environments (point, ant, humanoid) and the maze geometry they share.

`make(name, **overrides)` builds an env, `registered_envs()` lists the names; importing this package registers the
Gymnasium ids (`crl/PointUMaze-v0`, ...). The functional contract (State, EnvSpec) is in `crl.envs.base`.
"""

from __future__ import annotations

import contextlib as _contextlib
import io as _io

# mujoco.mjx prints "Failed to import warp" to stdout when the optional GPU backend is absent; keep stdout clean
# for CLIs whose output is parsed (e.g. `crl-data show --json`).
with _contextlib.redirect_stdout(_io.StringIO()):
    from mujoco import mjx as _mjx  # noqa: F401

from crl.envs.base import EnvSpec, State, achieved_goal
from crl.envs.config import MazeEnvConfig, default_config
from crl.envs.gym_wrapper import GymMazeEnv, register_gym_envs
from crl.envs.registry import (
    env_from_spec,
    gym_id,
    make,
    maze_from_spec,
    registered_envs,
    spec_layout_text,
    task_env_from_spec,
)

GYM_IDS = register_gym_envs()

__all__ = [
    "EnvSpec", "GYM_IDS", "GymMazeEnv", "MazeEnvConfig", "State", "achieved_goal", "default_config", "gym_id",
    "env_from_spec", "make", "maze_from_spec", "registered_envs", "spec_layout_text", "task_env_from_spec",
]
