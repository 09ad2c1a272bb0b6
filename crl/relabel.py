"""The one goal-relabelling law shared by the online replay (`crl.buffer`) and datasets (`crl.datasets.loader`).

A sampled transition (s_t, a_t) of an episode (or a stitching segment) gets a goal from a mixture, as OGBench's
`GCDataset` offers it (`value_p_curgoal`, `value_p_trajgoal`, `value_p_randomgoal`, `value_geom_sample`), with
separate mixtures for the critic and the actor:
- future: the achieved goal of s_{t+k}, k >= 1, P(k) proportional to gamma^k for k = 1..L, L = the steps left in the
  episode (truncated at its end: never a goal from another episode); the paper's law, and the default (all future);
- current: the achieved goal of s_t itself;
- random: the achieved goal of a uniformly drawn stored state.
`s_{t+k}` is the next state of step t+k-1, so the k = 1 goal is s_t's own next state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import struct

from crl.errors import ConfigError


@struct.dataclass
class Batch:
    """A relabelled SGD batch: state part of s_t, action a_t, the critic's goal, and the actor's goal (None = the
    critic's goal, the paper's setting: the actor loss then reuses psi(goal) of the critic pass). A TD critic
    (AgentConfig.critic_loss 'td') also needs the next transition: state part and data action of s_{t+1}, the
    achieved goal of s_{t+1}, and `next_valid` (1.0 where s_{t+1}'s state and action are stored, 0.0 at the last
    stored transition of an episode)."""

    state: jax.Array
    action: jax.Array
    goal: jax.Array
    actor_goal: jax.Array | None = None
    next_state: jax.Array | None = None
    next_action: jax.Array | None = None
    next_goal: jax.Array | None = None
    next_valid: jax.Array | None = None


@dataclass(frozen=True)
class GoalMixture:
    """Fractions of goals drawn from the current state, the future of the trajectory and the whole data (sum 1)."""

    current: float = 0.0
    """Goal = achieved goal of s_t (OGBench value_p_curgoal)."""
    future: float = 1.0
    """Goal = achieved goal of a later state of the same episode (value_p_trajgoal)."""
    random: float = 0.0
    """Goal = achieved goal of a random stored state (value_p_randomgoal)."""
    geometric: bool = True
    """Future offsets ~ truncated geometric(gamma) (the paper); False = uniform over the rest of the episode."""

    @property
    def future_only(self) -> bool:
        """True for the paper's law (no current or random goals): samplers skip the other gathers."""
        return self.current == 0.0 and self.random == 0.0

    def validate(self, name: str = "goal mixture") -> GoalMixture:
        """Raise ConfigError unless the fractions are in [0, 1] and sum to 1; returns self."""
        parts = (self.current, self.future, self.random)
        if min(parts) < 0 or abs(sum(parts) - 1.0) > 1e-6:
            raise ConfigError(f"{name}: current={self.current}, future={self.future}, random={self.random} must be "
                              f">= 0 and sum to 1 (the paper: future=1)")
        return self

    @classmethod
    def parse(cls, text: str, name: str = "goal mixture") -> GoalMixture:
        """'current,future,random' fractions, e.g. '0,1,0' (the paper); append ',uniform' for uniform future
        offsets, e.g. '0,0.5,0.5,uniform' (OGBench's CRL actor goals on its stitch datasets)."""
        parts = [p.strip() for p in text.split(",") if p.strip()]
        geometric = True
        if parts and parts[-1] in ("uniform", "geometric"):
            geometric = parts.pop() == "geometric"
        try:
            cur, fut, rnd = (float(p) for p in parts)
        except ValueError:
            raise ConfigError(f"{name}={text!r}: expected 'current,future,random' fractions, e.g. 0,1,0") from None
        return cls(cur, fut, rnd, geometric).validate(name)


PAPER_GOALS = GoalMixture()
"""All goals from the future of the trajectory, geometric offsets: the paper's law (and OGBench CRL's actor goals)."""


def truncated_geometric(key: jax.Array, limit: jax.Array, discount: float) -> jax.Array:
    """k in 1..limit with P(k) = gamma^(k-1) (1 - gamma) / (1 - gamma^limit) (inverse CDF; limit >= 1)."""
    u = jax.random.uniform(key, limit.shape)
    mass = 1.0 - discount ** limit.astype(jnp.float32)
    k = 1 + jnp.floor(jnp.log1p(-u * mass) / jnp.log(discount)).astype(jnp.int32)
    return jnp.clip(k, 1, limit)


def future_offset(key: jax.Array, limit: jax.Array, discount: float, geometric: bool = True) -> jax.Array:
    """The offset k >= 1 of the future goal, given L = `limit` steps left in the episode (L >= 1)."""
    if geometric:
        return truncated_geometric(key, limit, discount)
    u = jax.random.uniform(key, limit.shape)
    return jnp.clip(1 + jnp.floor(u * limit).astype(jnp.int32), 1, limit)


def mix_goals(
    key: jax.Array, mixture: GoalMixture, future: jax.Array, current: jax.Array | None = None,
    random: jax.Array | None = None,
) -> jax.Array:
    """Per sample, pick the current, future or random candidate goal ([B, G] each) with the mixture's fractions."""
    if mixture.future_only:
        return future
    u = jax.random.uniform(key, future.shape[:1])[:, None]
    out = jnp.where(u < mixture.current, current, future)
    return jnp.where(u >= mixture.current + mixture.future, random, out)


GoalsFn = Callable[[GoalMixture, jax.Array, jax.Array], jax.Array]
"""goals(mixture, k, key) -> [B, G]: a source's candidate goals for future offsets k, mixed by `mixture`."""


def assemble_batch(
    key: jax.Array, state: jax.Array, action: jax.Array, k: jax.Array, limit: jax.Array, discount: float,
    critic_goals: GoalMixture, actor_goals: GoalMixture | None, goals: GoalsFn,
) -> Batch:
    """The batch of a sampler (replay or dataset window) from its sampled rows: critic goals with the offsets k
    already drawn from `key`, and actor goals (when a mixture is given) with the same k unless their offset law
    differs. Extra keys are folded out of `key`, so the paper's law uses `key` exactly as before mixtures existed."""
    k_actor, k_rand, k_mix = (jax.random.fold_in(key, i) for i in (1, 2, 3))
    goal = goals(critic_goals, k, k_mix)
    actor_goal = None
    if actor_goals is not None:
        k_a = k if actor_goals.geometric == critic_goals.geometric else future_offset(
            k_actor, limit, discount, actor_goals.geometric)
        actor_goal = goals(actor_goals, k_a, k_rand)
    return Batch(state=state, action=action, goal=goal, actor_goal=actor_goal)
