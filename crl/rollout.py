"""Roll a fixed policy out in auto-resetting vectorised envs: one jitted `lax.scan` per unroll.

Used wherever actions come from something other than a learning agent's own epoch: random and oracle data
collection, frozen-checkpoint collection, evaluation sweeps. The trainer's epoch does the same inside its jit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from crl.envs.base import State
from crl.transition import Transition, make_transition

# policy(obs [num_envs, obs_size], key) -> actions [num_envs, action_size] in [-1, 1]
PolicyFn = Callable[[jax.Array, jax.Array], jax.Array]


def make_unroll(env: Any, policy: PolicyFn, length: int) -> Callable[[State, jax.Array], tuple[State, Transition]]:
    """A jitted `unroll(state, key) -> (state, transitions[length, num_envs])` for a batched auto-reset env."""

    def one_step(state: State, key: jax.Array) -> tuple[State, Transition]:
        action = policy(state.obs, key)
        nxt = env.step(state, action)
        return nxt, make_transition(state, action, nxt)

    @jax.jit
    def unroll(state: State, key: jax.Array) -> tuple[State, Transition]:
        return jax.lax.scan(one_step, state, jax.random.split(key, length))

    return unroll


def random_policy(action_size: int) -> PolicyFn:
    """Uniform actions in [-1, 1]."""

    def policy(obs: jax.Array, key: jax.Array) -> jax.Array:
        return jax.random.uniform(key, (obs.shape[0], action_size), minval=-1.0, maxval=1.0)

    return policy


def with_gaussian_noise(policy: PolicyFn, std: float) -> PolicyFn:
    """Add N(0, std^2) noise to a policy's actions and clip back into [-1, 1] (OGBench-style noisy expert)."""
    if std <= 0:
        return policy

    def noisy(obs: jax.Array, key: jax.Array) -> jax.Array:
        k_policy, k_noise = jax.random.split(key)
        action = policy(obs, k_policy)
        return jnp.clip(action + std * jax.random.normal(k_noise, action.shape), -1.0, 1.0)

    return noisy
