"""Residual encoders: depth contract, gradient flow at depth, ablation switches, actor bounds."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from crl.config import AgentConfig
from crl.errors import ConfigError
from crl.networks import Actor, ResidualEncoder


def first_layer_grad(depth: int, width: int, **kw) -> jax.Array:
    net = ResidualEncoder(depth=depth, width=width, out_dim=16, **kw)
    x = jax.random.normal(jax.random.PRNGKey(0), (32, 8))
    params = net.init(jax.random.PRNGKey(1), x)
    g = jax.grad(lambda p: jnp.mean(net.apply(p, x) ** 2))(params)
    return g["params"]["input"]["Dense_0"]["kernel"]


@pytest.mark.parametrize(("depth", "width", "scan"), [(64, 256, None), (256, 16, True)])
def test_deep_encoder_first_layer_gradient_is_finite_and_nonzero(depth: int, width: int, scan: bool | None) -> None:
    g = first_layer_grad(depth, width, scan_blocks=scan)
    assert bool(jnp.all(jnp.isfinite(g)))
    assert float(jnp.abs(g).mean()) > 1e-8


def test_scan_and_unrolled_blocks_compute_the_same_function() -> None:
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 5))
    scanned = ResidualEncoder(depth=8, width=32, out_dim=3, scan_blocks=True)
    unrolled = ResidualEncoder(depth=8, width=32, out_dim=3, scan_blocks=False)
    p = scanned.init(jax.random.PRNGKey(1), x)["params"]
    blocks = p["blocks"]
    p_unrolled = {"input": p["input"], "head": p["head"],
                  **{f"block_{i}": jax.tree.map(lambda a, i=i: a[i], blocks) for i in range(2)}}
    assert jnp.allclose(scanned.apply({"params": p}, x), unrolled.apply({"params": p_unrolled}, x), atol=1e-5)


@pytest.mark.parametrize("depth", [0, 3, 6, -4])
def test_depth_must_be_positive_multiple_of_four(depth: int) -> None:
    with pytest.raises(ConfigError, match="multiple of 4"):
        ResidualEncoder(depth=depth).init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    with pytest.raises(ConfigError, match="multiple of 4"):
        AgentConfig(depth=depth).validate()


def test_ablation_switches_change_the_network() -> None:
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 5))
    outs = []
    for kw in [{}, {"layer_norm": False}, {"residual": False}, {"activation": "relu"}]:
        net = ResidualEncoder(depth=4, width=16, out_dim=3, **kw)
        outs.append(net.apply(net.init(jax.random.PRNGKey(1), x), x))
    for o in outs[1:]:
        assert not jnp.allclose(o, outs[0])
    no_ln = ResidualEncoder(depth=4, width=16, out_dim=3, layer_norm=False).init(jax.random.PRNGKey(1), x)
    assert "LayerNorm_0" not in no_ln["params"]["input"]


def test_actor_log_std_is_bounded() -> None:
    actor = Actor(depth=4, action_size=3, width=16)
    x = 100.0 * jax.random.normal(jax.random.PRNGKey(0), (64, 5))
    mean, log_std = actor.apply(actor.init(jax.random.PRNGKey(1), x), x)
    assert mean.shape == (64, 3)
    assert float(log_std.min()) >= -5.0 and float(log_std.max()) <= 2.0
