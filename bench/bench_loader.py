"""Dataset loader throughput and memory: SGD fed by windows streamed from disk vs the same update on a batch already
on the device, relabelled transitions/s vs the learner's consumption, and peak memory vs window size.

    python bench/bench_loader.py [--quick] [--depths 4 64] [--batches 256 512] [--dataset-mb 64]

A synthetic dataset (point-maze sizes as in bench_sgd: state 4, action 2, goal 2; 1000-step episodes) of
`--dataset-mb` MB of window rows is written to a temporary root; windows are 1/8 of it (`--windows-per-dataset`).
(a) For each (depth, batch): `--steps-per-window` CRL updates in one jitted `lax.scan` per window, batches drawn on
    the device by `sample_window` from a `WindowStream` (background reads of the next window), against the same
    scan over a fixed device batch passed as an argument (bench_sgd's way). Both compiled with
    `crl.agent.cpu_compiler_options()`, state donated, timed alternately (`--rounds`, best of), each timed call
    blocking at the end of its window. The loader rotates far more often than training needs (reuse = samples per
    window visit / window rows is printed), so the ratio is a lower bound.
(b) One pass over the dataset without prefetch: read each window from disk, then relabel every row once (batches
    of 4096 in a jitted scan): transitions/s, against the depth-4 learner's consumption (batch / step time in (a)).
(c) Peak RSS growth of a process streaming one pass (a subprocess per window size; VmHWM after resetting it,
    minus the RSS before the pass), against the window's device bytes.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp

from crl.agent import CRLAgent, cpu_compiler_options
from crl.config import AgentConfig
from crl.datasets import DatasetStore
from crl.datasets.loader import WindowStream, sample_window, trim_heap, window_row_bytes
from crl.datasets.synthetic import episode_batch, synthetic_spec
from crl.relabel import Batch

STATE, ACTION, GOAL, DISCOUNT, EPISODE = 4, 2, 2, 0.99, 1000


def make_dataset(root: str, rows: int) -> tuple[str, dict]:
    """A committed synthetic version of about `rows` transitions (default shard and chunk sizes)."""
    store = DatasetStore(root)
    st = store.begin("bench/loader", synthetic_spec(STATE, ACTION, GOAL), provenance={"policy": "bench"})
    n = max(1, rows // EPISODE)
    with st.writer("w0") as w:
        for i in range(0, n, 100):
            w.append(episode_batch([EPISODE] * min(100, n - i), first_episode_id=i, seed=i, state_size=STATE,
                                   action_size=ACTION, goal_size=GOAL))
    m = st.commit()
    return m["id"], m


def compile_scans(agent: CRLAgent, batch: int, steps: int):
    """Jitted (state, data, key) -> state: `steps` updates on batches sampled from a window / on a fixed batch."""
    opts = cpu_compiler_options()

    def scan(draw):
        def run(st, data, key):
            def body(st, k):
                k_s, k_u = jax.random.split(k)
                st, m = agent.update(st, draw(data, k_s), k_u)
                return st, m["alpha"]
            return jax.lax.scan(body, st, jax.random.split(key, steps))[0]
        return jax.jit(run, donate_argnums=0, compiler_options=opts)

    return scan(lambda w, k: sample_window(w, k, batch, DISCOUNT)), scan(lambda b, k: b)


def fixed_batch(batch: int) -> Batch:
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    return Batch(jax.random.normal(k1, (batch, STATE)), jnp.tanh(jax.random.normal(k2, (batch, ACTION))),
                 jax.random.normal(k3, (batch, GOAL)))


def sgd_ratio(reader, agent: CRLAgent, batch: int, window_rows: int, steps: int, windows: int, rounds: int):
    """Best-of-rounds seconds per update: (loader-fed, fixed batch)."""
    loader_run, fixed_run = compile_scans(agent, batch, steps)
    stream = WindowStream(reader, window_rows=window_rows, seed=0, batch_size=batch)
    it = stream.windows()
    data = fixed_batch(batch)
    st = {"loader": agent.init(jax.random.PRNGKey(0)), "fixed": agent.init(jax.random.PRNGKey(0))}
    key = [0]

    def run_loader() -> None:
        for _ in range(windows):
            w, _ = next(it)
            key[0] += 1
            st["loader"] = jax.block_until_ready(loader_run(st["loader"], w, jax.random.PRNGKey(key[0])))
            del w

    def run_fixed() -> None:
        for _ in range(windows):
            key[0] += 1
            st["fixed"] = jax.block_until_ready(fixed_run(st["fixed"], data, jax.random.PRNGKey(key[0])))

    w, _ = next(it)  # compile both (the first window is read in the foreground)
    st["loader"] = jax.block_until_ready(loader_run(st["loader"], w, jax.random.PRNGKey(0)))
    st["fixed"] = jax.block_until_ready(fixed_run(st["fixed"], data, jax.random.PRNGKey(0)))
    del w
    best = [math.inf, math.inf]
    for _ in range(rounds):
        for i, f in enumerate((run_loader, run_fixed)):
            t = time.perf_counter()
            f()
            best[i] = min(best[i], time.perf_counter() - t)
    it.close()
    return best[0] / (windows * steps), best[1] / (windows * steps)


def relabel_rate(reader, window_rows: int, batch: int = 4096) -> tuple[float, float, int]:
    """(relabelled transitions/s incl. reads, read-only transitions/s, rows) over one pass without prefetch."""
    stream = WindowStream(reader, window_rows=window_rows, seed=1, prefetch=False)
    n = math.ceil(stream.capacity / batch)

    @jax.jit
    def relabel_all(w, key):
        def body(acc, k):
            b = sample_window(w, k, batch, DISCOUNT)
            return acc + b.state.sum() + b.action.sum() + b.goal.sum(), None
        return jax.lax.scan(body, jnp.zeros(()), jax.random.split(key, n))[0]

    w = stream.load_window(stream.plan(0)[0])
    jax.block_until_ready(relabel_all(w, jax.random.PRNGKey(0)))  # compile
    del w
    rows, read_s, t0 = 0, 0.0, time.perf_counter()
    offsets = stream.source.offsets
    for i, eps in enumerate(stream.plan(0)):  # one pass, windows read in this thread
        t = time.perf_counter()
        w = stream.load_window(eps)
        read_s += time.perf_counter() - t
        jax.block_until_ready(relabel_all(w, jax.random.PRNGKey(i)))
        rows += int(offsets[eps + 1].sum() - offsets[eps].sum())
        del w
    total = time.perf_counter() - t0
    return rows / total, rows / read_s, rows


def memory_probe(root: str, dataset_id: str, window_bytes: int) -> None:
    """(subprocess) Stream one pass; print peak RSS growth, window bytes, windows per pass."""
    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith(key)).split()[1]) * 1024

    stream = WindowStream(DatasetStore(root).open(dataset_id), window_bytes=window_bytes, seed=0)
    sample = jax.jit(lambda w, k: sample_window(w, k, 256, DISCOUNT))
    w = stream.load_window(stream.plan(0)[0])
    jax.block_until_ready(sample(w, jax.random.PRNGKey(0)))  # compile outside the measured pass
    del w
    gc.collect()
    trim_heap()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    base = status("VmRSS")
    for w, info in stream.windows(passes=1):
        jax.block_until_ready(sample(w, jax.random.PRNGKey(info.index)))
    print(status("VmHWM") - base, stream.window_bytes, stream.num_windows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depths", type=int, nargs="+", default=[4, 64])
    ap.add_argument("--batches", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--dataset-mb", type=float, default=64.0, help="dataset size in MB of window rows")
    ap.add_argument("--windows-per-dataset", type=int, default=8, help="(a), (b): window = dataset / this")
    ap.add_argument("--steps-per-window", type=int, default=32, help="(a): updates per window (one jitted scan)")
    ap.add_argument("--windows", type=int, default=3, help="(a): windows per timed round")
    ap.add_argument("--rounds", type=int, default=2, help="(a): alternating timing rounds (best of)")
    ap.add_argument("--memory-windows", type=int, nargs="+", default=[8, 4], help="(c): dataset / window sizes")
    ap.add_argument("--quick", action="store_true",
                    help="a few minutes: 24 MB dataset, depth 4 at batch 256 and 512, depth 64 at batch 512, 16 steps "
                         "per window, 2 windows, 1 round")
    ap.add_argument("--root", default=None, help="dataset root (default: a temporary folder, removed at the end)")
    ap.add_argument("--memory-probe", nargs=3, metavar=("ROOT", "ID", "BYTES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_probe:
        memory_probe(args.memory_probe[0], args.memory_probe[1], int(args.memory_probe[2]))
        return
    configs = [(d, b) for d in args.depths for b in args.batches]
    if args.quick:
        args.dataset_mb, args.rounds, args.steps_per_window, args.windows = 24.0, 1, 16, 2
        configs = [(4, 256), (4, 512), (64, 512)]
    row_bytes = window_row_bytes(STATE, ACTION, GOAL)
    rows = int(args.dataset_mb * 2**20 / row_bytes)
    tmp = tempfile.TemporaryDirectory(prefix="bench_loader_") if args.root is None else None
    root = args.root or tmp.name
    t = time.perf_counter()
    dataset_id, manifest = make_dataset(root, rows)
    rows = manifest["totals"]["transitions"]
    window_rows = rows // args.windows_per_dataset
    print(f"device: {jax.devices()[0].device_kind}; dataset {dataset_id}: {rows:,} transitions, "
          f"{rows * row_bytes / 2**20:.1f} MB of window rows, {manifest['totals']['bytes'] / 2**20:.1f} MB on disk "
          f"(written in {time.perf_counter() - t:.1f} s); window {window_rows:,} rows = "
          f"{window_rows * row_bytes / 2**20:.1f} MB", flush=True)
    reader = DatasetStore(root).open(dataset_id)

    print("\n(a) SGD steps/s fed by the loader (streaming from disk) vs a fixed device batch")
    print(f"{'depth':>5} {'batch':>5} | {'loader ms':>9} {'fixed ms':>8} | {'ratio':>5} | reuse/window", flush=True)
    step_s = {}
    for depth, batch in configs:
        agent = CRLAgent(AgentConfig(depth=depth), STATE, ACTION, GOAL)
        lo, fx = sgd_ratio(reader, agent, batch, window_rows, args.steps_per_window, args.windows, args.rounds)
        step_s[depth, batch] = fx
        reuse = args.steps_per_window * batch / window_rows
        print(f"{depth:>5} {batch:>5} | {lo * 1e3:>9.1f} {fx * 1e3:>8.1f} | {fx / lo:>5.2f} | {reuse:.3f}",
              flush=True)

    print("\n(b) relabelled transitions/s from disk (one pass, no prefetch) vs the depth-4 learner's consumption")
    rate, read_rate, n = relabel_rate(reader, window_rows)
    print(f"read + relabel: {rate:,.0f} transitions/s ({n:,} rows); read alone: {read_rate:,.0f} transitions/s")
    for (depth, batch), s in sorted(step_s.items()):
        if depth == 4:
            use = batch / s
            print(f"depth 4 batch {batch}: learner consumes {use:,.0f} transitions/s; loader / learner = "
                  f"{rate / use:.1f}x")

    print("\n(c) peak RSS growth while streaming one pass vs window size (subprocess per size)")
    print(f"{'window MB':>9} {'windows':>7} | {'peak growth MB':>14} | {'/ window':>8}")
    for k in args.memory_windows:
        wb = int(rows * row_bytes / k)
        out = subprocess.run([sys.executable, __file__, "--memory-probe", root, dataset_id, str(wb)],
                             capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
        if out.returncode != 0:
            print(out.stderr[-2000:])
            continue
        growth, window_bytes, windows = map(int, out.stdout.split()[-3:])
        print(f"{window_bytes / 2**20:>9.1f} {windows:>7} | {growth / 2**20:>14.1f} | {growth / window_bytes:>8.2f}")
    print(f"(whole dataset: {rows * row_bytes / 2**20:.1f} MB)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
