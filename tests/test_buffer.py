"""Replay buffer: ring insertion and future-goal relabelling (same episode, later step, truncated geometric law)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crl.buffer import init_buffer, insert, sample, sample_indices, truncated_geometric
from crl.transition import Transition

N_ENVS, UNROLL, ROWS = 3, 10, 40


def synthetic_unrolls(n_unrolls: int, seed: int = 0) -> list[Transition]:
    """Episodes of random length per env slot, ids as AutoReset gives them; state part = (episode id, step)."""
    rng = np.random.default_rng(seed)
    total = n_unrolls * UNROLL
    ep = np.zeros((total, N_ENVS), np.int32)
    step = np.zeros((total, N_ENVS), np.int32)
    for e in range(N_ENVS):
        ep_id, t = e, 0
        length = rng.integers(3, 16)
        for r in range(total):
            ep[r, e], step[r, e] = ep_id, t
            t += 1
            if t == length:
                ep_id, t, length = ep_id + N_ENVS, 0, rng.integers(3, 16)
    zeros2 = np.zeros((total, N_ENVS, 2), np.float32)
    obs = np.stack([ep, step, step, step, step, step], -1).astype(np.float32)
    next_obs = np.stack([ep, step + 1, step, step, step, step], -1).astype(np.float32)
    scalar = np.zeros((total, N_ENVS), np.float32)
    full = Transition(obs=obs, action=zeros2 + step[..., None], reward=scalar, terminal=scalar, truncation=scalar,
                      success=scalar, next_obs=next_obs, qpos=zeros2, qvel=zeros2, next_qpos=zeros2,
                      next_qvel=zeros2, episode_id=ep, step=step)
    return [jax.tree.map(lambda x, i=i: jnp.asarray(x[i * UNROLL:(i + 1) * UNROLL]), full) for i in range(n_unrolls)]


def filled_buffer(n_unrolls: int):
    buf = init_buffer(ROWS, N_ENVS, 4, 2, 2)
    for tr in synthetic_unrolls(n_unrolls):
        buf = insert(buf, tr, 4, (0, 1))
    return buf


def test_insert_wraps_around_and_keeps_newest_rows() -> None:
    buf = filled_buffer(6)  # 60 rows into a 40-row ring
    assert int(buf.size) == ROWS and int(buf.pos) == 20
    newest = synthetic_unrolls(6)[-1]
    np.testing.assert_array_equal(buf.episode_id[10:20], newest.episode_id)
    np.testing.assert_array_equal(buf.state[10:20], newest.obs[..., :4])


@pytest.mark.parametrize("n_unrolls", [2, 6])
def test_goals_come_from_a_later_step_of_the_same_episode(n_unrolls: int) -> None:
    buf = filled_buffer(n_unrolls)
    batch = jax.jit(sample, static_argnums=(2, 3))(buf, jax.random.PRNGKey(0), 4096, 0.9)
    same_episode = np.asarray(batch.goal[:, 0] == batch.state[:, 0])
    assert same_episode.all()
    offsets = np.asarray(batch.goal[:, 1] - batch.state[:, 1])
    assert offsets.min() >= 1
    np.testing.assert_array_equal(batch.action[:, 0], batch.state[:, 1])  # action stored with its own state


def test_offset_limit_is_the_episode_end_or_newest_row() -> None:
    buf = filled_buffer(6)
    row, env, k, limit = jax.jit(sample_indices, static_argnums=(2, 3))(buf, jax.random.PRNGKey(1), 2048, 0.9)
    ids = np.asarray(buf.episode_id)
    oldest = (int(buf.pos) - int(buf.size)) % ROWS
    logical = [(oldest + p) % ROWS for p in range(int(buf.size))]
    for r, e, lim in zip(np.asarray(row), np.asarray(env), np.asarray(limit), strict=True):
        p = logical.index(r)
        rest = [ids[logical[q], e] for q in range(p, len(logical))]
        expected = next((i for i, v in enumerate(rest) if v != rest[0]), len(rest))
        assert lim == expected
    assert (np.asarray(k) <= np.asarray(limit)).all()


def test_offsets_follow_the_truncated_geometric_law() -> None:
    """Chi-square test (fixed seed): pooled offset counts vs the sum of per-sample truncated geometric laws."""
    gamma = 0.8
    buf = filled_buffer(6)
    _, _, k, limit = jax.jit(sample_indices, static_argnums=(2, 3))(buf, jax.random.PRNGKey(2), 20000, gamma)
    k, limit = np.asarray(k), np.asarray(limit)
    kmax = int(limit.max())
    ks = np.arange(1, kmax + 1)
    expected = np.zeros(kmax)
    for lim in limit:
        p = np.where(ks <= lim, gamma ** (ks - 1), 0.0)
        expected += p / p.sum()
    observed = np.bincount(k, minlength=kmax + 1)[1:]
    keep = expected >= 5
    chi2 = float(np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep]))
    dof = int(keep.sum()) - 1
    assert chi2 < dof + 4 * np.sqrt(2 * dof), (chi2, dof)  # far below gross mismatches, robust to noise


def test_truncated_geometric_direct() -> None:
    lim = jnp.full((50000,), 3)
    k = np.asarray(truncated_geometric(jax.random.PRNGKey(0), lim, 0.5))
    freq = np.bincount(k, minlength=4)[1:] / len(k)
    np.testing.assert_allclose(freq, np.array([4, 2, 1]) / 7, atol=0.01)
    assert k.min() == 1 and k.max() == 3
