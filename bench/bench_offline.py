"""Offline training speed: the real offline trainer (what `crl-train offline` runs each epoch) against the same
learner's SGD scan on a batch already on the device (bench_sgd's rate), measured in the same run.

    python bench/bench_offline.py [--quick] [--depths 4 64] [--batch 256] [--rounds 3] [--sgd-steps N]

A real dataset is collected first into a temporary data root: the oracle policy with Gaussian action noise 0.2 on
point_u_maze, a new goal whenever one is reached (`crl-data collect --env point_u_maze --policy oracle
--action-noise 0.2 --goal-schedule navigate --env-steps 32000`; `--root` and `--dataset` reuse one instead).
For each depth (width 256, `--batch`, everything else OfflineConfig's defaults: DDPG+BC at 0.03, all-future goals):
- offline: a `crl.offline.OfflineRunner` built as `crl-train offline` builds it (evaluation off). One timed epoch is
  what `crl.loop.drive` does per epoch: `runner.epoch(state, i)` (the WindowCursor's window, then the jitted epoch:
  `Learner.sgd`'s scan drawing every batch on the device from the window with the loader's relabelling sampler,
  the divergence check and `Learner.after_epoch`), then the metrics fetched to the host (`crl.metrics.to_host`).
- device batch: the same Learner's `Learner.sgd` scan over one fixed relabelled batch, drawn once from the same
  window and passed as an argument (its sample_fn returns it), state donated, as bench_sgd / bench_loader do.
Both are compiled with `crl.agent.cpu_compiler_options()` (JAX's persistent cache on, as in crl-train) before
timing and timed alternately (the order flips every round): `--rounds` rounds of `--epochs` epochs each, best of.
An epoch is `--sgd-steps` SGD steps (default: the offline default, 500, up to depth 16; 32 deeper, where one step
takes ~0.3-1 s on a 2-core CPU). The ratio is device ms / offline ms per SGD step: 1 = the offline trainer costs
nothing over the bare update (goal >= 0.9).
The machine (CPU model, cores, AVX-512) and the load average at start and end are printed: on a shared box the
absolute times move with the load; the alternation lets load hit both variants alike.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax

from crl import enable_compile_cache
from crl.agent import cpu_compiler_options
from crl.datasets import DatasetStore
from crl.metrics import to_host
from crl.offline import OfflineConfig, OfflineRunner


def machine() -> str:
    """CPU model, core count and AVX-512 support (from /proc/cpuinfo), and the JAX device."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = info.get("model name", platform.processor() or "unknown CPU")
    avx512 = "yes" if "avx512f" in info.get("flags", "").split() else "no"
    return (f"{model}, {os.cpu_count()} cores, AVX-512 {avx512}; JAX {jax.__version__} on "
            f"{jax.devices()[0].device_kind}")


def load() -> str:
    """The load average, for the record."""
    return "load average {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg())


def collect_dataset(root: str, env_steps: int) -> str:
    """Collect the oracle point_u_maze dataset into `root` (crl-data collect's code path); returns its id."""
    from crl.pipelines.collection import run_collection
    from crl.pipelines.collector import CollectConfig

    config = CollectConfig(env="point_u_maze", policy="oracle", action_noise=0.2, goal_schedule="navigate",
                           env_steps=env_steps, dataset="bench/u-oracle")
    return run_collection(config, DatasetStore(root), show_progress=False)["id"]


