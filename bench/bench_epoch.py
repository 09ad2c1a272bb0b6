"""Online epoch cost of the cpu preset by number of training envs: what one `Trainer.epoch` (unroll, replay insert,
`sgd_steps` updates) costs at the preset's 256 envs against 64 (the previous default; the baseline), same run.

    python bench/bench_epoch.py [--envs 64 256 512] [--epochs 6] [--rounds 3]

Every variant is the cpu preset with `num_envs` changed (replay sized to hold 100 epochs, as the preset's does),
seed 0, on point_u_maze. Each is built, compiled and warmed for 3 epochs (past the prefill epoch), then timed
alternately (the order flips every round): `--rounds` rounds of `--epochs` epochs each, best round kept. Printed:
ms per epoch, env steps/s, SGD steps/s and the epoch time as a ratio to the first variant (the baseline). Learning
per epoch is measured by training runs (README ## Training), not here. The machine (CPU model, cores, AVX-512) and
the load average are printed; run it pinned (`taskset -c 0`) to compare with one-core figures.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
from bench_offline import machine

from crl import enable_compile_cache
from crl.config import TrainConfig
from crl.train import Trainer


def build(num_envs: int) -> tuple[Trainer, object]:
    """A warmed trainer and state for the cpu preset at `num_envs` envs."""
    base = TrainConfig.preset("cpu")
    per_epoch = num_envs * base.unroll_length
    cfg = base.replace(num_envs=num_envs, replay_size=100 * per_epoch, total_env_steps=100 * per_epoch)
    trainer = Trainer(cfg)
    state = trainer.init(jax.random.PRNGKey(0))
    for _ in range(3):
        state, _, _ = trainer.epoch(state)
    jax.block_until_ready(state)
    return trainer, state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--envs", type=int, nargs="+", default=[64, 256, 512], help="num_envs values; first = baseline")
    ap.add_argument("--epochs", type=int, default=6, help="epochs per timed round")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (best kept)")
    a = ap.parse_args()
    enable_compile_cache()
    print(machine(), f"| load {os.getloadavg()[0]:.2f}")
    variants = {n: build(n) for n in a.envs}
    best = {n: float("inf") for n in a.envs}
    for r in range(a.rounds):
        for n in a.envs if r % 2 == 0 else reversed(a.envs):
            trainer, state = variants[n]
            t = time.perf_counter()
            for _ in range(a.epochs):
                state, _, _ = trainer.epoch(state)
            jax.block_until_ready(state)
            best[n] = min(best[n], (time.perf_counter() - t) / a.epochs)
            variants[n] = (trainer, state)
    base, preset = best[a.envs[0]], TrainConfig.preset("cpu")
    print("| envs | env steps / epoch | ms / epoch | env steps/s | SGD steps/s | epoch time vs baseline |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in a.envs:
        steps = n * preset.unroll_length
        print(f"| {n} | {steps:,} | {1000 * best[n]:.0f} | {steps / best[n]:,.0f} | "
              f"{preset.learner.sgd_steps / best[n]:.0f} | "
              f"{best[n] / base:.2f} |")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
