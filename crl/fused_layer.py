"""Dense -> LayerNorm -> Swish/ReLU as one function with a hand-written VJP (the encoders' hidden layer).

Autodiff of flax's Dense + LayerNorm + swish keeps h, xhat, y and sigmoid(y) and differentiates every elementwise
step separately; on XLA:CPU a deep encoder's update then spends much of its time in elementwise passes.
`dense_norm_act` saves only h = x @ kernel + bias and the row statistics (mean, 1/std) -- plus the layer input,
which the weight gradient needs anyway -- so the forward writes one activation per layer, recomputes xhat, y and
sigmoid(y) in the backward, and writes the LayerNorm backward in its closed form
    dh = rstd * (dxh - mean(dxh) - xhat * mean(dxh * xhat)),   dxh = scale * dact(y).
The backward reads its residuals through an optimization barrier: otherwise XLA merges its sigmoid with the
forward's and keeps sigmoid(y) as one more stored array per layer.
Row means (LayerNorm statistics and its backward) and column sums (bias / scale gradients) are products with a
constant vector: XLA:CPU splits a row reduction into a reduce-window and a reduce, two multi-threaded ops per mean,
while a matrix-vector product is one library call. The weight gradient multiplies a materialised x^T, which moves
it from Eigen to YNNPACK. Both are XLA:CPU remedies, chosen when the default backend is the CPU at trace time;
elsewhere (GPU, where XLA fuses reductions into the elementwise kernels and cuBLAS takes transposed operands) the
plain forms are used. What each choice gained: bench/RESULTS.md, "CRL SGD step" and its follow-ups.
Values equal flax's (`nn.Dense`, `nn.LayerNorm(epsilon=1e-6)`, `nn.swish`) up to float reassociation.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from crl.backend import on_cpu_backend

LN_EPS = 1e-6  # flax nn.LayerNorm's default epsilon
ACTS = ("swish", "relu")


def _act(y: jax.Array, act: str) -> jax.Array:
    return y * jax.nn.sigmoid(y) if act == "swish" else jnp.maximum(y, 0.0)


def _row_dot(a: jax.Array, w: jax.Array) -> jax.Array:
    """sum(a * w, axis=-1, keepdims=True); a matrix-vector product on the CPU (one op instead of two)."""
    return (a @ w)[..., None] if on_cpu_backend() else jnp.sum(a * w, axis=-1, keepdims=True)


def _row_mean(a: jax.Array) -> jax.Array:
    """Mean over the last axis, keepdims."""
    return _row_dot(a, jnp.full((a.shape[-1],), 1.0 / a.shape[-1], a.dtype))


def _col_sum(a: jax.Array) -> jax.Array:
    """Sum over every axis but the last; a vector-matrix product on the CPU."""
    rows = a.reshape(-1, a.shape[-1])
    return jnp.ones((rows.shape[0],), a.dtype) @ rows if on_cpu_backend() else jnp.sum(rows, axis=0)


def _stats(h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Row mean and 1/std of flax's LayerNorm (fast variance E[h^2] - E[h]^2, clamped at 0)."""
    mean = _row_mean(h)
    var = jnp.maximum(_row_mean(h * h) - mean * mean, 0.0)
    return mean, jax.lax.rsqrt(var + LN_EPS)


def dense_norm_act_reference(
    x: jax.Array, kernel: jax.Array, bias: jax.Array, scale: jax.Array, ln_bias: jax.Array, act: str = "swish"
) -> jax.Array:
    """act(LayerNorm(x @ kernel + bias)) with plain autodiff (the definition `dense_norm_act` must match)."""
    h = x @ kernel + bias
    mean, rstd = _stats(h)
    return _act((h - mean) * rstd * scale + ln_bias, act)


@partial(jax.custom_vjp, nondiff_argnums=(5,))
def dense_norm_act(
    x: jax.Array, kernel: jax.Array, bias: jax.Array, scale: jax.Array, ln_bias: jax.Array, act: str = "swish"
) -> jax.Array:
    """act(LayerNorm(x @ kernel + bias) * scale + ln_bias) for x [..., d_in]; act is 'swish' or 'relu'."""
    return dense_norm_act_reference(x, kernel, bias, scale, ln_bias, act)


def _fwd(x, kernel, bias, scale, ln_bias, act):
    h = x @ kernel + bias
    mean, rstd = _stats(h)
    return _act((h - mean) * rstd * scale + ln_bias, act), (x, kernel, h, mean, rstd, scale, ln_bias)


def _bwd(act, res, g):
    x, kernel, h, mean, rstd, scale, ln_bias = res
    h, mean, rstd = jax.lax.optimization_barrier((h, mean, rstd))  # recompute, do not reuse the forward's values
    xhat = (h - mean) * rstd
    y = xhat * scale + ln_bias
    if act == "swish":
        s = jax.nn.sigmoid(y)
        dy = g * (s * (1.0 + y * (1.0 - s)))
    else:
        dy = jnp.where(y > 0, g, 0.0)
    dy_xhat = dy * xhat
    d_scale = _col_sum(dy_xhat)
    d_ln_bias = _col_sum(dy)
    # dxh = dy * scale; its row means are dy @ (scale / n) and (dy * xhat) @ (scale / n): products with arrays that
    # exist anyway, so dxh and dxh * xhat are never written out
    w = scale / dy.shape[-1]
    dh = rstd * (dy * scale - _row_dot(dy, w) - xhat * _row_dot(dy_xhat, w))
    x2, dh2 = x.reshape(-1, x.shape[-1]), dh.reshape(-1, dh.shape[-1])
    # x^T materialised (the barrier stops XLA from folding the transpose back into the dot): XLA:CPU sends a dot
    # that contracts both operands' leading axis to Eigen (slower than its matmuls) but this one to YNNPACK
    d_kernel = (jax.lax.optimization_barrier(x2.T) if on_cpu_backend() else x2.T) @ dh2
    d_bias = _col_sum(dh2)
    dx = dh @ kernel.T
    return dx, d_kernel, d_bias, d_scale, d_ln_bias


dense_norm_act.defvjp(_fwd, _bwd)
