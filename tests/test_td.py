"""The temporal-difference contrastive critic (AgentConfig.critic_loss 'td'): its loss, the next transition the
loader hands it, its target critic, and where it is refused."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_loader import DISCOUNT, draw, write

from crl.agent import CRLAgent
from crl.config import AgentConfig, LearnerConfig, TrainConfig
from crl.datasets import DatasetStore
from crl.datasets.loader import WindowStream
from crl.errors import ConfigError
from crl.losses import infonce_loss, td_infonce_loss
from crl.relabel import Batch


def test_td_loss_is_the_next_state_infonce_plus_a_cross_entropy_to_the_targets_soft_labels() -> None:
    ks = jax.random.split(jax.random.PRNGKey(0), 3)
    nxt, goal, target = (jax.random.normal(k, (6, 6)) for k in ks)
    gamma = 0.9
    # no row bootstraps: only the (1 - gamma) next-state InfoNCE (and the penalty) is left
    loss, m = td_infonce_loss(nxt, goal, target, jnp.zeros(6), gamma, logsumexp_penalty=0.0)
    np.testing.assert_allclose(loss, (1 - gamma) * infonce_loss(nxt, 0.0)[0], rtol=1e-6)
    # every row bootstraps: the goal term is minimal when the critic's goal logits match the target's softmax
    at_target = td_infonce_loss(nxt, target, target, jnp.ones(6), gamma, 0.0)[1]["critic/goal_loss"]
    elsewhere = td_infonce_loss(nxt, goal, target, jnp.ones(6), gamma, 0.0)[1]["critic/goal_loss"]
    labels = jax.nn.softmax(target, axis=1)
    entropy = -jnp.mean(jnp.sum(labels * jnp.log(labels), axis=1))
    np.testing.assert_allclose(at_target, entropy, rtol=1e-5)
    assert float(elsewhere) > float(at_target)
    # the labels are constants: no gradient reaches the target logits
    grad = jax.grad(lambda t: td_infonce_loss(nxt, goal, t, jnp.ones(6), gamma)[0])(target)
    np.testing.assert_array_equal(grad, 0.0)


def test_window_batches_carry_the_next_transition_of_the_same_episode(data_root: Path) -> None:
    store = DatasetStore()
    lengths = [7, 12, 3, 20]
    did = write(store, "test/td", lengths)
    window, _ = next(WindowStream(store.open(did)).windows())
    b = draw(window, 2000, 40, transitions=True)
    step, ep = b.state[:, 0], b.state[:, 1]  # marked rows: state (step, episode), action (episode, step)
    last = np.asarray(lengths)[ep.astype(int)] - 1
    inside = step < last
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(b.next_valid, inside.astype(np.float32))
    np.testing.assert_array_equal(b.next_state[inside, 0], step[inside] + 1)
    np.testing.assert_array_equal(b.next_state[:, 1], ep)  # never another episode's state
    np.testing.assert_array_equal(b.next_action[inside], np.stack([ep, step + 1], -1)[inside])
    np.testing.assert_array_equal(b.next_goal, np.stack([step + 1, ep], -1))  # the episode's final goal at its end
    plain = draw(window, 80, 40)
    assert plain.next_state is None and plain.next_goal is None


def _batch(n: int = 16) -> Batch:
    ks = jax.random.split(jax.random.PRNGKey(1), 5)
    return Batch(state=jax.random.normal(ks[0], (n, 4)), action=jnp.tanh(jax.random.normal(ks[1], (n, 2))),
                 goal=jax.random.normal(ks[2], (n, 2)), next_state=jax.random.normal(ks[3], (n, 4)),
                 next_action=jnp.tanh(jax.random.normal(ks[4], (n, 2))), next_goal=jax.random.normal(ks[2], (n, 2)),
                 next_valid=jnp.ones(n))


def test_td_update_trains_the_critic_and_moves_the_target_by_tau() -> None:
    cfg = AgentConfig(depth=4, width=16, repr_dim=8, critic_loss="td", target_tau=0.25)
    agent = CRLAgent(cfg, state_size=4, action_size=2, goal_size=2, discount=DISCOUNT)
    st = agent.init(jax.random.PRNGKey(0))
    jax.tree.map(np.testing.assert_array_equal, st.target_critic, (st.params.sa_encoder, st.params.g_encoder))
    new, m = jax.jit(agent.update)(st, _batch(), jax.random.PRNGKey(2), 0.03)
    assert {"critic/next_loss", "critic/goal_loss", "critic/target_entropy", "actor/loss"} <= set(m)
    assert all(np.isfinite(float(v)) for v in m.values())
    moved = jax.tree.map(lambda t, p: t + 0.25 * (p - t), st.target_critic, (new.params.sa_encoder,
                                                                                  new.params.g_encoder))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), new.target_critic, moved)
    assert not np.allclose(jax.tree.leaves(new.params.sa_encoder)[0], jax.tree.leaves(st.params.sa_encoder)[0])
    # the Monte Carlo critic keeps no target (its checkpoints keep their layout)
    assert CRLAgent(AgentConfig(depth=4, width=16, repr_dim=8), 4, 2, 2).init(jax.random.PRNGKey(0)).target_critic \
        is None


def test_td_is_refused_where_batches_have_no_next_transition() -> None:
    cfg = AgentConfig(depth=4, width=16, repr_dim=8, critic_loss="td")
    agent = CRLAgent(cfg, 4, 2, 2)
    plain = _batch().replace(next_state=None, next_action=None, next_goal=None, next_valid=None)
    with pytest.raises(ConfigError, match="datasets only"):
        agent.update(agent.init(jax.random.PRNGKey(0)), plain, jax.random.PRNGKey(1), 0.03)
    with pytest.raises(ConfigError, match="datasets only"):
        TrainConfig(learner=LearnerConfig(agent=cfg)).validate()
    with pytest.raises(ConfigError, match="critic_loss='x' unknown"):
        AgentConfig(critic_loss="x").validate()
    with pytest.raises(ConfigError, match="target_tau"):
        AgentConfig(target_tau=0.0).validate()


def test_mixed_critic_averages_the_monte_carlo_and_td_losses() -> None:
    kw = dict(depth=4, width=16, repr_dim=8, target_tau=0.25)
    st0 = CRLAgent(AgentConfig(**kw), 4, 2, 2).init(jax.random.PRNGKey(0))
    losses = {}
    for loss in ("mc", "td", "mc+td"):
        agent = CRLAgent(AgentConfig(critic_loss=loss, **kw), 4, 2, 2, discount=DISCOUNT)
        st = agent.init(jax.random.PRNGKey(0))  # same networks whatever the loss
        jax.tree.map(np.testing.assert_array_equal, st.params, st0.params)
        new, m = agent.update(st, _batch(), jax.random.PRNGKey(2), 0.03)
        losses[loss] = m
        assert (new.target_critic is None) == (loss == "mc")
    mixed = losses["mc+td"]
    np.testing.assert_allclose(mixed["critic/loss"], 0.5 * (losses["mc"]["critic/loss"] + losses["td"]["critic/loss"]),
                               rtol=1e-5)
    np.testing.assert_allclose(mixed["critic/accuracy"], losses["mc"]["critic/accuracy"])
    np.testing.assert_allclose(mixed["critic/td_loss"], losses["td"]["critic/loss"], rtol=1e-5)


