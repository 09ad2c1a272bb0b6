"""Residual encoders: depth contract, gradient flow at depth, ablation switches, actor bounds."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from crl.config import AgentConfig
from crl.errors import ConfigError
from crl.fused_layer import ACTS, dense_norm_act, dense_norm_act_reference
from crl.networks import ACTIVATIONS, Actor, DenseNormAct, ResidualEncoder, kernel_init


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


class _RefDenseNormAct(nn.Module):
    """The layer as flax's own modules compute it (the definition the fused DenseNormAct must match)."""

    width: int
    layer_norm: bool = True
    activation: str = "swish"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.Dense(self.width, kernel_init=kernel_init(1 / 3))(x)
        if self.layer_norm:
            x = nn.LayerNorm()(x)
        return ACTIVATIONS[self.activation](x)


def _max_rel(a: object, b: object) -> float:
    return max(float(jnp.max(jnp.abs(u - v)) / (jnp.max(jnp.abs(u)) + 1e-12))
               for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.mark.parametrize("cpu_forms", [True, False], ids=["cpu-forms", "other-backend-forms"])
@pytest.mark.parametrize(("layer_norm", "activation"), [(True, "swish"), (True, "relu"), (False, "swish")])
def test_fused_dense_norm_act_matches_flax_modules(
    layer_norm: bool, activation: str, cpu_forms: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same param tree and initial values as nn.Dense + nn.LayerNorm, same outputs, same gradients (custom VJP),
    with the XLA:CPU forms (matrix-vector row means, materialised x^T) and with the forms other backends get."""
    import crl.fused_layer

    monkeypatch.setattr(crl.fused_layer, "on_cpu_backend", lambda: cpu_forms)
    x = 3.0 * jax.random.normal(jax.random.PRNGKey(0), (64, 12)) + 1.0
    ref, fused = _RefDenseNormAct(32, layer_norm, activation), DenseNormAct(32, layer_norm, activation)
    p_ref, p_fused = ref.init(jax.random.PRNGKey(1), x), fused.init(jax.random.PRNGKey(1), x)
    assert jax.tree.structure(p_ref) == jax.tree.structure(p_fused)
    leaves = zip(jax.tree.leaves(p_ref), jax.tree.leaves(p_fused), strict=True)
    assert all(bool(jnp.array_equal(u, v)) for u, v in leaves)
    # non-trivial LayerNorm scale/bias so their gradients and the recomputed y in the backward are exercised
    p = jax.tree.map(lambda a: a + 0.3 * jax.random.normal(jax.random.PRNGKey(2), a.shape), p_ref)
    w = jax.random.normal(jax.random.PRNGKey(3), (64, 32))
    loss = lambda net: (lambda p, x: jnp.sum(jnp.sin(net.apply(p, x)) * w))
    assert jnp.allclose(ref.apply(p, x), fused.apply(p, x), atol=1e-5)
    g_ref = jax.grad(loss(ref), argnums=(0, 1))(p, x)
    g_fused = jax.jit(jax.grad(loss(fused), argnums=(0, 1)))(p, x)  # jitted: XLA fuses the custom backward
    assert _max_rel(g_ref, g_fused) < 1e-5


def test_dense_norm_act_vjp_equals_autodiff_with_leading_axes() -> None:
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 8, 6))
    ks = jax.random.split(jax.random.PRNGKey(1), 4)
    args = (jax.random.normal(ks[0], (6, 16)), jax.random.normal(ks[1], (16,)),
            1.0 + jax.random.normal(ks[2], (16,)), jax.random.normal(ks[3], (16,)))
    for act in ACTS:
        f = lambda *a, act=act: jnp.sum(jnp.cos(dense_norm_act(*a, act)))
        f_ref = lambda *a, act=act: jnp.sum(jnp.cos(dense_norm_act_reference(*a, act)))
        assert _max_rel(jax.grad(f_ref, argnums=range(5))(x, *args), jax.grad(f, argnums=range(5))(x, *args)) < 1e-5


def test_cpu_compiler_options_compile_and_give_the_same_update() -> None:
    from crl.agent import CRLAgent, cpu_compiler_options
    from crl.relabel import Batch

    agent = CRLAgent(AgentConfig(depth=4, width=32, repr_dim=8), 4, 2, 2)
    ks = jax.random.split(jax.random.PRNGKey(0), 4)
    batch = Batch(jax.random.normal(ks[0], (16, 4)), jnp.tanh(jax.random.normal(ks[1], (16, 2))),
                  jax.random.normal(ks[2], (16, 2)))
    state = agent.init(ks[3])
    opts = cpu_compiler_options()
    assert opts is not None  # the tests run on the CPU backend
    ref = jax.jit(agent.update)(state, batch, ks[0])
    out = jax.jit(agent.update, compiler_options=opts)(state, batch, ks[0])
    assert _max_rel(ref, out) < 1e-4
