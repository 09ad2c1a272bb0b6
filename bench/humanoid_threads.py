"""Humanoid batch-size investigation: time `--steps` batched humanoid env steps (after compiling) under one
thread-pool setting, optionally with JaxGCRL-style dense collisions (every body geom collides with the floor,
the walls and other bodies) instead of crl's minimal collision set.

    python bench/humanoid_threads.py --batch 32                      # crl humanoid, default XLA thread pool
    python bench/humanoid_threads.py --batch 32 --dense-contacts     # JaxGCRL-like contact set
    taskset -c 0 python bench/humanoid_threads.py --batch 32 --dense-contacts
    XLA_FLAGS=--xla_cpu_multi_thread_eigen=false python bench/humanoid_threads.py --batch 32 --dense-contacts

Prints one line: settings, candidate collision pairs, compile seconds, env steps/s (best of --repeat) and the
process CPU seconds per wall second of that run (how many cores it kept busy).
Results and the conclusion are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp

from crl.envs import make
from crl.envs.humanoid import HumanoidMaze


class DenseContactHumanoid(HumanoidMaze):
    """The same humanoid with every geom in collision class 1|2 against everything (no contype filtering)."""

    def _xml(self) -> str:
        xml = super()._xml()
        xml = xml.replace('<geom contype="0" conaffinity="0"', '<geom contype="3" conaffinity="3"')
        return xml.replace('contype="2"', 'contype="3" conaffinity="3"')


def main() -> None:
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser("~/.cache/crl/jax"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    parser.add_argument("--layout", default="u")
    parser.add_argument("--dense-contacts", action="store_true")
    parser.add_argument("--iterations", type=int, default=1, help="Newton solver iterations")
    parser.add_argument("--python-loop", action="store_true",
                        help="time a Python loop over a jitted batched step instead of one jitted lax.scan")
    args = parser.parse_args()
    base = make(f"humanoid_{args.layout}_maze", solver_iterations=args.iterations)
    env = DenseContactHumanoid(base.config, base.spec.name) if args.dense_contacts else base
    from mujoco.mjx._src import collision_driver  # noqa: PLC0415 - introspection only

    try:
        n_pairs = sum(len(v) for v in collision_driver._geom_groups(env.mj_model).values())
    except Exception:  # noqa: BLE001 - private API, informative only
        n_pairs = -1

    @jax.jit
    def run(key: jax.Array) -> jax.Array:
        state = jax.vmap(env.reset)(jax.random.split(key, args.batch))

        def body(s, k):
            a = jax.random.uniform(k, (args.batch, env.action_size), minval=-1.0, maxval=1.0)
            return jax.vmap(env.step)(s, a), None

        state, _ = jax.lax.scan(body, state, jax.random.split(key, args.steps))
        return state.obs

    if args.python_loop:
        step = jax.jit(jax.vmap(env.step))
        state0 = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), args.batch))
        actions = jnp.zeros((args.batch, env.action_size))

        def run(key: jax.Array) -> jax.Array:  # noqa: F811 - same contract as the scan version
            state = state0
            for _ in range(args.steps):
                state = step(state, actions)
            return state.obs

        t0 = time.perf_counter()
        run(jax.random.PRNGKey(0)).block_until_ready()
        compiled = run
    else:
        t0 = time.perf_counter()
        compiled = run.lower(jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - t0
    compiled(jax.random.PRNGKey(0)).block_until_ready()  # warm-up run
    run_s, cpu_s = float("inf"), 0.0
    for i in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = compiled(jax.random.PRNGKey(i + 1)).block_until_ready()
        if time.perf_counter() - t0 < run_s:
            run_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    affinity = len(os.sched_getaffinity(0))
    loop = "python" if args.python_loop else "scan"
    print(f"batch={args.batch} loop={loop} dense_contacts={args.dense_contacts} iterations={args.iterations} "
          f"cpus={affinity} "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r} pairs={n_pairs} compile_s={compile_s:.1f} "
          f"steps_per_s={args.batch * args.steps / run_s:,.0f} cpu_per_wall={cpu_s / run_s:.2f} "
          f"nan={bool(jnp.isnan(out).any())}", flush=True)


if __name__ == "__main__":
    main()
