"""SGD-step throughput of the CRL update (critic + actor + alpha) vs a plain flax implementation, as FLOP/s ratios.

    python bench/bench_sgd.py [--depths 4 16 64 256] [--batches 256 512 1024] [--steps 4]

For each (depth, batch) both implementations run `--steps` updates inside one jitted `lax.scan` (as in training;
the state is donated and carried from call to call), timed alternately (`--rounds`, best of) so load from other
processes hits both alike. crl's update is compiled as the trainer compiles it, with `crl.agent.cpu_compiler_options()`;
`--ablate-options` adds crl without them and the plain version with them (what the options alone bring).
Work is the recipe's matmul FLOPs, counted analytically and identically for both (critic phi/psi forward+backward,
actor forward+backward, phi forward+input-gradient for the actor's Q, the B x B logits matmul): FLOP/s = work / time,
reported as a fraction of this machine's XLA matmul FLOP/s (a 2048 x 2048 f32 matmul measured in the same run).

The plain version is what one writes first: unrolled Python loop of flax Dense/LayerNorm layers, logits from the
[B, B, d] pairwise-difference tensor (`jnp.linalg.norm(phi[:, None] - psi[None], axis=-1)`), separate critic and
actor passes (psi recomputed). Width 256, representation 64, point-maze sizes (state 4, action 2, goal 2).
"""

from __future__ import annotations

import argparse
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from crl.agent import CRLAgent
from crl.backend import cpu_compiler_options
from crl.config import AgentConfig
from crl.networks import kernel_init, sample_tanh_gaussian
from crl.relabel import Batch

STATE, ACTION, GOAL, WIDTH, REPR = 4, 2, 2, 256, 64


