"""Many writers on one dataset name, on a local root and on the S3 server: each writer claims its own version
atomically (none lost, none mixed); a staging version held by a live writer is named and protected from `rm`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import console_script
from test_ogbench import write_ogbench_npz

from crl.datasets import DatasetStore
from crl.datasets.lease import claim_rel
from crl.datasets.synthetic import synthetic_spec
from crl.pipelines.verify import verify

WRITERS = 4
# Writers are long-lived processes (start-up is paid once) that begin, write and commit one version per round, all
# four released together by a file per round, so every round is a fresh race for the same next version number.
WRITER = """
import sys, time
from pathlib import Path
from crl.datasets import DatasetStore
from crl.datasets.synthetic import episode_batch, synthetic_spec
root, me, rounds, sync = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
store = DatasetStore(root)
for r in range(rounds):
    while not (sync / f"go-{r}").exists():
        time.sleep(0.002)
    st = store.begin("race/tiny", synthetic_spec(), provenance={"writer": me, "round": r})
    with st.writer("w0", shard_rows=1000) as w:
        w.append(episode_batch([5, 7], first_episode_id=1000 * me + 10 * r, seed=100 * me + r))
    (sync / f".tmp-{me}").write_text(st.commit()["id"])
    (sync / f".tmp-{me}").rename(sync / f"done-{r}-{me}")  # the driver never reads a half-written file
"""


def race(root: str, rounds: int, sync: Path) -> list[list[str]]:
    """Run WRITERS writer processes for `rounds` rounds; the ids each round committed."""
    sync.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, root, str(i), str(rounds), str(sync)])
             for i in range(WRITERS)]
    out = []
    try:
        for r in range(rounds):
            (sync / f"go-{r}").touch()
            deadline = time.monotonic() + 120
            while len(done := sorted(sync.glob(f"done-{r}-*"))) < WRITERS:
                assert all(p.poll() is None for p in procs), f"a writer failed in round {r}"
                assert time.monotonic() < deadline, f"round {r} did not finish"
                time.sleep(0.01)
            out.append(sorted(p.read_text() for p in done))
        for p in procs:
            assert p.wait(timeout=60) == 0
    finally:
        for p in procs:
            p.kill()
    return out


def check(store: DatasetStore, rounds: int, committed: list[list[str]]) -> None:
    """Every version committed, distinct, verifying, and holding exactly its own writer's episodes."""
    assert store.versions("race/tiny") == list(range(WRITERS * rounds))
    assert store.staging_versions("race/tiny") == []
    assert sorted(i for ids in committed for i in ids) == sorted(f"race/tiny-v{v}" for v in range(WRITERS * rounds))

    def one(v: int) -> tuple[tuple[int, int], list[int], bool]:
        did = f"race/tiny-v{v}"
        prov = store.manifest(did)["provenance"]
        ids = np.unique(store.open(did).load(["episode_id"])["episode_id"]).tolist()
        return (prov["writer"], prov["round"]), ids, verify(store, did, scheduler="sync").ok

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(WRITERS * rounds)))
    assert sorted(w for w, _, _ in results) == [(w, r) for w in range(WRITERS) for r in range(rounds)]
    for (w, r), ids, ok in results:
        assert ok and ids == [1000 * w + 10 * r, 1000 * w + 10 * r + 1]  # its own episodes, nobody else's
    for r, ids in enumerate(committed):  # each round's four versions come after the previous round's
        assert sorted(int(i.rsplit("-v", 1)[1]) for i in ids) == list(range(WRITERS * r, WRITERS * (r + 1)))


@pytest.mark.parametrize("rounds", [2, pytest.param(10, marks=pytest.mark.slow)])
def test_four_writers_one_name_local(data_root: Path, tmp_path: Path, rounds: int) -> None:
    committed = race(str(data_root), rounds, tmp_path / "sync")
    check(DatasetStore(data_root), rounds, committed)


@pytest.mark.parametrize("rounds", [1, pytest.param(10, marks=pytest.mark.slow)])
def test_four_writers_one_name_s3(s3_root: str, tmp_path: Path, rounds: int) -> None:
    committed = race(s3_root, rounds, tmp_path / "sync")
    check(DatasetStore(s3_root), rounds, committed)


