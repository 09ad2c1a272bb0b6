"""Collector recording overhead: env steps/s of a training CRL collector with recording on vs the sink off.

Both arms run the same jitted collector epochs (unroll + replay insert + SGD) from the same compiled trainer; the
"on" arm also pushes every epoch's transitions through the collector's recording path (async device-to-host copy,
sink thread, episode assembly, ShardWriter encoding + zarr I/O to a real staging version on disk). Arms are
interleaved (off, on, off, on, ...) and the figure is the median over pairs of on/off (a pair runs back to back, so
it sees the same machine load); 1.0 = recording is free.

    python bench/bench_collect.py                      # point + ant, depth 4 and 64 (CPU-sized)
    python bench/bench_collect.py --envs point_u_maze --depths 4 --epochs 10
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
from crl.pipelines.collect import CollectConfig, build_source
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
    args = p.parse_args()
    enable_compile_cache()
    print(f"devices: {jax.devices()}")
    print(f"{'env':16s} {'depth':>5s} {'off steps/s':>12s} {'on steps/s':>12s} {'on/off':>7s}")
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
                off, on = [], []
                for _ in range(args.repeats):
                    r, state = run_arm(source, env, state, args.epochs)
                    off.append(r)
                    r, state = run_arm(source, env, state, args.epochs, staging)
                    on.append(r)
                staging.abort()
                m_off, m_on = statistics.median(off), statistics.median(on)
                ratio = statistics.median(b / a for a, b in zip(off, on, strict=True))
                print(f"{env_name:16s} {depth:5d} {m_off:12,.0f} {m_on:12,.0f} {ratio:7.3f}", flush=True)


if __name__ == "__main__":
    main()
