"""Point-maze physics and episode semantics, the registry, and the auto-reset wrapper (real MJX, CPU)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import crl.envs
from crl.envs import make, registered_envs
from crl.envs.wrappers import AutoReset
from crl.errors import ConfigError, LayoutError


def _rollout(env, state, actions):
    def body(s, a):
        s = env.step(s, a)
        return s, (s.obs, s.done, s.truncation, s.metrics["success"], s.step, s.episode_id)

    return jax.lax.scan(body, state, actions)


def test_registry_names_and_spec() -> None:
    names = registered_envs()
    for layout in ("u", "u2", "u3", "u4", "u5", "u6", "u7", "big", "hardest"):
        assert f"point_{layout}_maze" in names
    env = make("point_u_maze", episode_length=100)
    spec = env.spec
    assert (spec.observation_size, spec.state_size, spec.goal_size, spec.action_size) == (6, 4, 2, 2)
    assert spec.goal_indices == (0, 1) and spec.episode_length == 100 and env.episode_length == 100
    assert spec.config["episode_length"] == 100 and spec.config["layout"] == "u"
    assert spec.gym_id == "crl/PointUMaze-v0"
    assert type(spec).from_dict(spec.to_dict()) == spec
    assert spec.layout_text == env.maze.to_text()
    with pytest.raises(ConfigError, match="unknown environment"):
        make("point_nowhere_maze")
    with pytest.raises(ConfigError, match="unknown env option"):
        make("point_u_maze", episode_lenght=5)


def test_custom_layout_file(tmp_path: Path) -> None:
    path = tmp_path / "corridor.txt"
    path.write_text("######\n#S..G#\n######\n")
    env = make("point_maze", layout=str(path))
    assert env.spec.name == "point_maze" and env.spec.layout == str(path) and env.spec.gym_id is None
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert np.allclose(state.goal, [4.0, 16.0])
    bad = tmp_path / "bad.txt"
    bad.write_text("####\n#SQ#\n####\n")
    with pytest.raises(LayoutError, match="line 2, column 3"):
        make("point_maze", layout=str(bad))


def test_env_from_spec_rebuilds_the_maze_from_its_text(tmp_path: Path) -> None:
    path = tmp_path / "corridor.txt"
    path.write_text("######\n#S..G#\n######\n")
    spec = make("point_maze", layout=str(path), episode_length=77).spec.to_dict()
    path.unlink()  # the file is gone (another machine): the spec's text still rebuilds the maze
    env = crl.envs.env_from_spec(spec)
    assert env.maze.rows == ("######", "#S..G#", "######") and env.episode_length == 77
    assert crl.envs.maze_from_spec(spec).cell_size == 4.0
    # a built-in keeps its name; a spec written before layout_text existed resolves `u4` as it meant then (the 5x5 U)
    assert crl.envs.env_from_spec(make("point_u4_maze").spec).spec.name == "point_u4_maze"
    old = make("point_u_maze").spec.to_dict()
    old.pop("layout_text")
    old.update(name="point_u4_maze", layout="u4", config={**old["config"], "layout": "u4"})
    assert crl.envs.env_from_spec(old).maze.rows == make("point_u_maze").maze.rows
    with pytest.raises(ConfigError, match="not a crl maze env"):
        crl.envs.maze_from_spec({"name": "pointmaze-medium", "family": "ogbench", "layout": "unknown"})


def test_task_env_from_spec_has_one_goal_per_episode() -> None:
    """A navigate dataset's (or collector's) spec records new_goal_on_success; evaluations rebuild the task."""
    spec = make("point_u_maze", new_goal_on_success=True, episode_length=90).spec.to_dict()
    assert spec["config"]["new_goal_on_success"] is True
    assert crl.envs.env_from_spec(spec).spec.to_dict()["config"]["new_goal_on_success"] is True
    task = crl.envs.task_env_from_spec(spec)
    assert task.spec.to_dict()["config"]["new_goal_on_success"] is False and task.episode_length == 90
    assert crl.envs.task_env_from_spec(spec, new_goal_on_success=True).spec.to_dict()["config"]["new_goal_on_success"]


def test_walls_block_a_point_pushed_into_them() -> None:
    env = make("point_u_maze", start_jitter=0.0)
    run = jax.jit(lambda actions: _rollout(env, env.reset(jax.random.PRNGKey(0)), actions)[1][0])
    # start cell (1, 1) is centred at (4, 4); push +x (down the rows): cell (2, 1) is a wall, face at x = 6
    obs = run(jnp.tile(jnp.array([1.0, 0.0]), (60, 1)))
    x = np.asarray(obs[:, 0])
    assert x.max() < 6.0  # the ball (radius 0.4) never crosses the wall face
    assert x[-1] > 5.0  # ... but it did travel up to the wall
    # push -y: cell (1, 0) is a wall whose face is at y = 2
    obs = run(jnp.tile(jnp.array([0.0, -1.0]), (60, 1)))
    assert np.asarray(obs[:, 1]).min() > 2.0 and np.asarray(obs[-1, 1]) < 3.0


def test_determinism_and_truncation() -> None:
    env = make("point_big_maze", episode_length=20, start_jitter=0.5, goal_jitter=0.5)
    actions = jax.random.uniform(jax.random.PRNGKey(3), (25, 2), minval=-1, maxval=1)
    run = jax.jit(lambda k: _rollout(env, env.reset(k), actions))
    a, b = run(jax.random.PRNGKey(7)), run(jax.random.PRNGKey(7))
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    c = run(jax.random.PRNGKey(8))
    assert not np.array_equal(a[1][0], c[1][0])
    _, (obs, done, trunc, _, step, _) = a
    assert np.array_equal(np.asarray(done)[:19], np.zeros(19)) and float(done[19]) == 1.0
    assert float(trunc[19]) == 1.0 and int(step[19]) == 20
    assert not np.isnan(np.asarray(obs)).any()


def test_new_goal_on_success_continues_the_episode() -> None:
    env = make("point_u_maze", new_goal_on_success=True, goal_jitter=0.2)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    goal = state.goal
    # start the agent on its goal: the first step succeeds, so the goal is re-sampled and the episode goes on
    state = state.replace(data=state.data.replace(qpos=goal))
    after = jax.jit(env.step)(state, jnp.zeros(2))
    assert float(after.metrics["success"]) == 1.0 and float(after.done) == 0.0
    assert not np.allclose(after.goal, goal)
    assert np.allclose(after.obs[env.state_size:], after.goal)


def test_auto_reset_semantics() -> None:
    n = 3
    env = AutoReset(make("point_u_maze", episode_length=4), n)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert state.obs.shape == (n, 6) and state.episode_id.tolist() == [0, 1, 2]
    step = jax.jit(env.step)
    ids, obs_seen = [], []
    for _ in range(9):
        before = state
        state = step(state, jnp.ones((n, 2)))
        ids.append(np.asarray(state.episode_id))
        if float(state.done[0]) == 1.0:
            # the final observation is the pre-reset s_{t+1}; the state itself is the new episode's start
            assert not np.allclose(state.info["final_obs"], state.obs)
            assert np.allclose(state.info["final_qpos"], state.info["final_obs"][:, :2])
            assert np.all(np.asarray(state.step) == 0) and float(state.truncation[0]) == 1.0
            assert np.all(np.linalg.norm(state.obs[:, :2] - before.obs[:, :2], axis=1) > 0)
        else:
            assert np.allclose(state.info["final_obs"], state.obs)
        obs_seen.append(np.asarray(state.obs))
    assert ids[2].tolist() == [0, 1, 2] and ids[3].tolist() == [3, 4, 5] and ids[7].tolist() == [6, 7, 8]
    assert crl.envs.make is make
    assert env.maze is env.env.maze and env.family == "point"  # the wrapper delegates the rest to the env
