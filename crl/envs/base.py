"""The functional goal-conditioned environment interface every env, wrapper and trainer relies on.

An environment is a plain object with pure methods: `reset(key) -> State` and `step(state, action) -> State`.
Both are jit- and vmap-able; all episode bookkeeping lives in `State`, never on the Python object.

Observation layout: `obs = concat(state_part, goal_part)`, `obs.shape[-1] == observation_size`,
`state_part = obs[..., :state_size]`, `goal_part = obs[..., state_size:] == state.goal`.
The achieved goal of a state is `obs[..., goal_indices]` (indices into the state part).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class State:
    """Everything an environment step needs and produces; a pytree, so it jits, vmaps and scans.

    data: the physics state (`mjx.Data`).
    obs: observation, state part then goal part, float32 [observation_size].
    goal: the commanded goal, float32 [goal_size].
    reward: float32 scalar, reward of the transition that produced this state (0 after reset).
    done: float32 scalar, 1.0 when the episode ended with the transition that produced this state
        (terminated or truncated).
    truncation: float32 scalar, 1.0 when the episode ended by the time limit (so terminated = done * (1 - truncation)).
    metrics: {'dist': distance achieved goal -> goal, 'success': 1.0 within the success threshold}.
    step: int32 scalar, transitions since the episode's reset.
    episode_id: int32 scalar, counts up across resets (the auto-reset wrapper keeps it unique per env slot).
    rng: PRNG key the env uses for its own randomness (goal re-sampling, auto-resets).
    info: extras owned by wrappers (e.g. the pre-reset final observation); always a new dict, never mutated.
    """

    data: Any
    obs: jax.Array
    goal: jax.Array
    reward: jax.Array
    done: jax.Array
    truncation: jax.Array
    metrics: dict[str, jax.Array]
    step: jax.Array
    episode_id: jax.Array
    rng: jax.Array
    info: dict[str, Any] = struct.field(default_factory=dict)


@dataclass(frozen=True)
class EnvSpec:
    """What a dataset manifest / trainer needs to know about an environment, JSON-serialisable via `to_dict`."""

    name: str
    family: str
    layout: str
    observation_size: int
    state_size: int
    goal_size: int
    action_size: int
    goal_indices: tuple[int, ...]
    episode_length: int
    success_threshold: float
    nq: int
    nv: int
    gym_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    layout_text: str | None = None
    """The maze layout itself (`#`/`.`/`S`/`G` text): what a stored dataset's maze IS, whatever the built-in names
    mean later. None in specs written before 2026-12 (their `layout` name is resolved as it was then)."""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (lists instead of tuples) for JSON."""
        d = dict(self.__dict__)
        d["goal_indices"] = list(self.goal_indices)
        d["config"] = dict(self.config)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnvSpec:
        d = dict(d)
        d["goal_indices"] = tuple(d["goal_indices"])
        return cls(**d)


def achieved_goal(obs: jax.Array, goal_indices: tuple[int, ...]) -> jax.Array:
    """The achieved-goal coordinates of (a batch of) observations."""
    return jnp.take(obs, jnp.asarray(goal_indices), axis=-1)
