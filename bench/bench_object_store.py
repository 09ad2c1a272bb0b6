"""Dataset store on an S3-API server vs local disk, same data, same run: write, full scan and verify MB/s.

The server is moto's (`moto_server`, a separate process on a free local port, in-memory objects); the client is
s3fs, as for any `s3://` root. This measures crl's side of object storage (request counts and concurrency: shards
encoded locally and uploaded in parallel, commits copied server-side, reads batched) against a local server,
not a cloud network. Data: synthetic ant-sized transitions (state 29, action 8, goal 2), episodes of 500 steps.
Run: python bench/bench_object_store.py [--transitions 500000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import numpy as np

EP_LEN = 500


def batches(transitions: int) -> list[dict[str, np.ndarray]]:
    from crl.datasets.synthetic import episode_batch

    out, n = [], transitions // EP_LEN
    for first in range(0, n, 100):
        k = min(100, n - first)
        out.append(episode_batch([EP_LEN] * k, first_episode_id=first, seed=first, state_size=29, action_size=8))
    return out


def once(root: str, data: list[dict[str, np.ndarray]]) -> dict[str, float]:
    from crl.datasets import DatasetStore
    from crl.datasets.synthetic import synthetic_spec
    from crl.pipelines.verify import verify

    store = DatasetStore(root)
    t0 = time.perf_counter()
    st = store.begin("bench/store", synthetic_spec(state_size=29, action_size=8))
    with st.writer("w0") as w:
        for b in data:
            w.append(b, copy=False)
    m = st.commit()
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.open(m["id"]).load()
    t_load = time.perf_counter() - t0
    rep = verify(store, m["id"])
    assert rep.ok
    mb = m["totals"]["bytes"] / 2**20
    raw = sum(v.nbytes for b in data for v in b.values()) / 2**20
    objects = len(store.loc.fs.find(store.loc.path(f"bench/store/v{m['id'].rsplit('-v', 1)[1]}")))
    store.remove(m["id"])
    return {"MiB": mb, "raw MiB": raw, "objects": objects, "write": mb / t_write, "write raw": raw / t_write,
            "load": mb / t_load, "verify": mb / rep.seconds, "objects/s (verify)": objects / rep.seconds}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transitions", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    port = free_port()
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
        import boto3

        for _ in range(100):
            try:
                boto3.client("s3").create_bucket(Bucket="crl-bench")
                break
            except Exception:  # noqa: BLE001 - the server is still starting
                time.sleep(0.1)
        data = batches(args.transitions)
        rows = {}
        with tempfile.TemporaryDirectory(prefix="crl-bench-") as tmp:
            for name, root in (("local disk", tmp), ("S3 API (moto, local)", "s3://crl-bench/" + uuid.uuid4().hex)):
                runs = [once(root, data) for _ in range(args.repeat)]
                rows[name] = {k: max(r[k] for r in runs) for k in runs[0]}
        r0 = rows["local disk"]
        print(f"{args.transitions:,} transitions: {r0['raw MiB']:.0f} MiB of arrays, {r0['MiB']:.1f} MiB stored "
              f"(blosc-lz4) in {r0['objects']} objects; best of {args.repeat}; MB/s of stored bytes unless noted")
        print("| root | write MB/s (of arrays) | full scan (load) MB/s | verify MB/s | objects/s (verify) |")
        print("| --- | --- | --- | --- | --- |")
        for name, r in rows.items():
            print(f"| {name} | {r['write']:.1f} ({r['write raw']:.0f}) | {r['load']:.1f} | {r['verify']:.1f} | "
                  f"{r['objects/s (verify)']:.0f} |")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
