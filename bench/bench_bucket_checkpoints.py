"""`crl-data collect --checkpoints scratch` vs `bucket` into an S3-API server: wall time of whole collections, and
the upload / download time of one collector checkpoint (what a resume on a host with an empty scratch folder waits
for).

The server is moto's (`moto_server`, a separate process on a free local port); the collections are the real
`crl-data collect` (an oracle collector on the 5x5 U: 10 epochs of 32 envs x 50 steps, a checkpoint every 2 epochs).
Run: python bench/bench_bucket_checkpoints.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_object_store import free_port

COLLECT = ["collect", "--policy", "oracle", "--env-steps", "16000", "--num-envs", "32", "--unroll-length", "50",
           "--episode-length", "250", "--action-noise", "0.2", "--goal-schedule", "navigate", "--seed", "1",
           "--checkpoint-every", "2", "--shard-rows", "2000", "--no-progress"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    port = free_port()
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with tempfile.TemporaryDirectory(prefix="crl-bench-") as tmp:
            os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                              AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                              CRL_SCRATCH_DIR=f"{tmp}/scratch")
            import boto3

            for _ in range(100):
                try:
                    boto3.client("s3").create_bucket(Bucket="crl-bench")
                    break
                except Exception:  # noqa: BLE001 - the server is still starting
                    time.sleep(0.1)
            root = "s3://crl-bench/crl"
            cli = [os.path.join(os.path.dirname(sys.executable), "crl-data"), "--root", root]
            walls: dict[str, list[float]] = {"scratch": [], "bucket": []}
            for _ in range(args.repeat):
                for mode in walls:
                    t0 = time.perf_counter()
                    subprocess.run([*cli, *COLLECT, "--dataset", f"b/{mode}", "--checkpoints", mode], check=True,
                                   stdout=subprocess.DEVNULL)
                    walls[mode].append(time.perf_counter() - t0)
            from crl.datasets import DatasetStore
            from crl.pipelines.collector_checkpoints import BucketCheckpoints, local_steps

            store = DatasetStore(root)
            run_dir = next(Path(tmp, "scratch").rglob("b/bucket/.staging-v0/collector/w0"))
            step = local_steps(run_dir)[-1]
            files = [p for p in (run_dir / "checkpoints" / str(step)).rglob("*") if p.is_file()]
            kib = sum(p.stat().st_size for p in files) / 1024
            ups, downs = [], []
            for r in range(3):
                mirror = BucketCheckpoints(store.loc, f"push/{r}/collector/w0", run_dir)
                t0 = time.perf_counter()
                mirror.push()
                ups.append(time.perf_counter() - t0)
                empty = Path(tmp, f"pull{r}")
                t0 = time.perf_counter()
                BucketCheckpoints(store.loc, mirror.rel, empty).pull()
                downs.append(time.perf_counter() - t0)
                shutil.rmtree(empty)
        print(f"collection wall s (each run): scratch {', '.join(f'{w:.0f}' for w in walls['scratch'])}; "
              f"bucket {', '.join(f'{w:.0f}' for w in walls['bucket'])}")
        print(f"one checkpoint (step {step}: {len(files)} files, {kib:.0f} KiB): upload {min(ups):.2f}-{max(ups):.2f} "
              f"s, download into an empty folder {min(downs):.2f}-{max(downs):.2f} s (3 tries)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
