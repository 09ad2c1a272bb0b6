"""Crash safety: a writer killed with SIGKILL mid-shard leaves no visible version; resume completes; verify passes.
Also: a flipped byte in a chunk is named by verify (real Dask LocalCluster) and the CLI exits 1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from crl.datasets import DatasetStore
from crl.datasets.synthetic import episode_batch, synthetic_spec

SPEC = synthetic_spec(state_size=29, action_size=8)
EP_LEN = 500

CHILD = """
import sys
from crl.datasets import DatasetStore
from crl.datasets.synthetic import episode_batch, synthetic_spec
store = DatasetStore(sys.argv[1])
st = store.begin("test/killed", synthetic_spec(state_size=29, action_size=8), provenance={"run": 1})
w = st.writer("w0", shard_rows=20000, chunk_rows=4096)
for k in range(100000):  # writes until killed
    w.append(episode_batch([int(sys.argv[2])], first_episode_id=k, seed=k, state_size=29, action_size=8))
"""


def _episode(k: int) -> dict:
    return episode_batch([EP_LEN], first_episode_id=k, seed=k, state_size=29, action_size=8)


def test_sigkill_mid_shard_then_resume_and_verify(data_root: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(data_root), str(EP_LEN)])
    shards = data_root / "test/killed/.staging-v0/shards"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            names = {p.name for p in shards.iterdir()} if shards.exists() else set()
            done = {n for n in names if n.endswith(".json") and not n.startswith(".")}
            partial = {n for n in names if n.endswith(".zarr") and n[:-5] + ".json" not in names}
            if len(done) >= 2 and partial:
                break
            assert proc.poll() is None, "writer exited before it was killed"
            time.sleep(0.005)
        else:
            pytest.fail("writer never had two complete shards and one in progress")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = DatasetStore()
    assert store.list() == [] and store.versions("test/killed") == []  # nothing visible

    st = store.begin("test/killed", SPEC, resume=True)
    assert st.incomplete_shards() == []
    done = st.completed()["w0"]
    assert done["shards"] >= 2 and done["last_episode_id"] == done["episodes"] - 1
    total = done["episodes"] + 5
    with st.writer("w0", shard_rows=20000, chunk_rows=4096) as w:
        for k in range(done["last_episode_id"] + 1, total):
            w.append(_episode(k))
    m = st.commit(extra_provenance={"resumed": True})
    assert m["totals"]["episodes"] == total and m["provenance"] == {"run": 1, "resumed": True}
    r = store.open("test/killed-v0")
    got = r.load(["episode_id", "observation"])
    np.testing.assert_array_equal(np.unique(got["episode_id"]), np.arange(total))
    for k in (0, total - 1):
        np.testing.assert_array_equal(r.episode(k)["observation"], _episode(k)["observation"])

    from crl.pipelines.verify import verify

    assert verify(store, "test/killed-v0").ok


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def _write_part(staging, worker: str, first: int) -> dict:
    """Runs on a Dask worker process: write episodes first..first+5 into the shared staging version."""
    with staging.writer(worker, shard_rows=1200) as w:
        for k in range(first, first + 6):
            w.append(_episode(k))
    return staging.completed()[worker]


def test_dask_worker_processes_write_one_staging_version(data_root: Path, cluster) -> None:
    from distributed import Client

    store = DatasetStore()
    st = store.begin("test/fanout", SPEC, provenance={"workers": 2})
    with Client(cluster) as client:
        futures = [client.submit(_write_part, st, f"w{i}", 100 * i, pure=False) for i in range(2)]
        parts = client.gather(futures)
    assert [p["episodes"] for p in parts] == [6, 6] and [p["last_episode_id"] for p in parts] == [5, 105]
    m = st.commit()
    assert m["totals"]["episodes"] == 12 and {s["path"][7:9] for s in m["shards"]} == {"w0", "w1"}
    r = store.open("test/fanout-v0")
    np.testing.assert_array_equal(r.episode(6)["observation"], _episode(100)["observation"])


def _committed(name: str, episodes: int, shard_rows: int) -> tuple[DatasetStore, dict]:
    """A committed version `name`-v0 of `episodes` synthetic episodes (the store and its manifest)."""
    store = DatasetStore()
    st = store.begin(name, SPEC)
    with st.writer("w0", shard_rows=shard_rows) as w:
        for k in range(episodes):
            w.append(_episode(k))
    return store, st.commit()


def test_flipped_byte_is_named_by_verify_on_a_local_cluster(data_root: Path, cluster) -> None:
    from crl.pipelines.cli import main
    from crl.pipelines.verify import verify

    store, m = _committed("test/flip", 4, 1000)
    assert verify(store, "test/flip-v0", scheduler=cluster.scheduler_address).ok
    victim = data_root / "test/flip/v0" / m["shards"][1]["path"] / "observation/c/0/0"
    os.chmod(victim, 0o644)
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    report = verify(store, "test/flip-v0", scheduler=cluster.scheduler_address)
    assert [s.path for s in report.bad] == [m["shards"][1]["path"]]
    assert report.content_hash != m["content_hash"]
    with pytest.raises(SystemExit) as exc:
        main(["verify", "test/flip-v0"])
    assert exc.value.code == 1


def test_verify_reports_a_missing_shard(data_root: Path) -> None:
    import shutil

    from crl.pipelines.verify import verify

    store, m = _committed("test/gone", 3, 500)
    shutil.rmtree(data_root / "test/gone/v0" / m["shards"][2]["path"])
    report = verify(store, "test/gone-v0", scheduler="sync")
    assert [(s.path, s.error) for s in report.bad] == [(m["shards"][2]["path"], "shard folder is missing or empty")]
