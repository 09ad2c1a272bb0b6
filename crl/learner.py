"""The learner: one state (agent, evaluated actor, key, SGD-step counter) and one jitted SGD scan, whatever feeds it.

A data source is any pytree `data` (the online replay, a device-resident dataset window, or a pair of them) with a
pure `sample_fn(data, key) -> Batch`; `Learner.sgd` runs `steps` updates in one `lax.scan`, drawing each batch on the
device. Online, offline and fine-tune epochs are thin functions over this (crl.train, crl.offline, crl.finetune),
so the update a dataset batch gets is the update an online batch gets (one code path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from crl.agent import AgentParams, AgentState, CRLAgent
from crl.config import LearnerConfig
from crl.relabel import Batch

SampleFn = Callable[[Any, jax.Array], Batch]


@struct.dataclass
class LearnerState:
    """Everything a learner carries between epochs, apart from its data (a pytree: jits, checkpoints)."""

    agent: AgentState
    actor_ema: Any
    """Polyak average of the actor's params (per epoch, coefficient LearnerConfig.actor_ema); what evaluates."""
    key: jax.Array
    sgd_steps: jax.Array


def finite(tree: Any) -> jax.Array:
    """True when every floating leaf of `tree` is finite (the divergence check)."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves))


class Learner:
    """The static half of a learner (agent networks, optimisers, config); all values live in LearnerState."""

    def __init__(self, config: LearnerConfig, state_size: int, action_size: int, goal_size: int) -> None:
        self.config = config.validate()
        self.agent = CRLAgent(config.agent, state_size, action_size, goal_size, discount=config.discount)
        self.critic_goals = config.critic_mixture()
        self.actor_goals = config.actor_mixture()

    def init(self, key: jax.Array) -> LearnerState:
        """Fresh agent from `key` (as CRLAgent.init(key)); the evaluated actor starts as the live one. The SGD key is
        folded out of `key` (the online trainer replaces it with its own, as before the learner existed)."""
        agent = self.agent.init(key)
        return LearnerState(agent=agent, actor_ema=agent.params.actor, key=jax.random.fold_in(key, 1),
                            sgd_steps=jnp.zeros((), jnp.int32))

    def sgd(
        self, agent: AgentState, data: Any, sample_fn: SampleFn, key: jax.Array, steps: int,
        bc_alpha: jax.Array | None = None,
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        """`steps` SGD steps in one lax.scan, each on a batch `sample_fn(data, key)` drawn on the device; returns
        the agent and the mean of each metric. `bc_alpha` overrides the config's BC weight (e.g. a decayed one)."""
        if bc_alpha is None and self.config.bc_alpha > 0:
            bc_alpha = jnp.float32(self.config.bc_alpha)

        def body(st: AgentState, k: jax.Array) -> tuple[AgentState, dict]:
            k_batch, k_update = jax.random.split(k)
            return self.agent.update(st, sample_fn(data, k_batch), k_update, bc_alpha)

        agent, metrics = jax.lax.scan(body, agent, jax.random.split(key, steps))
        return agent, jax.tree.map(jnp.mean, metrics)

    def after_epoch(self, ls: LearnerState, agent: AgentState, key: jax.Array, trained: jax.Array) -> LearnerState:
        """The learner state after an epoch: new agent and key, the Polyak actor moved (when `trained`), counters."""
        if self.config.actor_ema > 0:
            tau = self.config.actor_ema * trained.astype(jnp.float32)
            actor_ema = jax.tree.map(lambda e, a: e + tau * (a - e), ls.actor_ema, agent.params.actor)
        else:
            actor_ema = agent.params.actor
        return LearnerState(agent=agent, actor_ema=actor_ema, key=key,
                            sgd_steps=ls.sgd_steps + trained.astype(jnp.int32) * self.config.sgd_steps)

    @staticmethod
    def eval_params(ls: LearnerState) -> AgentParams:
        """The agent params that evaluate and are exported: the live critic with the Polyak-averaged actor."""
        return ls.agent.params.replace(actor=ls.actor_ema)

    def act(self, ls: LearnerState) -> Callable[[jax.Array], jax.Array]:
        """The deterministic evaluated actor as `act(obs) -> actions` (what evaluations run)."""
        params = self.eval_params(ls)
        return lambda obs: self.agent.policy(params, obs, jax.random.PRNGKey(0), deterministic=True)