def test_concurrent_cli_imports_each_get_a_version(data_root: Path, tmp_path: Path) -> None:
    """What a new user tries: the same `crl-data import ogbench` started three times at once."""
    write_ogbench_npz(tmp_path / "tiny.npz", [5, 6])
    cmd = [console_script("crl-data"), "import", "ogbench", str(tmp_path / "tiny.npz"), "--dataset", "race/tiny"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
    assert sorted(o.strip() for o, _ in outs) == ["race/tiny-v0", "race/tiny-v1", "race/tiny-v2"]
    store = DatasetStore(data_root)
    assert all(verify(store, f"race/tiny-v{v}").ok for v in range(3))


HOLDER = """
import sys, time
from crl.datasets import DatasetStore
from crl.datasets.synthetic import episode_batch, synthetic_spec
st = DatasetStore(sys.argv[1]).begin("live/one", synthetic_spec())
with st.writer("w0") as w:
    w.append(episode_batch([5], seed=0))
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_live_writers_staging_is_named_and_protected(where: str, request: pytest.FixtureRequest,
                                                       tmp_path: Path) -> None:
    root = str(request.getfixturevalue("data_root")) if where == "local" else request.getfixturevalue("s3_root")
    env = {**os.environ, "CRL_DATA_DIR": root}
    cli = console_script("crl-data")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, root], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        p = subprocess.run([cli, "list", "--all"], capture_output=True, text=True, env=env, timeout=120)
        row = p.stdout.splitlines()[1]
        assert row.startswith("live/one-v0 (staging)") and f"being written by {socket.gethostname()}:{holder.pid}" \
            in row, p.stdout
        p = subprocess.run([cli, "rm", "--yes", "live/one-v0"], capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 2 and "is being written by" in p.stderr and p.stderr.count("\n") == 1
        write_ogbench_npz(tmp_path / "t.npz", [5])  # another writer of the same name is not blocked by it
        p = subprocess.run([cli, "import", "ogbench", str(tmp_path / "t.npz"), "--dataset", "live/one"],
                           capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 0 and p.stdout.strip() == "live/one-v1", p.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    store = DatasetStore(root)
    assert store.writer_status("live/one-v0")[0] == "stale"  # its pid is dead on this host
    p = subprocess.run([cli, "list", "--all"], capture_output=True, text=True, env=env, timeout=120)
    assert "writer gone: resume it or rm it" in p.stdout
    st = store.begin("live/one", synthetic_spec(), resume=True)  # a stale version can be taken over
    assert str(st.id) == "live/one-v0" and store.writer_status("live/one-v0")[0] == "ours"
    st.abort()
    assert store.staging_versions("live/one") == [] and not store.loc.exists(claim_rel("live/one", 0))


def test_a_foreign_writer_is_stale_after_its_heartbeat_stops(data_root: Path) -> None:
    store = DatasetStore(data_root)
    st = store.begin("far/one", synthetic_spec())
    lease = store.lease("far/one-v0")
    rel = claim_rel("far/one", 0)
    store.loc.write_json(rel, {**lease, "host": "elsewhere", "token": "x", "heartbeat": time.time()})
    assert store.writer_status("far/one-v0")[0] == "live"
    assert store.begin("far/one", synthetic_spec()).id.version == 1  # skipped, not refused
    with pytest.raises(Exception, match="being written by elsewhere"):
        store.remove("far/one-v0")
    store.loc.write_json(rel, {**lease, "host": "elsewhere", "token": "x", "heartbeat": time.time() - 3600})
    assert store.writer_status("far/one-v0")[0] == "stale"
    with pytest.raises(Exception, match="taken over"):  # the original writer lost its lease: it must not publish
        st.commit()
    assert json.loads((data_root / rel).read_text())["host"] == "elsewhere"


COMMITTER = HOLDER.replace('print("ready", flush=True)\ntime.sleep(600)\n', '''print("ready", flush=True)
sys.stdin.readline()
try:
    st.commit()
    print("committed", flush=True)
except Exception as e:
    print(f"refused: {e}", flush=True)
''')


def test_rm_force_removes_a_live_writers_staging(data_root: Path) -> None:
    env = {**os.environ, "CRL_DATA_DIR": str(data_root)}
    cli = console_script("crl-data")
    holder = subprocess.Popen([sys.executable, "-c", COMMITTER, str(data_root)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        store = DatasetStore(data_root)
        assert store.writer_status("live/one-v0")[0] == "live"
        p = subprocess.run([cli, "rm", "--yes", "live/one-v0"], capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 2 and "pass --force if it is gone" in p.stderr and store.staging_versions("live/one")
        p = subprocess.run([cli, "rm", "--yes", "--force", "live/one-v0"], capture_output=True, text=True, env=env,
                           timeout=120)
        assert p.returncode == 0 and p.stdout.strip() == "removed live/one-v0", p.stderr
        assert store.staging_versions("live/one") == [] and not store.loc.exists(claim_rel("live/one", 0))
        holder.stdin.write("\n")
        holder.stdin.flush()
        said = holder.stdout.readline().strip()
        assert said == "refused: live/one-v0 was removed while this writer was writing it (`crl-data rm --force`); " \
            "not publishing it"  # the writer cannot publish what was removed
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
        holder.wait()
    assert store.versions("live/one") == [] and store.staging_versions("live/one") == []
