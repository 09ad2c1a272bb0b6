"""The CRL agent: critic encoders phi(s, a) and psi(g), tanh-Gaussian actor pi(a | s, g), temperature alpha.

`CRLAgent` is a static description (network modules, optimisers, sizes); all values live in `AgentState`, a pytree,
so `update` is a pure function that jits and scans. One update = critic, actor and alpha steps computed from the same
pre-update parameters (as JaxGCRL / scaling-crl do); psi(g) of the critic pass is reused by the actor loss.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from crl.backend import CPU_COMPILER_OPTIONS, cpu_compiler_options  # noqa: F401 - re-exported
from crl.config import AgentConfig
from crl.errors import ConfigError
from crl.losses import (
    actor_loss,
    alpha_loss,
    ddpg_bc_actor_loss,
    infonce_loss,
    paired_energy,
    pairwise_logits,
    td_infonce_loss,
)
from crl.networks import Actor, ResidualEncoder, sample_tanh_gaussian, tanh_gaussian_log_prob
from crl.relabel import Batch


@struct.dataclass
class AgentParams:
    """actor: pi's params; sa_encoder: phi(s, a); g_encoder: psi(g); log_alpha: log temperature (scalar)."""

    actor: Any
    sa_encoder: Any
    g_encoder: Any
    log_alpha: jax.Array


@struct.dataclass
class AgentState:
    """Parameters and the Adam states of actor, critic (both encoders) and alpha; `target_critic` (sa_encoder,
    g_encoder) is the Polyak-averaged critic a TD critic bootstraps from (None for the Monte Carlo critic, so its
    checkpoints keep their layout)."""

    params: AgentParams
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    target_critic: Any = None


