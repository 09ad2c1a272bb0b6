"""On-device trajectory replay with future-goal relabelling (no host round trip: it lives in the jitted epoch).

Storage is time-major, `[rows, num_envs, ...]`: row r holds one step of every env slot, so a slot's column is its
trajectory in time order (episodes follow each other, their ids increase). Rows form a ring buffer; an epoch
inserts `unroll_length` rows at once (capacity is a multiple of it, so an insert never wraps).

Relabelling: a sampled transition at logical row t of episode u gets the achieved goal of s_{t+k}, k >= 1, with
P(k) proportional to gamma^k for k = 1..L, L = steps left in u up to its end (or up to the newest stored step for an
episode still running). s_{t+k} is the `next` state of row t+k-1, so row t's own next state is the k = 1 goal. The
end of u is found by a vectorised binary search on the column's (sorted) episode ids.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from crl.relabel import PAPER_GOALS, Batch, GoalMixture, assemble_batch, future_offset, mix_goals, truncated_geometric
from crl.transition import Transition

__all__ = ["Batch", "BufferState", "init_buffer", "insert", "sample", "sample_indices", "truncated_geometric"]


@struct.dataclass
class BufferState:
    """state: s_t's state part [rows, envs, state_size]; action [rows, envs, A]; next_goal: achieved goal of
    s_{t+1} [rows, envs, G]; episode_id [rows, envs] int32; pos: next row to write; size: rows filled."""

    state: jax.Array
    action: jax.Array
    next_goal: jax.Array
    episode_id: jax.Array
    pos: jax.Array
    size: jax.Array

    @property
    def rows(self) -> int:
        """Capacity in rows."""
        return self.state.shape[0]

    @property
    def num_transitions(self) -> jax.Array:
        """Transitions stored."""
        return self.size * self.state.shape[1]


def init_buffer(rows: int, num_envs: int, state_size: int, action_size: int, goal_size: int) -> BufferState:
    """An empty buffer of `rows` x `num_envs` transitions."""
    return BufferState(
        state=jnp.zeros((rows, num_envs, state_size), jnp.float32),
        action=jnp.zeros((rows, num_envs, action_size), jnp.float32),
        next_goal=jnp.zeros((rows, num_envs, goal_size), jnp.float32),
        episode_id=jnp.full((rows, num_envs), -1, jnp.int32),
        pos=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
    )


def insert(
    buf: BufferState, tr: Transition, state_size: int, goal_indices: tuple[int, ...]
) -> BufferState:
    """Append an unroll of transitions with leading axes [U, num_envs] (U must divide the capacity)."""
    gi = jnp.asarray(goal_indices)
    rows = (
        tr.obs[..., :state_size].astype(jnp.float32),
        tr.action.astype(jnp.float32),
        jnp.take(tr.next_obs, gi, axis=-1).astype(jnp.float32),
        tr.episode_id.astype(jnp.int32),
    )
    u = tr.obs.shape[0]
    upd = lambda dst, src: jax.lax.dynamic_update_slice_in_dim(dst, src, buf.pos, axis=0)
    return buf.replace(
        state=upd(buf.state, rows[0]),
        action=upd(buf.action, rows[1]),
        next_goal=upd(buf.next_goal, rows[2]),
        episode_id=upd(buf.episode_id, rows[3]),
        pos=(buf.pos + u) % buf.rows,
        size=jnp.minimum(buf.size + u, buf.rows),
    )


def _episode_last_row(buf: BufferState, t: jax.Array, env: jax.Array) -> jax.Array:
    """Largest logical row p >= t whose episode id equals that of (t, env): binary search on sorted ids."""
    oldest = (buf.pos - buf.size) % buf.rows
    ids = lambda p: buf.episode_id[(oldest + p) % buf.rows, env]
    target = ids(t)
    lo, hi = t, jnp.broadcast_to(buf.size - 1, t.shape)

    def body(_, lohi):
        lo, hi = lohi
        mid = (lo + hi + 1) // 2
        ok = ids(mid) <= target
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid - 1)

    iters = max(1, int(buf.rows).bit_length())
    lo, _ = jax.lax.fori_loop(0, iters, body, (lo, hi))
    return lo


def sample_indices(
    buf: BufferState, key: jax.Array, batch_size: int, discount: float, geometric: bool = True
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(physical row of s_t, env column, goal offset k, episode steps available L) for a batch."""
    k_t, k_e, k_k = jax.random.split(key, 3)
    oldest = (buf.pos - buf.size) % buf.rows
    t = jax.random.randint(k_t, (batch_size,), 0, buf.size)
    env = jax.random.randint(k_e, (batch_size,), 0, buf.state.shape[1])
    limit = _episode_last_row(buf, t, env) - t + 1
    k = future_offset(k_k, limit, discount, geometric)
    return (oldest + t) % buf.rows, env, k, limit


def sample(
    buf: BufferState, key: jax.Array, batch_size: int, discount: float, critic_goals: GoalMixture = PAPER_GOALS,
    actor_goals: GoalMixture | None = None, goal_indices: tuple[int, ...] = (0, 1),
) -> Batch:
    """A relabelled batch: (s_t, a_t, goal) with goals from `critic_goals` (default: the achieved goal of s_{t+k},
    k ~ truncated geometric(gamma)) and, when `actor_goals` is given, separate actor goals (crl.relabel)."""
    # the paper's law draws from `key` alone; other mixtures fold extra keys out of it
    row, env, k, limit = sample_indices(buf, key, batch_size, discount, critic_goals.geometric)
    state = buf.state[row, env]
    current = jnp.take(state, jnp.asarray(goal_indices), axis=-1)

    def goals(mixture: GoalMixture, k: jax.Array, key: jax.Array) -> jax.Array:
        future = buf.next_goal[(row + k - 1) % buf.rows, env]
        if mixture.future_only:
            return future
        k_r, k_e, k_m = jax.random.split(key, 3)
        oldest = (buf.pos - buf.size) % buf.rows
        r_row = (oldest + jax.random.randint(k_r, (batch_size,), 0, buf.size)) % buf.rows
        r_env = jax.random.randint(k_e, (batch_size,), 0, buf.state.shape[1])
        return mix_goals(k_m, mixture, future, current, buf.next_goal[r_row, r_env])

    return assemble_batch(key, state, buf.action[row, env], k, limit, discount, critic_goals, actor_goals, goals)
