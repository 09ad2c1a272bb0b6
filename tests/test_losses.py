"""CRL losses against direct NumPy computations on small fixed inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crl.errors import ConfigError
from crl.losses import (
    IQE_COMPONENT_DIM,
    actor_loss,
    alpha_loss,
    infonce_loss,
    interval_union_length,
    paired_energy,
    pairwise_logits,
)
from crl.networks import sample_tanh_gaussian

RNG = np.random.default_rng(0)
PHI = RNG.normal(size=(6, 3)).astype(np.float32)
PSI = RNG.normal(size=(6, 3)).astype(np.float32)


def np_logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def test_l2_logits_equal_pairwise_distances() -> None:
    direct = -np.linalg.norm(PHI[:, None, :] - PSI[None, :, :], axis=-1)
    np.testing.assert_allclose(pairwise_logits(jnp.asarray(PHI), jnp.asarray(PSI), "l2"), direct, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(paired_energy(jnp.asarray(PHI), jnp.asarray(PSI), "l2"), np.diag(direct),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pairwise_logits(jnp.asarray(PHI), jnp.asarray(PSI), "dot"), PHI @ PSI.T, rtol=1e-5)


def test_l2_logits_have_finite_gradient_at_zero_distance() -> None:
    x = jnp.asarray(PHI)
    g = jax.grad(lambda a: pairwise_logits(a, x).sum())(x)
    assert bool(jnp.all(jnp.isfinite(g)))


@pytest.mark.parametrize("symmetric", [False, True])
def test_infonce_matches_numpy(symmetric: bool) -> None:
    logits = -np.linalg.norm(PHI[:, None, :] - PSI[None, :, :], axis=-1)
    lse_row = np_logsumexp(logits, 1)
    expected = -np.mean(np.diag(logits) - lse_row)
    if symmetric:
        expected += -np.mean(np.diag(logits) - np_logsumexp(logits, 0))
    expected += 0.1 * np.mean(lse_row**2)
    loss, m = infonce_loss(jnp.asarray(logits), 0.1, symmetric)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert float(m["critic/accuracy"]) == pytest.approx(np.mean(logits.argmax(1) == np.arange(6)))
    off = logits[~np.eye(6, dtype=bool)]
    assert float(m["critic/logits_neg"]) == pytest.approx(off.mean(), rel=1e-5)
    assert float(m["critic/logits_pos"]) == pytest.approx(np.diag(logits).mean(), rel=1e-5)


def test_actor_and_alpha_losses_match_numpy() -> None:
    log_prob = RNG.normal(size=8).astype(np.float32)
    q = RNG.normal(size=8).astype(np.float32)
    loss, m = actor_loss(jnp.asarray(log_prob), jnp.asarray(q), jnp.asarray(0.3))
    np.testing.assert_allclose(float(loss), np.mean(0.3 * log_prob - q), rtol=1e-5)
    assert float(m["actor/entropy"]) == pytest.approx(-log_prob.mean(), rel=1e-5)
    la = np.log(0.3)
    np.testing.assert_allclose(float(alpha_loss(jnp.asarray(la), jnp.asarray(log_prob), -1.0)),
                               0.3 * np.mean(-log_prob + 1.0), rtol=1e-5)
    # the gradient pushes alpha down when entropy exceeds the target
    assert float(jax.grad(alpha_loss)(jnp.asarray(0.0), jnp.full((4,), -5.0), -1.0)) > 0


def test_tanh_gaussian_log_prob_matches_numpy() -> None:
    mean = RNG.normal(size=(5, 2)).astype(np.float32)
    log_std = RNG.uniform(-1, 0.5, size=(5, 2)).astype(np.float32)
    key = jax.random.PRNGKey(3)
    action, log_prob = sample_tanh_gaussian(jnp.asarray(mean), jnp.asarray(log_std), key)
    eps = np.asarray(jax.random.normal(key, mean.shape))
    pre = mean + np.exp(log_std) * eps
    normal = -0.5 * eps**2 - log_std - 0.5 * np.log(2 * np.pi)
    expected = np.sum(normal - np.log(1 - np.tanh(pre) ** 2), axis=-1)
    np.testing.assert_allclose(action, np.tanh(pre), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-4, atol=1e-4)


def test_unknown_energy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="l2"):
        pairwise_logits(jnp.asarray(PHI), jnp.asarray(PSI), "cosine")


def union_length_by_merging(lo: np.ndarray, hi: np.ndarray) -> float:
    """Length of the union of [lo_i, max(lo_i, hi_i)] by sorting the intervals and merging overlaps."""
    total, end = 0.0, -np.inf
    for a, b in sorted(zip(lo.tolist(), np.maximum(lo, hi).tolist(), strict=True)):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def test_interval_union_length_matches_merging_intervals() -> None:
    rng = np.random.default_rng(5)
    lo, hi = rng.normal(size=(200, 6)), rng.normal(size=(200, 6))
    lo[:20, :3] = hi[:20, :3]  # zero-length intervals and ties
    got = np.asarray(interval_union_length(jnp.asarray(lo), jnp.asarray(hi)))
    want = np.array([union_length_by_merging(a, b) for a, b in zip(lo, hi, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert interval_union_length(jnp.asarray([0.0, 1.0]), jnp.asarray([2.0, 3.0])) == pytest.approx(3.0)  # overlap
    assert interval_union_length(jnp.asarray([0.0, 5.0]), jnp.asarray([1.0, 4.0])) == pytest.approx(1.0)  # empty


def test_iqe_energy_is_a_quasimetric_with_finite_gradients() -> None:
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=(10, 2 * IQE_COMPONENT_DIM)).astype(np.float32))
    d = -np.asarray(pairwise_logits(x, x, "iqe"))
    assert np.abs(np.diagonal(d)).max() < 1e-5 and (d >= 0).all() and not np.allclose(d, d.T)
    assert (d[:, None, :] <= d[:, :, None] + d[None, :, :] + 1e-4).all()  # d(a,c) <= d(a,b) + d(b,c)
    # one component by hand: max-mean of the per-component union lengths
    comps = [[union_length_by_merging(np.asarray(x[i, c * IQE_COMPONENT_DIM:(c + 1) * IQE_COMPONENT_DIM]),
                                      np.asarray(x[j, c * IQE_COMPONENT_DIM:(c + 1) * IQE_COMPONENT_DIM]))
              for c in range(2)] for i, j in [(0, 1), (3, 2)]]
    want = [0.5 * max(c) + 0.5 * np.mean(c) for c in comps]
    np.testing.assert_allclose([d[0, 1], d[3, 2]], want, rtol=1e-5)
    np.testing.assert_allclose(paired_energy(x[:5], x[5:], "iqe"), np.diagonal(-d[:5, 5:]), rtol=1e-5, atol=1e-6)
    grad = jax.grad(lambda p: pairwise_logits(p, x, "iqe").sum())(x)
    assert np.isfinite(np.asarray(grad)).all() and np.abs(np.asarray(grad)).sum() > 0


def test_iqe_needs_a_representation_of_whole_components() -> None:
    from crl.config import AgentConfig

    with pytest.raises(ConfigError, match="multiple of"):
        AgentConfig(energy="iqe", repr_dim=IQE_COMPONENT_DIM + 1).validate()


def test_mrn_energy_matches_numpy_and_is_a_quasimetric() -> None:
    h = PHI.shape[1] // 2
    sym = np.linalg.norm(PHI[:, None, :h] - PSI[None, :, :h], axis=-1)
    asym = np.maximum(PHI[:, None, h:] - PSI[None, :, h:], 0).max(-1)
    got = np.asarray(pairwise_logits(jnp.asarray(PHI), jnp.asarray(PSI), "mrn"))
    np.testing.assert_allclose(got, -(sym + asym), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(paired_energy(jnp.asarray(PHI), jnp.asarray(PSI), "mrn"), np.diagonal(got),
                               rtol=1e-5, atol=1e-5)
    # d = -logits: zero on the diagonal of a set with itself, asymmetric, and obeys the triangle inequality
    x = jnp.asarray(np.random.default_rng(3).normal(size=(12, 8)).astype(np.float32))
    d = -np.asarray(pairwise_logits(x, x, "mrn"))
    assert np.abs(np.diagonal(d)).max() < 1e-3 and not np.allclose(d, d.T)
    assert (d[:, None, :] <= d[:, :, None] + d[None, :, :] + 1e-4).all()  # d(a,c) <= d(a,b) + d(b,c)