class CRLAgent:
    """Networks and update rule for given env sizes; methods are pure and jit-able."""

    def __init__(
        self, config: AgentConfig, state_size: int, action_size: int, goal_size: int, discount: float = 0.99,
    ) -> None:
        config.validate()
        self.config, self.state_size, self.action_size, self.goal_size = config, state_size, action_size, goal_size
        self.discount = discount
        """gamma of the TD critic's bootstrap (the learner's discount)."""
        c = config
        common = dict(width=c.width, layer_norm=c.layer_norm, residual=c.residual, activation=c.activation,
                      init_scale=c.init_scale, scan_blocks=c.scan_blocks)
        self.actor_net = Actor(depth=c.resolved_actor_depth, action_size=action_size, log_std_min=c.log_std_min,
                               log_std_max=c.log_std_max, **common)
        self.sa_net = ResidualEncoder(depth=c.depth, out_dim=c.repr_dim, **common)
        self.g_net = ResidualEncoder(depth=c.depth, out_dim=c.repr_dim, **common)
        self.actor_tx = optax.adam(c.actor_lr)
        self.critic_tx = optax.adam(c.critic_lr)
        self.alpha_tx = optax.adam(c.alpha_lr)
        self.target_entropy = c.target_entropy_per_dim * action_size

    def init(self, key: jax.Array) -> AgentState:
        """Fresh parameters (alpha = 1) and optimiser states."""
        k_a, k_sa, k_g = jax.random.split(key, 3)
        params = AgentParams(
            actor=self.actor_net.init(k_a, jnp.zeros((1, self.state_size + self.goal_size))),
            sa_encoder=self.sa_net.init(k_sa, jnp.zeros((1, self.state_size + self.action_size))),
            g_encoder=self.g_net.init(k_g, jnp.zeros((1, self.goal_size))),
            log_alpha=jnp.zeros((), jnp.float32),
        )
        critic = (params.sa_encoder, params.g_encoder)
        target = critic if self.config.critic_loss != "mc" else None
        return AgentState(params, self.actor_tx.init(params.actor), self.critic_tx.init(critic),
                          self.alpha_tx.init(params.log_alpha), target)

    def policy(self, params: AgentParams, obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
        """Actions in [-1, 1] for observations concat(state part, goal); deterministic = tanh(mean)."""
        mean, log_std = self.actor_net.apply(params.actor, obs)
        if deterministic:
            return jnp.tanh(mean)
        return sample_tanh_gaussian(mean, log_std, key)[0]

    def paired_logits(self, params: AgentParams, state: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
        """[B] critic logits f(s_i, a_i, g_i) (higher = closer; the geodesicity probe scores these)."""
        phi = self.sa_net.apply(params.sa_encoder, jnp.concatenate([state, action], -1))
        psi = self.g_net.apply(params.g_encoder, goal)
        return paired_energy(phi, psi, self.config.energy)

    def update(
        self, st: AgentState, batch: Batch, key: jax.Array, bc_alpha: float | jax.Array | None = None
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        """One SGD step of critic, actor and alpha; returns the new state and scalar metrics.

        `bc_alpha` None: the online actor (maximise the critic with the entropy term). A number (or traced scalar,
        e.g. a decaying weight): the DDPG+BC actor of OGBench's CRL on the batch's data actions. `batch.actor_goal`
        (when set) conditions the actor on its own goals."""
        c, p = self.config, st.params
        sa_in = jnp.concatenate([batch.state, batch.action], -1)

        td, mc = c.critic_loss != "mc", c.critic_loss != "td"
        if td:
            if batch.next_state is None or st.target_critic is None:
                raise ConfigError(f"critic_loss={c.critic_loss!r} needs batches with the next transition and a "
                                  "target critic: it trains from datasets only (crl-train offline)")
            # the candidate goals of the bootstrap term: other rows' next states, a draw from the data's marginal
            rand_goal = jnp.roll(batch.next_goal, 1, axis=0)
            target_logits = pairwise_logits(
                self.sa_net.apply(st.target_critic[0], jnp.concatenate([batch.next_state, batch.next_action], -1)),
                self.g_net.apply(st.target_critic[1], rand_goal), c.energy)

        def critic_fn(critic):
            phi = self.sa_net.apply(critic[0], sa_in)
            goals = ([batch.goal] if mc else []) + ([batch.next_goal, rand_goal] if td else [])
            psis = jnp.split(self.g_net.apply(critic[1], jnp.concatenate(goals, 0)), len(goals))
            psi = psis[0] if mc else None
            if mc:
                loss, m = infonce_loss(pairwise_logits(phi, psi, c.energy), c.logsumexp_penalty,
                                       c.symmetric_infonce)
            if td:
                td_loss, td_m = td_infonce_loss(pairwise_logits(phi, psis[-2], c.energy),
                                                pairwise_logits(phi, psis[-1], c.energy), target_logits,
                                                batch.next_valid, self.discount, c.logsumexp_penalty)
                if mc:  # both: the mean of the losses; accuracy etc. stay the Monte Carlo critic's
                    m = {**td_m, **m, "critic/mc_loss": loss, "critic/td_loss": td_loss}
                    loss = 0.5 * (loss + td_loss)
                    m["critic/loss"] = loss
                else:
                    loss, m = td_loss, td_m
            return loss, (m, psi)

        (_, (c_metrics, psi)), c_grad = jax.value_and_grad(critic_fn, has_aux=True)(
            (p.sa_encoder, p.g_encoder))
        if psi is None:  # the TD critic never encodes the batch's relabelled goals: the actor's psi is its own
            psi = self.g_net.apply(p.g_encoder, batch.goal)
        psi = jax.lax.stop_gradient(psi)
        alpha = jnp.exp(p.log_alpha)

        actor_goal = batch.goal if batch.actor_goal is None else batch.actor_goal
        # psi of the actor's goals: reused from the critic pass unless the actor has goals of its own
        actor_psi = psi if batch.actor_goal is None else jax.lax.stop_gradient(
            self.g_net.apply(p.g_encoder, batch.actor_goal))

        def actor_fn(actor_params):
            mean, log_std = self.actor_net.apply(actor_params, jnp.concatenate([batch.state, actor_goal], -1))
            action, log_prob = sample_tanh_gaussian(mean, log_std, key)
            phi = self.sa_net.apply(p.sa_encoder, jnp.concatenate([batch.state, action], -1))
            q = paired_energy(phi, actor_psi, c.energy)
            if bc_alpha is None:
                loss, m = actor_loss(log_prob, q, alpha)
            else:
                loss, m = ddpg_bc_actor_loss(q, tanh_gaussian_log_prob(mean, log_std, batch.action), bc_alpha)
                m = {**m, "actor/entropy": -jnp.mean(log_prob)}
            return loss, (m, log_prob)

        (_, (a_metrics, log_prob)), a_grad = jax.value_and_grad(actor_fn, has_aux=True)(p.actor)

        c_upd, critic_opt = self.critic_tx.update(c_grad, st.critic_opt, (p.sa_encoder, p.g_encoder))
        sa_new, g_new = optax.apply_updates((p.sa_encoder, p.g_encoder), c_upd)
        a_upd, actor_opt = self.actor_tx.update(a_grad, st.actor_opt, p.actor)
        metrics = {**c_metrics, **a_metrics}
        if bc_alpha is None:  # the entropy temperature exists only for the actor with an entropy term
            al_grad = jax.grad(alpha_loss)(p.log_alpha, jax.lax.stop_gradient(log_prob), self.target_entropy)
            al_upd, alpha_opt = self.alpha_tx.update(al_grad, st.alpha_opt, p.log_alpha)
            log_alpha = optax.apply_updates(p.log_alpha, al_upd)
            metrics["alpha"] = alpha
        else:
            log_alpha, alpha_opt = p.log_alpha, st.alpha_opt
        params = AgentParams(actor=optax.apply_updates(p.actor, a_upd), sa_encoder=sa_new, g_encoder=g_new,
                             log_alpha=log_alpha)
        target = st.target_critic
        if td:
            target = optax.incremental_update((sa_new, g_new), target, c.target_tau)
        return AgentState(params, actor_opt, critic_opt, alpha_opt, target), metrics
