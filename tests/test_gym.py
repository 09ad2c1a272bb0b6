"""The Gymnasium wrapper: registered ids, gymnasium's own env checker, numpy Dict observations."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import crl.envs


def test_ids_registered() -> None:
    for gid in ("crl/PointUMaze-v0", "crl/PointU5Maze-v0", "crl/PointBigMaze-v0", "crl/PointHardestMaze-v0"):
        assert gid in gymnasium.registry
    assert set(crl.envs.GYM_IDS) >= {"crl/PointUMaze-v0"}


def test_check_env_and_episode() -> None:
    env = gymnasium.make("crl/PointUMaze-v0", episode_length=50)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
    # goal-env convention: observation is the state part (4 columns), the goal only in desired_goal
    assert env.observation_space["observation"].shape == (env.unwrapped.env.spec.state_size,) == (4,)
    assert obs["observation"].dtype == np.float32 and obs["observation"].shape == (4,)
    assert np.allclose(obs["achieved_goal"], obs["observation"][:2])
    flat = np.asarray(env.unwrapped.mjx_state.obs)  # the MJX env's concat(state part, goal)
    np.testing.assert_array_equal(np.concatenate([obs["observation"], obs["desired_goal"]]), flat)
    again, _ = env.reset(seed=3)
    assert np.array_equal(obs["observation"], again["observation"])
    steps, truncated = 0, False
    while not truncated and steps < 60:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated
        steps += 1
    assert truncated and steps == 50
    assert {"success", "dist"} <= set(info)
    reward = env.unwrapped.compute_reward(obs["desired_goal"], obs["desired_goal"], info)
    assert reward == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("gid", ["crl/AntUMaze-v0", "crl/HumanoidUMaze-v0"])
def test_check_env_ant_humanoid(gid: str) -> None:
    env = gymnasium.make(gid)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    goal_size = 3 if "Humanoid" in gid else 2
    assert obs["desired_goal"].shape == (goal_size,) and env.observation_space.contains(obs)
