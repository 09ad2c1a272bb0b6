"""Deep residual encoders and the tanh-Gaussian actor of "1000 Layer Networks for Self-Supervised RL".

Encoder: input Dense -> LayerNorm -> Swish, then depth/4 residual blocks of 4 x (Dense -> LayerNorm -> Swish) with
the block input added after the 4th activation, then a linear head. `depth` counts the Dense layers inside blocks.
Blocks are either unrolled (one parameter set per block: fastest on CPU, where slicing stacked parameters and
accumulating their gradients costs ~2x in the backward pass) or applied with `nn.scan` (parameters stacked along a
leading block axis) so compile time does not grow with depth. `scan_blocks=None` picks scan from depth 512 on.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from crl.errors import ConfigError
from crl.fused_layer import ACTS, dense_norm_act

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"swish": nn.swish, "relu": nn.relu}


def check_depth(depth: int, what: str = "depth") -> None:
    """Raise ConfigError unless depth is a positive multiple of 4 (one residual block = 4 Dense layers)."""
    if not isinstance(depth, int) or depth <= 0 or depth % 4:
        lower = 4 * (int(depth) // 4) if isinstance(depth, int | float) else 0
        near = f"{lower} or {lower + 4}" if lower >= 4 else "4"
        raise ConfigError(
            f"{what}={depth!r} is not a positive multiple of 4 (a residual block has 4 Dense layers); "
            f"use e.g. {near}"
        )


def kernel_init(scale: float) -> nn.initializers.Initializer:
    """The paper's initialiser: variance_scaling(scale, fan_in, uniform)."""
    return nn.initializers.variance_scaling(scale, "fan_in", "uniform")


SCAN_FROM_DEPTH = 512


def use_scan(depth: int, scan_blocks: bool | None) -> bool:
    """Whether blocks are scanned (explicit choice, else from depth SCAN_FROM_DEPTH on: bounded compile time)."""
    return depth >= SCAN_FROM_DEPTH if scan_blocks is None else scan_blocks


class DenseParams(nn.Module):
    """nn.Dense's parameters (same names, shapes, initialisers and RNG path) without applying them."""

    features: int
    init_scale: float = 1 / 3

    @nn.compact
    def __call__(self, d_in: int) -> tuple[jax.Array, jax.Array]:
        kernel = self.param("kernel", kernel_init(self.init_scale), (d_in, self.features), jnp.float32)
        return kernel, self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)


class LayerNormParams(nn.Module):
    """nn.LayerNorm's parameters (scale = 1, bias = 0) without applying them."""

    features: int

    @nn.compact
    def __call__(self) -> tuple[jax.Array, jax.Array]:
        scale = self.param("scale", nn.initializers.ones_init(), (self.features,), jnp.float32)
        return scale, self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)


class DenseNormAct(nn.Module):
    """Dense -> (LayerNorm) -> activation; with LayerNorm one fused function with a hand-written VJP
    (`crl.fused_layer.dense_norm_act`). Param tree as flax's Dense_0/{kernel,bias}, LayerNorm_0/{scale,bias}."""

    width: int
    layer_norm: bool = True
    activation: str = "swish"
    init_scale: float = 1 / 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel, bias = DenseParams(self.width, self.init_scale, name="Dense_0")(x.shape[-1])
        if self.layer_norm and self.activation in ACTS:
            scale, ln_bias = LayerNormParams(self.width, name="LayerNorm_0")()
            return dense_norm_act(x, kernel, bias, scale, ln_bias, self.activation)
        x = x @ kernel + bias
        if self.layer_norm:
            x = nn.LayerNorm(name="LayerNorm_0")(x)
        return ACTIVATIONS[self.activation](x)


class ResidualBlock(nn.Module):
    """4 x DenseNormAct with the block input added after the 4th activation (scan-compatible signature)."""

    width: int
    layer_norm: bool = True
    residual: bool = True
    activation: str = "swish"
    init_scale: float = 1 / 3

    @nn.compact
    def __call__(self, x: jax.Array, _: None = None) -> tuple[jax.Array, None]:
        h = x
        for _i in range(4):
            h = DenseNormAct(self.width, self.layer_norm, self.activation, self.init_scale)(h)
        return (h + x if self.residual else h), None


class ResidualEncoder(nn.Module):
    """x -> [.., out_dim]: input layer, depth/4 residual blocks (scanned), linear head."""

    depth: int
    width: int = 256
    out_dim: int = 64
    layer_norm: bool = True
    residual: bool = True
    activation: str = "swish"
    init_scale: float = 1 / 3
    scan_blocks: bool | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_depth(self.depth)
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation={self.activation!r} unknown; use one of {sorted(ACTIVATIONS)}")
        x = DenseNormAct(self.width, self.layer_norm, self.activation, self.init_scale, name="input")(x)
        args = (self.width, self.layer_norm, self.residual, self.activation, self.init_scale)
        if use_scan(self.depth, self.scan_blocks):
            blocks = nn.scan(
                ResidualBlock, variable_axes={"params": 0}, split_rngs={"params": True}, length=self.depth // 4,
            )(*args, name="blocks")
            x, _ = blocks(x, None)
        else:
            for i in range(self.depth // 4):
                x, _ = ResidualBlock(*args, name=f"block_{i}")(x)
        return nn.Dense(self.out_dim, kernel_init=kernel_init(self.init_scale), name="head")(x)


class Actor(nn.Module):
    """Goal-conditioned policy trunk: returns (mean, log_std) of the pre-tanh Gaussian, log_std in [min, max]."""

    depth: int
    action_size: int
    width: int = 256
    layer_norm: bool = True
    residual: bool = True
    activation: str = "swish"
    init_scale: float = 1 / 3
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    scan_blocks: bool | None = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = ResidualEncoder(
            self.depth, self.width, 2 * self.action_size, self.layer_norm, self.residual, self.activation,
            self.init_scale, self.scan_blocks, name="trunk",
        )(obs)
        mean, raw = jnp.split(out, 2, axis=-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (jnp.tanh(raw) + 1.0)
        return mean, log_std


def sample_tanh_gaussian(
    mean: jax.Array, log_std: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Reparameterised sample a = tanh(mean + std * eps) and its log-probability (tanh change of variables)."""
    std = jnp.exp(log_std)
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    pre = mean + std * eps
    action = jnp.tanh(pre)
    log_normal = -0.5 * eps**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
    # log(1 - tanh(x)^2) computed stably: 2 * (log 2 - x - softplus(-2x)).
    log_det = 2.0 * (jnp.log(2.0) - pre - jax.nn.softplus(-2.0 * pre))
    return action, jnp.sum(log_normal - log_det, axis=-1)


def tanh_gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """log pi(a) of given actions in [-1, 1] under the tanh-squashed Gaussian (behaviour cloning of data actions;
    actions are clipped to +-(1 - 1e-6) so the pre-image is finite)."""
    a = jnp.clip(action, -1.0 + 1e-6, 1.0 - 1e-6)
    pre = jnp.arctanh(a)
    z = (pre - mean) * jnp.exp(-log_std)
    log_normal = -0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
    log_det = 2.0 * (jnp.log(2.0) - pre - jax.nn.softplus(-2.0 * pre))
    return jnp.sum(log_normal - log_det, axis=-1)
