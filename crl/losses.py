"""CRL losses: contrastive critic (InfoNCE over in-batch B x B logits), SAC-style actor, entropy temperature.

The L2 energy -||phi_i - psi_j|| is computed as -sqrt(max(|phi_i|^2 + |psi_j|^2 - 2 phi_i.psi_j, eps)): one
[B, d] x [d, B] matmul instead of the [B, B, d] pairwise-difference tensor, whose memory traffic grows with
B^2 d (bench/RESULTS.md has the measurement). The clamp keeps the sqrt's gradient finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from crl.errors import ConfigError

ENERGIES = ("l2", "dot", "mrn", "iqe")
"""Critic energies f(phi, psi): 'l2' = -||phi - psi||_2 (the paper), 'dot' = phi . psi, 'mrn' = minus the Metric
Residual Network quasimetric (Liu et al. 2023, "Metric Residual Networks for Sample Efficient Goal-Conditioned
RL"; the critic distance of temporal metric distillation, Myers et al. 2025): an L2 distance on the first half of
the representation plus max_k relu(phi_k - psi_k) on the second half, which obeys the triangle inequality and
need not be symmetric, the structure that lets a distance compose short segments into long paths (stitching);
'iqe' = minus the Interval Quasimetric Embedding (Wang & Isola 2022, "Improved Representation of Asymmetrical
Distances with Interval Quasimetric Embeddings"; the critic of QRL, Wang et al. 2023), see `iqe_distance`."""
IQE_COMPONENT_DIM = 8
"""IQE splits the representation into components of this many coordinates (repr_dim must be a multiple)."""
IQE_MAX_WEIGHT = 0.5
"""IQE's max-mean reduction: distance = w * max + (1 - w) * mean over components. QRL learns w; fixed here."""
CRITIC_LOSSES = ("mc", "td", "mc+td")
"""Critic losses: 'mc' = InfoNCE on relabelled future goals (`infonce_loss`), 'td' = TD InfoNCE (`td_infonce_loss`),
'mc+td' = the mean of the two (both estimate the same discounted occupancy ratio)."""
_EPS = 1e-8


def safe_sqrt(x: jax.Array) -> jax.Array:
    """sqrt(max(x, eps)): finite value and gradient at 0 (no gradient flows where clamped)."""
    return jnp.sqrt(jnp.maximum(x, _EPS))


def _mrn_split(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The symmetric (first half) and asymmetric (second half) parts of an MRN representation."""
    h = x.shape[-1] // 2
    return x[..., :h], x[..., h:]


def interval_union_length(lo: jax.Array, hi: jax.Array) -> jax.Array:
    """[..., m], [..., m] -> [...]: the total length of the union of the intervals [lo_i, max(lo_i, hi_i)].

    Interval merging without a sort: taken in order of their starts (ties by index), interval i adds
    max(0, hi_i - max(lo_i, reach_i)), reach_i the furthest end of the intervals before it. O(m^2) comparisons
    per component instead of a sort of the 2m endpoints, which XLA's CPU sort makes the slower of the two
    (bench/bench_energies.py). Differentiable in the endpoints."""
    hi = jnp.maximum(lo, hi)
    m = lo.shape[-1]
    lo_i, lo_j = lo[..., :, None], lo[..., None, :]
    index_before = jnp.arange(m)[None, :] < jnp.arange(m)[:, None]  # [i, j]: j < i
    before = (lo_j < lo_i) | ((lo_j == lo_i) & index_before)
    reach = jnp.max(jnp.where(before, hi[..., None, :], jnp.finfo(hi.dtype).min), axis=-1)
    return jnp.sum(jax.nn.relu(hi - jnp.maximum(lo, reach)), axis=-1)


def iqe_distance(x: jax.Array, y: jax.Array) -> jax.Array:
    """IQE quasimetric d(x -> y) over the last axis (broadcasting): per component of IQE_COMPONENT_DIM coordinates,
    the length of the union of the intervals [x_i, max(x_i, y_i)] (zero iff y <= x there), then a max-mean over
    components. d(x, x) = 0, asymmetric, and it obeys the triangle inequality (Wang & Isola 2022)."""
    shape = jnp.broadcast_shapes(x.shape, y.shape)
    comps = (*shape[:-1], shape[-1] // IQE_COMPONENT_DIM, IQE_COMPONENT_DIM)
    per_comp = interval_union_length(jnp.broadcast_to(x, shape).reshape(comps),
                                     jnp.broadcast_to(y, shape).reshape(comps))
    return IQE_MAX_WEIGHT * jnp.max(per_comp, axis=-1) + (1 - IQE_MAX_WEIGHT) * jnp.mean(per_comp, axis=-1)


def pairwise_logits(phi: jax.Array, psi: jax.Array, energy: str = "l2") -> jax.Array:
    """[B, d], [B, d] -> [B, B] logits f(s_i, a_i, g_j): -||phi_i - psi_j||_2 (l2), phi_i . psi_j (dot) or minus
    the MRN or IQE quasimetric (mrn, iqe: see ENERGIES)."""
    if energy == "iqe":
        return -iqe_distance(phi[:, None, :], psi[None, :, :])
    if energy == "mrn":
        (ps, pa), (gs, ga) = _mrn_split(phi), _mrn_split(psi)
        asym = jnp.max(jax.nn.relu(pa[:, None, :] - ga[None, :, :]), axis=-1)
        return pairwise_logits(ps, gs, "l2") - asym
    dots = phi @ psi.T
    if energy == "dot":
        return dots
    if energy != "l2":
        raise ConfigError(f"energy={energy!r} unknown; use one of {ENERGIES}")
    sq = jnp.sum(phi**2, axis=-1)[:, None] + jnp.sum(psi**2, axis=-1)[None, :] - 2.0 * dots
    return -safe_sqrt(sq)


def paired_energy(phi: jax.Array, psi: jax.Array, energy: str = "l2") -> jax.Array:
    """[B, d], [B, d] -> [B]: the diagonal f(s_i, a_i, g_i) only (the actor's Q)."""
    if energy == "dot":
        return jnp.sum(phi * psi, axis=-1)
    if energy == "iqe":
        return -iqe_distance(phi, psi)
    if energy == "mrn":
        (ps, pa), (gs, ga) = _mrn_split(phi), _mrn_split(psi)
        return paired_energy(ps, gs, "l2") - jnp.max(jax.nn.relu(pa - ga), axis=-1)
    if energy != "l2":
        raise ConfigError(f"energy={energy!r} unknown; use one of {ENERGIES}")
    return -safe_sqrt(jnp.sum((phi - psi) ** 2, axis=-1))


def infonce_loss(
    logits: jax.Array, logsumexp_penalty: float = 0.1, symmetric: bool = False
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Forward InfoNCE (positives on the diagonal) + penalty * mean(logsumexp_row^2); metrics as the paper logs.

    symmetric=True adds the backward (column-wise) InfoNCE term.
    """
    b = logits.shape[0]
    diag = jnp.diagonal(logits)
    lse_row = jax.nn.logsumexp(logits, axis=1)
    loss = -jnp.mean(diag - lse_row)
    if symmetric:
        loss = loss - jnp.mean(diag - jax.nn.logsumexp(logits, axis=0))
    loss = loss + logsumexp_penalty * jnp.mean(lse_row**2)
    eye = jnp.eye(b, dtype=logits.dtype)
    metrics = {
        "critic/loss": loss,
        "critic/accuracy": jnp.mean(jnp.argmax(logits, axis=1) == jnp.arange(b)),
        "critic/logits_pos": jnp.mean(diag),
        "critic/logits_neg": jnp.sum(logits * (1 - eye)) / (b * (b - 1)),
        "critic/logsumexp": jnp.mean(lse_row),
    }
    return loss, metrics


def td_infonce_loss(
    next_logits: jax.Array, goal_logits: jax.Array, target_logits: jax.Array, bootstrap: jax.Array,
    discount: float, logsumexp_penalty: float = 0.1,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """TD InfoNCE (Zheng, Eysenbach, Salakhutdinov 2024, "Contrastive Difference Predictive Coding", eq. 8):
    (1 - gamma) x InfoNCE of f(s_i, a_i, s'_j) (positives: each row's own next state) + gamma x cross-entropy of
    f(s_i, a_i, g_j) over random goals g_j against the soft labels softmax_j f_target(s'_i, a'_i, g_j) (the target
    critic one step later: the bootstrap that composes one-step segments into long paths). Rows whose next state is
    unknown (`bootstrap` 0: the last stored transition of an episode) keep only the first term. Both logit matrices
    get the logsumexp penalty. Metrics: `critic/accuracy` is the next-state classification."""
    _, metrics = infonce_loss(next_logits, 0.0)
    next_loss = metrics["critic/loss"]
    labels = jax.lax.stop_gradient(jax.nn.softmax(target_logits, axis=1))
    lse_goal = jax.nn.logsumexp(goal_logits, axis=1)
    goal_ce = -jnp.sum(labels * (goal_logits - lse_goal[:, None]), axis=1)
    goal_loss = jnp.sum(bootstrap * goal_ce) / jnp.maximum(jnp.sum(bootstrap), 1.0)
    lse_next = jax.nn.logsumexp(next_logits, axis=1)
    penalty = logsumexp_penalty * 0.5 * (jnp.mean(lse_next**2) + jnp.mean(lse_goal**2))
    loss = (1.0 - discount) * next_loss + discount * goal_loss + penalty
    return loss, {**metrics, "critic/loss": loss, "critic/next_loss": next_loss, "critic/goal_loss": goal_loss,
                  "critic/target_entropy": -jnp.mean(jnp.sum(labels * jnp.log(labels + 1e-12), axis=1))}


def actor_loss(log_prob: jax.Array, q: jax.Array, alpha: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """mean(alpha * log_pi - Q) with alpha held fixed (stop-gradient)."""
    loss = jnp.mean(jax.lax.stop_gradient(alpha) * log_prob - q)
    return loss, {"actor/loss": loss, "actor/entropy": -jnp.mean(log_prob), "actor/q": jnp.mean(q)}


def ddpg_bc_actor_loss(
    q: jax.Array, data_log_prob: jax.Array, bc_alpha: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """OGBench CRL's offline actor (impls/agents/crl.py, actor_loss='ddpgbc'): -mean(Q) / stop_grad(mean |Q|)
    - bc_alpha * mean(log pi(a_data | s, g)); no entropy term."""
    q_loss = -jnp.mean(q) / jax.lax.stop_gradient(jnp.mean(jnp.abs(q)) + 1e-6)
    bc = -jnp.mean(data_log_prob)
    loss = q_loss + bc_alpha * bc
    return loss, {"actor/loss": loss, "actor/q": jnp.mean(q), "actor/bc_log_prob": -bc, "actor/bc_alpha": bc_alpha}


def alpha_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
    """Temperature loss: alpha * (entropy - target), pushing the policy entropy towards target_entropy."""
    return jnp.exp(log_alpha) * jnp.mean(jax.lax.stop_gradient(-log_prob - target_entropy))
