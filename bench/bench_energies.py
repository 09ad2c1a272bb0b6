"""Critic energies' cost: the B x B logits and their gradient for each `--energy`, as ratios against the L2 energy
timed in the same run.

    python bench/bench_energies.py [--batches 256 1024] [--repr-dim 64] [--rounds 5] [--calls 5]

For each batch size, each energy's `pairwise_logits(phi, psi, energy)` is jitted with its gradient (the critic's
logsumexp over rows, differentiated in phi and psi: what an SGD step pays for the energy), then timed alternately
(`--rounds`, best of; `--calls` calls per timing) so load from other processes hits all alike. 'iqe-sort' is the
Interval Quasimetric Embedding with the union of intervals measured by sorting the 2m endpoints (the textbook
sweep), the way `crl.losses.interval_union_length` does not: the ratio says why.
The machine (CPU model, cores, AVX-512) is printed: quote it with the figures.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
from bench_offline import machine

from crl.losses import ENERGIES, IQE_COMPONENT_DIM, IQE_MAX_WEIGHT, pairwise_logits


def union_length_by_sorting(lo: jax.Array, hi: jax.Array) -> jax.Array:
    """The sweep over sorted endpoints: +1 at a start, -1 at an end, gaps counted where the cover is positive."""
    hi = jnp.maximum(lo, hi)
    points = jnp.concatenate([lo, hi], axis=-1)
    steps = jnp.concatenate([jnp.ones_like(lo), -jnp.ones_like(hi)], axis=-1)
    order = jnp.argsort(points, axis=-1)
    points = jnp.take_along_axis(points, order, axis=-1)
    cover = jnp.cumsum(jnp.take_along_axis(steps, order, axis=-1), axis=-1)
    return jnp.sum((points[..., 1:] - points[..., :-1]) * (cover[..., :-1] > 0), axis=-1)


def iqe_sort_logits(phi: jax.Array, psi: jax.Array) -> jax.Array:
    """Minus IQE over all pairs, with the sorting sweep."""
    b, d = phi.shape
    comps = (b, psi.shape[0], d // IQE_COMPONENT_DIM, IQE_COMPONENT_DIM)
    lo = jnp.broadcast_to(phi[:, None, :], (b, psi.shape[0], d)).reshape(comps)
    hi = jnp.broadcast_to(psi[None, :, :], (b, psi.shape[0], d)).reshape(comps)
    per = union_length_by_sorting(lo, hi)
    return -(IQE_MAX_WEIGHT * per.max(-1) + (1 - IQE_MAX_WEIGHT) * per.mean(-1))


def timed(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call of fn (results blocked on)."""
    t0 = time.perf_counter()
    for _ in range(calls):
        jax.block_until_ready(fn())
    return (time.perf_counter() - t0) / calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[256])
    ap.add_argument("--repr-dim", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    for batch in args.batches:
        kp, kg = jax.random.split(jax.random.PRNGKey(0))
        phi = jax.random.normal(kp, (batch, args.repr_dim))
        psi = jax.random.normal(kg, (batch, args.repr_dim))
        logits: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
            e: (lambda p, q, e=e: pairwise_logits(p, q, e)) for e in ENERGIES}
        logits["iqe-sort"] = iqe_sort_logits
        fns = {}
        for name, f in logits.items():
            step = jax.jit(jax.value_and_grad(lambda p, q, f=f: jax.nn.logsumexp(f(p, q), axis=1).sum(),
                                              argnums=(0, 1)))
            jax.block_until_ready(step(phi, psi))  # compile
            fns[name] = lambda step=step, phi=phi, psi=psi: step(phi, psi)
        best = {name: float("inf") for name in fns}
        for r in range(args.rounds):
            for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
                best[name] = min(best[name], timed(fns[name], args.calls))
        base = best["l2"]
        print(f"batch {batch}, repr {args.repr_dim}: logits + gradient, best of {args.rounds}")
        for name, sec in best.items():
            print(f"  {name:9s} {sec * 1e3:9.2f} ms   x{sec / base:8.1f} of l2")


if __name__ == "__main__":
    main()
