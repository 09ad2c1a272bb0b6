"""The scripted BFS-waypoint controller solves point mazes from their start cells (real MJX physics)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crl.envs import make
from crl.envs.oracle import oracle_action, waypoint
from crl.errors import ConfigError


def _success_rate(name: str, n: int, steps: int, noise_std: float, seed: int = 0) -> float:
    env = make(name, start_jitter=0.5, goal_jitter=0.5)

    @jax.jit
    def run(key: jax.Array) -> jax.Array:
        k_reset, k_act = jax.random.split(key)
        state = jax.vmap(env.reset)(jax.random.split(k_reset, n))

        def body(s, k):
            s = jax.vmap(env.step)(s, oracle_action(env, s, k, noise_std))
            return s, s.metrics["success"]

        _, success = jax.lax.scan(body, state, jax.random.split(k_act, steps))
        return success.max(axis=0)  # reached the goal at some step

    return float(run(jax.random.PRNGKey(seed)).mean())


@pytest.mark.parametrize("name", ["point_u_maze", "point_big_maze"])
def test_oracle_solves_point_mazes(name: str) -> None:
    assert _success_rate(name, n=32, steps=300, noise_std=0.1) >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("name", ["point_u5_maze", "point_hardest_maze"])
def test_oracle_solves_larger_mazes(name: str) -> None:
    assert _success_rate(name, n=64, steps=500, noise_std=0.2) >= 0.9


def test_waypoint_follows_the_corridor() -> None:
    env = make("point_u_maze")
    # from the start cell (1, 1) to the far end (3, 1): the next waypoint is cell (1, 2)'s centre, not through the wall
    wp = waypoint(env, jnp.array([4.0, 4.0]), jnp.array([12.0, 4.0]))
    assert np.allclose(wp, [4.0, 8.0])
    # in the goal's cell the waypoint is the goal itself; batched inputs broadcast
    wp = waypoint(env, jnp.array([[12.5, 3.0], [4.0, 12.0]]), jnp.array([[12.0, 4.0], [12.0, 4.0]]))
    assert np.allclose(wp, [[12.0, 4.0], [8.0, 12.0]])
    obs = jnp.zeros((6,))
    assert oracle_action(env, obs).shape == (2,)
    with pytest.raises(ConfigError, match="key"):
        oracle_action(env, obs, None, 0.5)
