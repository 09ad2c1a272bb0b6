"""The per-step record a rollout produces; trainers fill the replay buffer from it, collectors write it to disk.

One `Transition` is what one env slot did in one step: the state it acted in (s_t), the action, and what followed.
`next_*` fields hold s_{t+1} of the same episode, i.e. the pre-reset final state when the auto-reset wrapper
started a new episode in that slot (`done == 1`).
"""

from __future__ import annotations

import jax
from flax import struct

from crl.envs.base import State


@struct.dataclass
class Transition:
    """obs: s_t's observation (state part then goal part). next_obs: s_{t+1}'s, same layout.
    terminal: 1.0 when the episode terminated (not by time limit); truncation: 1.0 when cut by the time limit.
    success: 1.0 when s_{t+1} is within the success threshold of the goal.
    qpos/qvel: s_t's physics state; next_qpos/next_qvel: s_{t+1}'s.
    episode_id / step: bookkeeping of s_t (step counts transitions since the episode's reset).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminal: jax.Array
    truncation: jax.Array
    success: jax.Array
    next_obs: jax.Array
    qpos: jax.Array
    qvel: jax.Array
    next_qpos: jax.Array
    next_qvel: jax.Array
    episode_id: jax.Array
    step: jax.Array


def make_transition(before: State, action: jax.Array, after: State) -> Transition:
    """Build the record of the step `before --action--> after` (works batched).

    `after` comes from an auto-reset wrapper, which keeps the pre-reset s_{t+1} in
    `after.info['final_obs' | 'final_qpos' | 'final_qvel']`; without a wrapper those keys are absent and the
    state itself is s_{t+1}.
    """
    info = after.info
    return Transition(
        obs=before.obs,
        action=action,
        reward=after.reward,
        terminal=after.done * (1.0 - after.truncation),
        truncation=after.truncation,
        success=after.metrics["success"],
        next_obs=info.get("final_obs", after.obs),
        qpos=before.data.qpos,
        qvel=before.data.qvel,
        next_qpos=info.get("final_qpos", after.data.qpos),
        next_qvel=info.get("final_qvel", after.data.qvel),
        episode_id=before.episode_id,
        step=before.step,
    )

