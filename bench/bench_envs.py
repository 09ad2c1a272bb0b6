"""Env steps per second of the MJX maze envs against single-thread C MuJoCo stepping the same model.

    python bench/bench_envs.py                       # point, ant, humanoid at batch 1, 64, 256 (+1024 point)
    python bench/bench_envs.py --family humanoid --batch 32 --steps 20

For each (family, batch) it jits `steps` vmapped env steps inside one `lax.scan` (random actions), runs it once
to compile, then times `--repeat` runs. The baseline is plain C MuJoCo (`mujoco.mj_step`, one thread) stepping
the same MjModel with the same substeps per env step, measured in the same process; the ratio printed is
MJX env steps/s divided by C MuJoCo env steps/s. Environment variables such as XLA_FLAGS apply as usual.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import mujoco
import numpy as np

from crl.envs import make
from crl.envs.wrappers import AutoReset

DEFAULT_BATCHES = {"point": (1, 64, 256, 1024), "ant": (1, 64, 256), "humanoid": (1, 64, 256)}


def c_mujoco_steps_per_s(env, seconds: float = 2.0) -> float:
    """Env steps/s of single-thread C MuJoCo on the env's MjModel (random controls, substeps per env step)."""
    m = env.mj_model
    d = mujoco.MjData(m)
    mujoco.mj_resetData(m, d)
    if m.nkey:
        mujoco.mj_resetDataKeyframe(m, d, 0)
    rng = np.random.default_rng(0)
    lo, hi = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
    substeps, n, start = env.config.substeps, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        d.ctrl[:] = rng.uniform(lo, hi)
        for _ in range(substeps):
            mujoco.mj_step(m, d)
        n += 1
        if n % 200 == 0:  # keep the ant / humanoid in a sane state (they fall over)
            mujoco.mj_resetData(m, d)
            if m.nkey:
                mujoco.mj_resetDataKeyframe(m, d, 0)
    return n / (time.perf_counter() - start)


def mjx_steps_per_s(env, batch: int, steps: int, repeat: int, autoreset: bool = False) -> tuple[float, float]:
    """(env steps/s, compile seconds) of `steps` vmapped steps (or AutoReset steps) in one jitted scan."""
    if autoreset:
        wrapped = AutoReset(env, batch)
        reset, step = wrapped.reset, wrapped.step
    else:
        reset = lambda k: jax.vmap(env.reset)(jax.random.split(k, batch))  # noqa: E731
        step = jax.vmap(env.step)

    @jax.jit
    def run(key: jax.Array) -> jax.Array:
        k_reset, k_act = jax.random.split(key)
        state = reset(k_reset)

        def body(s, k):
            a = jax.random.uniform(k, (batch, env.action_size), minval=-1.0, maxval=1.0)
            return step(s, a), None

        state, _ = jax.lax.scan(body, state, jax.random.split(k_act, steps))
        return state.obs

    t0 = time.perf_counter()
    run(jax.random.PRNGKey(0)).block_until_ready()
    compile_s = time.perf_counter() - t0
    best = np.inf
    for i in range(repeat):
        t0 = time.perf_counter()
        run(jax.random.PRNGKey(i + 1)).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return batch * steps / best, compile_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=sorted(DEFAULT_BATCHES), help="repeatable")
    parser.add_argument("--batch", type=int, action="append", help="repeatable; default per family")
    parser.add_argument("--layout", default="u")
    parser.add_argument("--steps", type=int, default=100, help="env steps per timed run (humanoid: 20)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--autoreset", action="store_true", help="time the AutoReset wrapper's step instead")
    parser.add_argument("--episode-length", type=int, default=1000)
    parser.add_argument("--pin-one-core", action="store_true",
                        help="os.sched_setaffinity to one core before JAX starts (same effect as taskset -c 0)")
    args = parser.parse_args()
    if args.pin_one_core:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {len(os.sched_getaffinity(0))} CPUs usable, "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print(f"{'env':<22}{'batch':>6}{'mjx steps/s':>14}{'C steps/s':>12}{'ratio':>8}{'compile s':>11}")
    for family in args.family or ["point", "ant", "humanoid"]:
        env = make(f"{family}_{args.layout}_maze", episode_length=args.episode_length)
        base = c_mujoco_steps_per_s(env)
        steps = args.steps if family != "humanoid" or args.steps != 100 else 20
        for batch in args.batch or DEFAULT_BATCHES[family]:
            rate, comp = mjx_steps_per_s(env, batch, steps, args.repeat, args.autoreset)
            print(f"{env.spec.name:<22}{batch:>6}{rate:>14,.0f}{base:>12,.0f}{rate / base:>8.2f}{comp:>11.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
