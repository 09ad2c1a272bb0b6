"""Every registered env: jit reset and step, shapes match the declared sizes, no NaN over a short rollout.

Point envs and the u4 ant / humanoid run by default; the other ant / humanoid layouts are marked slow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crl.envs import make, registered_envs

STEPS = 5


def _params() -> list:
    out = []
    for name in registered_envs():
        cheap = name.startswith("point_") or name.endswith("_u4_maze")
        out.append(pytest.param(name, marks=() if cheap else pytest.mark.slow))
    return out


def test_every_family_and_layout_registered() -> None:
    names = set(registered_envs())
    for family in ("point", "ant", "humanoid"):
        for layout in ("u4", "u5", "big", "hardest"):
            assert f"{family}_{layout}_maze" in names


@pytest.mark.parametrize("name", _params())
def test_jit_reset_step_shapes_no_nan(name: str) -> None:
    env = make(name)
    spec = env.spec
    assert spec.name == name and spec.observation_size == spec.state_size + spec.goal_size
    assert (env.observation_size, env.action_size, env.goal_size) == (
        spec.observation_size, spec.action_size, spec.goal_size)

    @jax.jit
    def rollout(key: jax.Array):
        k_reset, k_act = jax.random.split(key)
        state = jax.vmap(env.reset)(jax.random.split(k_reset, 2))
        actions = jax.random.uniform(k_act, (STEPS, 2, spec.action_size), minval=-1.0, maxval=1.0)

        def body(s, a):
            s = jax.vmap(env.step)(s, a)
            return s, (s.obs, s.reward, s.done, s.metrics["dist"])

        return state, jax.lax.scan(body, state, actions)

    first, (last, (obs, reward, done, dist)) = rollout(jax.random.PRNGKey(0))
    for state in (first, last):
        assert state.obs.shape == (2, spec.observation_size) and state.obs.dtype == jnp.float32
        assert state.goal.shape == (2, spec.goal_size)
        assert np.allclose(state.obs[:, spec.state_size:], state.goal)
        achieved = np.asarray(state.obs)[:, list(spec.goal_indices)]
        assert np.allclose(np.linalg.norm(achieved - np.asarray(state.goal), axis=1), state.metrics["dist"], atol=1e-4)
        assert state.data.qpos.shape == (2, spec.nq) and state.data.qvel.shape == (2, spec.nv)
        assert set(state.metrics) >= {"dist", "success"}
    assert obs.shape == (STEPS, 2, spec.observation_size)
    assert reward.shape == done.shape == (STEPS, 2)
    assert last.step.tolist() == [STEPS, STEPS]
    for arr in (obs, reward, dist):
        assert not np.isnan(np.asarray(arr)).any()
    # the agent moved: physics ran
    assert not np.allclose(first.obs[:, : spec.state_size], last.obs[:, : spec.state_size])
    # goals come from goal cells (+ jitter), starts from start cells (+ jitter)
    maze, cfg = env.maze, spec.config
    goal_cells = {maze.xy_to_cell(g[:2]) for g in np.asarray(first.goal)}
    assert goal_cells <= set(maze.goal_cells())
    start_cells = {maze.xy_to_cell(o[list(spec.goal_indices[:2])]) for o in np.asarray(first.obs)}
    assert start_cells <= set(maze.start_cells())
    if spec.family == "humanoid":
        assert np.allclose(np.asarray(first.goal)[:, 2], 1.25) and cfg["cell_size"] == 2.0
    else:
        assert cfg["cell_size"] == 4.0
