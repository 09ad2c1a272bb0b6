"""The agent's update: the entropy temperature is trained (and logged) only for the actor that has an entropy term."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crl.agent import CRLAgent
from crl.config import AgentConfig
from crl.relabel import Batch


def _batch(key: jax.Array, n: int = 8) -> Batch:
    ks = jax.random.split(key, 3)
    return Batch(state=jax.random.normal(ks[0], (n, 4)), action=jnp.tanh(jax.random.normal(ks[1], (n, 2))),
                 goal=jax.random.normal(ks[2], (n, 2)))


def test_ddpg_bc_leaves_alpha_alone_and_unlogged_the_online_actor_trains_it() -> None:
    agent = CRLAgent(AgentConfig(depth=4, width=16, repr_dim=8), state_size=4, action_size=2, goal_size=2)
    st = agent.init(jax.random.PRNGKey(0))
    batch = _batch(jax.random.PRNGKey(1))
    bc_state, bc_metrics = agent.update(st, batch, jax.random.PRNGKey(2), bc_alpha=0.1)
    assert "alpha" not in bc_metrics and "actor/loss" in bc_metrics
    np.testing.assert_array_equal(bc_state.params.log_alpha, st.params.log_alpha)
    online_state, online_metrics = agent.update(st, batch, jax.random.PRNGKey(2))
    assert "alpha" in online_metrics
    assert float(online_state.params.log_alpha) != float(st.params.log_alpha)


@pytest.mark.parametrize("energy", ["mrn", "iqe"])
def test_quasimetric_critics_learn_a_fixed_batch(energy: str) -> None:
    """The quasimetric energies plug into the same update: repeated steps on one batch raise the critic's accuracy
    and lower its loss (gradients reach both encoders through the max / interval-merge operations)."""
    agent = CRLAgent(AgentConfig(depth=4, width=32, repr_dim=16, energy=energy), state_size=4, action_size=2,
                     goal_size=2)
    st = agent.init(jax.random.PRNGKey(0))
    batch = _batch(jax.random.PRNGKey(1), n=16)
    step = jax.jit(lambda s, k: agent.update(s, batch, k, bc_alpha=0.1))
    first = None
    for i in range(60):
        st, m = step(st, jax.random.PRNGKey(10 + i))
        first = first or (float(m["critic/loss"]), float(m["critic/accuracy"]))
    assert np.isfinite(float(m["critic/loss"]))
    assert float(m["critic/loss"]) < first[0] - 0.5 and float(m["critic/accuracy"]) > first[1]