def matmul_flops_per_s(n: int = 2048, reps: int = 10) -> float:
    """Best-of XLA f32 matmul throughput for an n x n x n product."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
    f = jax.jit(lambda x, y: x @ y)
    f(a, a).block_until_ready()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f(a, a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def work_flops(depth: int, batch: int) -> float:
    """Matmul FLOPs of one update (same count for both implementations)."""
    enc = lambda d_in, d_out: 2 * batch * (d_in * WIDTH + depth * WIDTH * WIDTH + WIDTH * d_out)
    f_sa, f_g, f_a = enc(STATE + ACTION, REPR), enc(GOAL, REPR), enc(STATE + GOAL, 2 * ACTION)
    logits = 2 * batch * batch * REPR
    return 3 * (f_sa + f_g + logits) + 3 * f_a + 2 * f_sa + f_g


# ---- the plain implementation ----------------------------------------------------------------------------------
class PlainEncoder(nn.Module):
    depth: int
    out: int

    @nn.compact
    def __call__(self, x):
        x = nn.swish(nn.LayerNorm()(nn.Dense(WIDTH, kernel_init=kernel_init(1 / 3))(x)))
        for _ in range(self.depth // 4):
            h = x
            for _ in range(4):
                h = nn.swish(nn.LayerNorm()(nn.Dense(WIDTH, kernel_init=kernel_init(1 / 3))(h)))
            x = x + h
        return nn.Dense(self.out, kernel_init=kernel_init(1 / 3))(x)


def make_plain(depth: int):
    sa, g, actor = PlainEncoder(depth, REPR), PlainEncoder(depth, REPR), PlainEncoder(depth, 2 * ACTION)
    tx = optax.adam(3e-4)

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        params = {
            "sa": sa.init(k1, jnp.zeros((1, STATE + ACTION))), "g": g.init(k2, jnp.zeros((1, GOAL))),
            "actor": actor.init(k3, jnp.zeros((1, STATE + GOAL))), "log_alpha": jnp.zeros(()),
        }
        return params, tx.init({"c": (params["sa"], params["g"])}), tx.init(params["actor"]), tx.init(
            params["log_alpha"])

    def update(carry, batch, key):
        params, c_opt, a_opt, al_opt = carry

        def critic_loss(c):
            phi = sa.apply(c[0], jnp.concatenate([batch.state, batch.action], -1))
            psi = g.apply(c[1], batch.goal)
            logits = -jnp.linalg.norm(phi[:, None, :] - psi[None, :, :], axis=-1)
            lse = jax.nn.logsumexp(logits, axis=1)
            return -jnp.mean(jnp.diag(logits) - lse) + 0.1 * jnp.mean(lse**2)

        def actor_loss(a_params):
            out = actor.apply(a_params, jnp.concatenate([batch.state, batch.goal], -1))
            mean, raw = jnp.split(out, 2, -1)
            log_std = -5 + 3.5 * (jnp.tanh(raw) + 1)
            act, logp = sample_tanh_gaussian(mean, log_std, key)
            phi = sa.apply(params["sa"], jnp.concatenate([batch.state, act], -1))
            psi = g.apply(params["g"], batch.goal)
            q = -jnp.linalg.norm(phi - psi, axis=-1)
            return jnp.mean(jnp.exp(params["log_alpha"]) * logp - q), logp

        c_grad = jax.grad(critic_loss)((params["sa"], params["g"]))
        a_grad, logp = jax.grad(actor_loss, has_aux=True)(params["actor"])
        al_grad = jax.grad(lambda la: jnp.exp(la) * jnp.mean(-logp + 0.5 * ACTION))(params["log_alpha"])
        upd, c_opt = tx.update({"c": c_grad}, c_opt)
        (sa_p, g_p) = optax.apply_updates((params["sa"], params["g"]), upd["c"])
        upd, a_opt = tx.update(a_grad, a_opt)
        upd_al, al_opt = tx.update(al_grad, al_opt)
        params = {"sa": sa_p, "g": g_p, "actor": optax.apply_updates(params["actor"], upd),
                  "log_alpha": params["log_alpha"] + upd_al}
        return (params, c_opt, a_opt, al_opt), logp.mean()

    return init, update


def make_batch(batch: int) -> Batch:
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    return Batch(jax.random.normal(k1, (batch, STATE)), jnp.tanh(jax.random.normal(k2, (batch, ACTION))),
                 jax.random.normal(k3, (batch, GOAL)))


def compile_scan(update, carry, batch: Batch, steps: int, compiler_options: dict[str, str] | None = None):
    """A zero-arg callable running `steps` updates inside one jitted lax.scan (compiled here, as in training).

    The state is donated and threaded from call to call, as a training loop carries it: without donation every call
    first copies the whole state (params + both Adam moments, ~150 MB at depth 64) into the loop's buffers, a cost
    a training run pays once per epoch, not once per `steps` updates. `carry` is consumed."""
    run = jax.jit(lambda c, k: jax.lax.scan(lambda c, k: update(c, batch, k), c, jax.random.split(k, steps)),
                  donate_argnums=0, compiler_options=compiler_options)
    state = [jax.block_until_ready(run(carry, jax.random.PRNGKey(0))[0])]

    def call() -> None:
        state[0] = jax.block_until_ready(run(state[0], jax.random.PRNGKey(1))[0])

    return call


def best_interleaved(fns: list, rounds: int) -> list[float]:
    """Best wall time of each callable, run alternately `rounds` times (shared machines: noise hits all alike)."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, f in enumerate(fns):
            t = time.perf_counter()
            f()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depths", type=int, nargs="+", default=[4, 16, 64, 256])
    ap.add_argument("--batches", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (best of)")
    ap.add_argument("--skip-plain", action="store_true", help="only time crl's update")
    ap.add_argument("--ablate-options", action="store_true",
                    help="also time crl's update without crl.agent.cpu_compiler_options() (column crl-noopt) and the "
                         "plain update with them (column plain+opt)")
    args = ap.parse_args()
    peak = matmul_flops_per_s()
    print(f"device: {jax.devices()[0].device_kind}; matmul 2048^3 at start: {peak / 1e9:.1f} GFLOP/s")
    rows = []
    opts = cpu_compiler_options()  # crl's update is timed as the trainer compiles it
    for depth in args.depths:
        agent = CRLAgent(AgentConfig(depth=depth), STATE, ACTION, GOAL)
        plain_init, plain_update = make_plain(depth)
        for b in args.batches:
            batch = make_batch(b)
            fns = [compile_scan(agent.update, agent.init(jax.random.PRNGKey(0)), batch, args.steps, opts)]
            if args.ablate_options:
                fns.append(compile_scan(agent.update, agent.init(jax.random.PRNGKey(0)), batch, args.steps))
            if not args.skip_plain:
                if args.ablate_options:
                    fns.append(compile_scan(plain_update, plain_init(jax.random.PRNGKey(0)), batch, args.steps, opts))
                fns.append(compile_scan(plain_update, plain_init(jax.random.PRNGKey(0)), batch, args.steps))
            times = [t / args.steps for t in best_interleaved(fns, args.rounds)]
            peak = max(peak, matmul_flops_per_s(reps=3))  # best matmul seen in this run = the roofline
            rows.append((depth, b, times))
            print(f"depth {depth} batch {b}: " + " / ".join(f"{t * 1e3:.1f} ms" for t in times), flush=True)
    names = (["crl"] + ["crl-noopt"] * args.ablate_options
             + (["plain+opt"] * args.ablate_options + ["plain"]) * (not args.skip_plain))
    print(f"\nroofline = best XLA matmul 2048^3 seen in this run: {peak / 1e9:.1f} GFLOP/s")
    print(f"{'depth':>5} {'batch':>5} | " + " | ".join(f"{n + ' ms':>11} {'GFLOP/s':>8} {'/peak':>6}" for n in names)
          + (" | speedup" if "plain" in names else ""))
    for depth, b, times in rows:
        work = work_flops(depth, b)
        line = f"{depth:>5} {b:>5} | " + " | ".join(
            f"{t * 1e3:>11.1f} {work / t / 1e9:>8.1f} {work / t / peak:>6.2f}" for t in times)
        if "plain" in names:
            line += f" | {times[-1] / times[0]:.2f}x"
        print(line)
    print("(FLOP/s = the recipe's matmul FLOPs / time; speedup = plain time / crl time)")


if __name__ == "__main__":
    main()
