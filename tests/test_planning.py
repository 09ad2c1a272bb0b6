"""Test-time planning over waypoints (crl.planning): on a U-shaped corridor whose distance saturates a few steps out
(as a Monte Carlo contrastive critic's does), acting towards the goal runs into the wall, and the planner walks the
U; a run's critic plugs in through `from_agent`; `crl-eval goals --plan-waypoints` refuses what it cannot plan."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from crl.agent import CRLAgent
from crl.config import AgentConfig
from crl.errors import ConfigError
from crl.planning import WaypointPlanner

SATURATION = 1.5
"""The toy critic knows distances up to this; anything farther looks the same."""


def along_u(p: jnp.ndarray) -> jnp.ndarray:
    """Arc length of the nearest point of the U (left arm x=0, bottom y=0, right arm x=4; arms 4 high): 0 at the
    top of the left arm, 12 at the top of the right arm."""
    x, y = p[..., 0], p[..., 1]
    arm = jnp.argmin(jnp.stack([jnp.abs(x), jnp.abs(y), jnp.abs(x - 4.0)]), axis=0)  # the nearest segment
    return jnp.choose(arm, [4.0 - y, 4.0 + x, 8.0 + y], mode="clip")


def saturated_distance(s: jnp.ndarray, g: jnp.ndarray) -> jnp.ndarray:
    """Geodesic distance along the U, clipped at SATURATION."""
    return jnp.minimum(jnp.abs(along_u(s) - along_u(g)), SATURATION)


def toward(x: jnp.ndarray) -> jnp.ndarray:
    """The goal-conditioned 'actor': a unit step from the state towards the goal (concat(state, goal))."""
    d = x[:, 2:] - x[:, :2]
    return d / (jnp.linalg.norm(d, axis=-1, keepdims=True) + 1e-6)


def corridor_points(n: int) -> np.ndarray:
    t = np.linspace(0.0, 12.0, n)
    return np.stack([np.where(t < 4, 0.0, np.where(t < 8, t - 4, 4.0)),
                     np.where(t < 4, 4 - t, np.where(t < 8, 0.0, t - 8))], axis=1).astype(np.float32)


def walk(act, start: np.ndarray, goal: np.ndarray, steps: int = 400, speed: float = 0.1) -> np.ndarray:
    """Move a point by act's unit steps; a step that would leave the U (0.3 wide) is refused (the wall)."""
    p = start.copy()
    for _ in range(steps):
        q = p + speed * np.asarray(act(p[None], goal[None], [None]))[0]
        inside = q[0] <= 0.3 or q[0] >= 3.7 or q[1] <= 0.3
        if inside and -0.3 <= q[0] <= 4.3 and -0.3 <= q[1] <= 4.3:
            p = q
        if np.linalg.norm(p - goal) < 0.2:
            break
    return p


def test_planner_walks_the_u_where_the_saturated_critic_alone_hits_the_wall() -> None:
    start, goal = np.array([0.0, 4.0], np.float32), np.array([4.0, 4.0], np.float32)
    direct = walk(lambda s, g, envs: np.asarray(toward(jnp.concatenate([jnp.asarray(s), jnp.asarray(g)], 1))),
                  start, goal)
    assert np.linalg.norm(direct - goal) > 3.0  # straight at the goal: stuck at the top of the left arm
    planner = WaypointPlanner(saturated_distance, lambda g: g, toward, corridor_points(121), [0, 1])
    assert planner.unreachable == 0.0 and 0 < planner.local < SATURATION
    assert planner.reach == pytest.approx(0.1, rel=1e-3)  # the waypoints' spacing in the goal encoding
    togo = planner.cost_to_go(goal)
    assert togo[0] == pytest.approx(12.0, abs=0.3)  # the path around the U, not the saturated 1.5
    reached = walk(planner, start, goal)
    assert np.linalg.norm(reached - goal) < 0.2
    planner.reset(0)
    assert planner.slots == {}


def test_planning_needs_a_distance_and_enough_waypoints() -> None:
    agent = CRLAgent(AgentConfig(depth=4, width=16, repr_dim=8, energy="dot"), state_size=2, action_size=2,
                     goal_size=2)
    import jax

    params = agent.init(jax.random.PRNGKey(0)).params
    with pytest.raises(ConfigError, match="distance"):
        WaypointPlanner.from_agent(agent, params, corridor_points(20), [0, 1])
    with pytest.raises(ConfigError, match="more waypoints"):
        WaypointPlanner(saturated_distance, lambda g: g, toward, corridor_points(5), [0, 1])
    l2 = CRLAgent(AgentConfig(depth=4, width=16, repr_dim=8), state_size=2, action_size=2, goal_size=2)
    planner = WaypointPlanner.from_agent(l2, l2.init(jax.random.PRNGKey(0)).params, corridor_points(20), [0, 1])
    actions = planner(corridor_points(3), corridor_points(3)[::-1], [None] * 3)
    assert actions.shape == (3, 2) and np.all(np.abs(actions) <= 1.0)
    assert set(planner.info()) >= {"waypoints", "neighbours", "local_distance", "unreachable_pairs"}