class Pair:
    """The two variants of one depth, each holding its own learner state: `run_offline(n)` / `run_device(n)` train
    n epochs and block until done."""

    def __init__(self, store: DatasetStore, dataset_id: str, depth: int, batch: int, sgd_steps: int) -> None:
        config = OfflineConfig(dataset=dataset_id, eval_env="none").replace(depth=depth, batch_size=batch,
                                                                             sgd_steps=sgd_steps)
        self.runner = OfflineRunner(config, store)
        learner, steps = self.runner.learner, sgd_steps

        def device_scan(agent: Any, batch_: Any, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
            return learner.sgd(agent, batch_, lambda b, _k: b, key, steps)

        self._device = jax.jit(device_scan, donate_argnums=0, compiler_options=cpu_compiler_options())
        window = self.runner.cursor.window_for(0)
        self.batch = jax.block_until_ready(jax.jit(self.runner.sample)(window, jax.random.PRNGKey(123)))
        self.offline_state = self.runner.init_state()
        self.device_state = self.runner.init_state().learner.agent
        self.epoch_index = 0
        self.key = jax.random.PRNGKey(7)

    def run_offline(self, epochs: int) -> None:
        for _ in range(epochs):
            state, metrics, _ = self.runner.epoch(self.offline_state, self.epoch_index)
            to_host(metrics)  # what drive does with every epoch's metrics
            self.offline_state = jax.block_until_ready(state)
            self.epoch_index += 1

    def run_device(self, epochs: int) -> None:
        for _ in range(epochs):
            self.key, k = jax.random.split(self.key)
            agent, metrics = self._device(self.device_state, self.batch, k)
            to_host(metrics)
            self.device_state = jax.block_until_ready(agent)


def best_of(variants: list[Callable[[int], None]], epochs: int, rounds: int) -> list[float]:
    """Best wall seconds of `epochs` epochs per variant over `rounds` alternating rounds (order flips each round)."""
    best = [math.inf] * len(variants)
    for r in range(rounds):
        order = range(len(variants)) if r % 2 == 0 else reversed(range(len(variants)))
        for i in order:
            t = time.perf_counter()
            variants[i](epochs)
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depths", type=int, nargs="+", default=[4, 64])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--sgd-steps", type=int, default=None,
                    help="SGD steps per epoch (default: 500 up to depth 16, 32 deeper)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per timed round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (best of)")
    ap.add_argument("--env-steps", type=int, default=32_000, help="size of the collected dataset")
    ap.add_argument("--root", default=None, help="data root (default: a temporary folder, removed at the end)")
    ap.add_argument("--dataset", default=None, help="an existing dataset id in --root (skips the collection)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run (~1-2 min): 8,000-step dataset, depth 4, 20 SGD steps an epoch, 1 round")
    args = ap.parse_args()
    if args.quick:
        args.depths, args.env_steps, args.sgd_steps, args.rounds, args.epochs = [4], 8_000, 20, 1, 1
    if args.dataset and not args.root:
        ap.error("--dataset needs --root")
    enable_compile_cache()  # as crl-train does: a re-run (or a program crl-train compiled) skips XLA compiles
    print(f"machine: {machine()}")
    print(f"start {time.strftime('%Y-%m-%d %H:%M:%S %Z')}: {load()}", flush=True)
    tmp = tempfile.TemporaryDirectory(prefix="bench_offline_") if args.root is None else None
    root = args.root or tmp.name
    store = DatasetStore(root)
    t = time.perf_counter()
    dataset_id = args.dataset or collect_dataset(root, args.env_steps)
    totals = store.manifest(dataset_id)["totals"]
    print(f"dataset {dataset_id}: {totals['episodes']} episodes, {totals['transitions']:,} transitions "
          f"({'collected' if not args.dataset else 'opened'} in {time.perf_counter() - t:.1f} s)", flush=True)

    rows = []
    for depth in args.depths:
        steps = args.sgd_steps or (500 if depth <= 16 else 32)
        t = time.perf_counter()
        pair = Pair(store, dataset_id, depth, args.batch, steps)
        pair.run_offline(1)  # compile both, one epoch each
        pair.run_device(1)
        compile_s = time.perf_counter() - t
        offline_s, device_s = best_of([pair.run_offline, pair.run_device], args.epochs, args.rounds)
        n = args.epochs * steps
        rows.append((depth, args.batch, steps, offline_s / n * 1e3, device_s / n * 1e3))
        print(f"depth {depth}: compiled (or cached) + first epochs in {compile_s:.0f} s; "
              f"offline {offline_s / n * 1e3:.1f} ms/step, device batch {device_s / n * 1e3:.1f} ms/step "
              f"({load()})", flush=True)
        del pair

    print("\n| depth | batch | SGD steps / epoch | offline trainer ms/step | device batch ms/step | "
          "ratio (goal >= 0.9) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for depth, batch, steps, off_ms, dev_ms in rows:
        print(f"| {depth} | {batch} | {steps} | {off_ms:.1f} | {dev_ms:.1f} | {dev_ms / off_ms:.2f} |")
    print(f"\nend {time.strftime('%Y-%m-%d %H:%M:%S %Z')}: {load()}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
