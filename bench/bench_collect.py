"""Collector recording overhead: env steps/s of a training CRL collector with recording on vs the sink off.

All arms run the same jitted collector epochs (unroll + replay insert + SGD) from the same compiled trainer; the
"on" arm also pushes every epoch's transitions through the collector's recording path (async device-to-host copy,
sink thread, episode assembly, ShardWriter encoding + zarr I/O to a real staging version on disk). With --driver, a
third arm runs the whole collector worker as it runs in `crl-data collect` (crl.loop.drive over a CollectRunner:
per-epoch metrics, divergence check, metrics.jsonl, the recording hook); its rate is the median of the per-epoch
env_steps_per_s it logs (checkpoint saves excluded, as the driver excludes them). Arms are interleaved (off, on,
driver, off, ...) and each figure is the median over rounds of arm/off (a round runs back to back, so it sees the
same machine load); 1.0 = recording is free.

    python bench/bench_collect.py                      # point + ant, depth 4 and 64 (CPU-sized)
    python bench/bench_collect.py --envs point_u_maze --depths 4 --epochs 10 --driver
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import jax

from crl import enable_compile_cache
from crl.datasets import DatasetStore
from crl.envs import make
from crl.pipelines.collector import CollectConfig, build_source
from crl.pipelines.episodes import EpisodeAssembler
from crl.pipelines.sink import EpisodeSink


def run_arm(source, env, state, epochs: int, staging=None) -> tuple[float, object]:
    """Env steps/s over `epochs` epochs, with (staging given) or without recording."""
    sink = writer = None
    if staging is not None:
        writer = staging.writer(f"b{time.monotonic_ns() % 10**9}", shard_rows=100_000)
        asm = EpisodeAssembler(source.num_envs, env.state_size, env.goal_indices)
        sink = EpisodeSink(asm, writer, 1, 0, 0)
    t0 = time.perf_counter()
    for _ in range(epochs):
        state, _metrics, tr = source.step(state)
        if sink is not None:
            sink.put(tr)
    jax.block_until_ready(state)
    if sink is not None:
        sink.close()
        writer.close()
    dt = time.perf_counter() - t0
    return epochs * source.num_envs * source.unroll_length / dt, state


def run_driver_arm(cfg: CollectConfig, source, store, epochs: int, tmp: str) -> float:
    """Median per-epoch env steps/s of a collector worker under crl.loop.drive, on the compiled `source`."""
    import dataclasses
    import json
    from pathlib import Path

    from crl.loop import drive
    from crl.pipelines import collector

    name = f"bench/driver-{time.monotonic_ns() % 10**9}"
    env = make(cfg.env, episode_length=250)
    staging = store.begin(name, env.spec)
    run_cfg = dataclasses.replace(cfg, checkpoint_every=10**6, eval_every=0, shard_rows=100_000)
    build = collector.build_source
    collector.build_source = lambda *a, **k: source  # the compiled source: no tracing inside the timing
    try:
        runner = collector.CollectRunner(run_cfg, staging, 0, epochs * source.num_envs * source.unroll_length,
                                       run_dir=Path(tmp) / name)
    finally:
        collector.build_source = build
    drive(runner, runner.run_dir, resume=True, on_epoch=runner.record, progress=False)
    runner.sink.close()
    runner.writer.close()
    staging.abort()
    rates = [json.loads(line)["env_steps_per_s"] for line in (runner.run_dir / "metrics.jsonl").open()]
    return statistics.median(rates[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", nargs="+", default=["point_u_maze", "ant_u_maze"])
    p.add_argument("--depths", nargs="+", type=int, default=[4, 64])
    p.add_argument("--epochs", type=int, default=8, help="epochs per timed arm")
    p.add_argument("--repeats", type=int, default=7, help="interleaved on/off pairs")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--unroll-length", type=int, default=50)
    p.add_argument("--sgd-steps", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--driver", action="store_true", help="also time the whole worker under crl.loop.drive")
    args = p.parse_args()
    enable_compile_cache()
    print(f"devices: {jax.devices()}")
    print(f"{'env':16s} {'depth':>5s} {'off steps/s':>12s} {'on steps/s':>12s} {'on/off':>7s}"
          + (f" {'driver steps/s':>14s} {'driver/off':>10s}" if args.driver else ""))
    with tempfile.TemporaryDirectory() as tmp:
        store = DatasetStore(tmp)
        for env_name in args.envs:
            for depth in args.depths:
                env = make(env_name, episode_length=250)
                cfg = CollectConfig(env=env_name, collector_depth=depth, num_envs=args.num_envs,
                                    unroll_length=args.unroll_length,
                                    train_overrides={"sgd_steps": args.sgd_steps, "batch_size": args.batch_size,
                                                     "min_replay_size": args.batch_size})
                source = build_source(cfg, env, 0, 10**9)
                state = source.init(jax.random.PRNGKey(0))
                state, _, _ = source.step(state)  # compile
                jax.block_until_ready(state)
                staging = store.begin(f"bench/{env_name.replace('_', '-')}-d{depth}", env.spec)
                off, on, driver = [], [], []
                for _ in range(args.repeats):
                    r, state = run_arm(source, env, state, args.epochs)
                    off.append(r)
                    r, state = run_arm(source, env, state, args.epochs, staging)
                    on.append(r)
                    if args.driver:
                        driver.append(run_driver_arm(cfg, source, store, args.epochs, tmp))
                staging.abort()
                m_off, m_on = statistics.median(off), statistics.median(on)
                ratio = statistics.median(b / a for a, b in zip(off, on, strict=True))
                line = f"{env_name:16s} {depth:5d} {m_off:12,.0f} {m_on:12,.0f} {ratio:7.3f}"
                if driver:
                    d_ratio = statistics.median(b / a for a, b in zip(off, driver, strict=True))
                    line += f" {statistics.median(driver):14,.0f} {d_ratio:10.3f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
