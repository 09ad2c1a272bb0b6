"""Coverage map cost on a large dataset: 10M transitions in the paper's U4 maze, mapped with Dask over the shards.

Writes a synthetic version (point-mass-sized fields: state 4, action 2, goal 2; positions spread over the maze's
free cells, episodes of 1000 steps) into a local root once, then times `compute_coverage` (one Dask task per
shard, threads) and drawing the figure, and reports the peak memory the map added (it never loads the dataset).
Run: python bench/bench_coverage.py [--transitions 10000000] [--root /tmp/crl-bench-coverage]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

EP_LEN = 1000


def write(root: str, transitions: int, shard_rows: int) -> str:
    from crl.datasets import DatasetStore
    from crl.datasets.synthetic import episode_batch
    from crl.envs import make

    env = make("point_u4_maze")
    spec = env.spec.to_dict()
    free = np.asarray(env.maze.free_cells(), np.float32) * env.maze.cell_size
    store = DatasetStore(root)
    if store.versions("bench/cover"):
        return f"bench/cover-v{store.versions('bench/cover')[-1]}"
    st = store.begin("bench/cover", spec, provenance={"producer": "bench/bench_coverage.py"})
    rng = np.random.default_rng(0)
    per = shard_rows // EP_LEN
    with st.writer("w0", shard_rows=shard_rows) as w:
        for first in range(0, transitions // EP_LEN, per):
            n = min(per, transitions // EP_LEN - first)
            b = episode_batch([EP_LEN] * n, first_episode_id=first, seed=first, state_size=spec["state_size"],
                              action_size=spec["action_size"])
            cells = free[rng.integers(0, len(free), len(b["observation"]))]
            xy = cells + rng.uniform(-0.5, 0.5, cells.shape).astype(np.float32) * env.maze.cell_size
            b["observation"][:, :2] = b["achieved_goal"] = b["qpos"] = xy
            b["desired_goal"] = free[rng.integers(0, len(free), n)].repeat(EP_LEN, 0)
            b["final_desired_goal"] = b["desired_goal"][::EP_LEN]
            w.append(b, copy=False)
    return st.commit()["id"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transitions", type=int, default=10_000_000)
    ap.add_argument("--shard-rows", type=int, default=262_144)
    ap.add_argument("--root", default="/tmp/crl-bench-coverage")
    ap.add_argument("--out", default="/tmp/crl-bench-coverage.png")
    args = ap.parse_args()
    from crl.datasets import DatasetStore
    from crl.pipelines.coverage import compute_coverage, draw_coverage

    t0 = time.perf_counter()
    did = write(args.root, args.transitions, args.shard_rows)
    print(f"dataset {did} ready in {time.perf_counter() - t0:.1f} s")
    store = DatasetStore(args.root)
    m = store.manifest(did)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    cov = compute_coverage(store, did)
    t_map = time.perf_counter() - t0
    t0 = time.perf_counter()
    draw_coverage(cov, args.out)
    t_draw = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mb = m["totals"]["bytes"] / 2**20
    print(f"{m['totals']['transitions']:,} transitions, {m['totals']['shards']} shards, {mb:.0f} MiB stored")
    print(f"coverage {t_map:.2f} s ({m['totals']['transitions'] / t_map / 1e6:.1f} M transitions/s), figure "
          f"{t_draw:.2f} s; peak RSS grew {(rss - rss0) / 1024:.0f} MiB (the achieved goals alone are "
          f"{m['totals']['transitions'] * 8 / 2**20:.0f} MiB)")
    print(f"cells visited {cov.summary()['cells_visited']}/{len(cov.free_cells)}, entropy {cov.entropy:.3f}")


if __name__ == "__main__":
    main()
