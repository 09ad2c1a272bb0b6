"""`crl-data collect` into a bucket on the S3 server: shards go to the bucket, resume checkpoints to a local scratch
folder (and with `--checkpoints bucket` into the bucket too); the server stopped mid-collection leaves a staging
version that `--resume` completes into the same data, and so does a collector killed mid-run and resumed on a host
whose scratch folder is empty."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import ORACLE_COLLECT
from s3_server import S3Server
from test_collect import TINY_CRL

from crl.datasets import DatasetStore
from crl.errors import ConfigError
from crl.pipelines.collection import run_collection
from crl.pipelines.collector_checkpoints import POINTER, BucketCheckpoints, local_steps
from crl.pipelines.verify import verify


def keys(server: S3Server, prefix: str) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.mark.parametrize("config", [replace(ORACLE_COLLECT, dataset="s3/oracle", env_steps=3_200),
                                    replace(TINY_CRL, dataset="s3/crl", checkpoints="bucket")],
                         ids=["oracle-scratch", "crl-bucket"])
def test_collect_into_a_bucket(s3_root: str, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               config) -> None:
    monkeypatch.setenv("CRL_SCRATCH_DIR", str(tmp_path / "scratch"))
    store = DatasetStore(s3_root)
    m = run_collection(config, store, show_progress=False)
    assert m["totals"]["transitions"] >= config.env_steps and verify(store, m["id"]).ok
    prefix = f"{s3_root.split('/', 3)[3]}/{config.dataset}/v0"
    objects = keys(s3_server, prefix)
    assert f"{prefix}/manifest.json" in objects
    assert any(k.startswith(f"{prefix}/collector/w0/checkpoints/") for k in objects)  # shipped with the version
    assert list((tmp_path / "scratch").rglob("checkpoints"))  # written locally first
    pointer = f"{config.dataset}/v0/collector/w0/{POINTER}"
    if config.checkpoints == "bucket":  # 24 epochs, a checkpoint every 4: each uploaded, resume.json names the last
        assert store.loc.read_json(pointer)["step"] == 24
        assert all(f"{prefix}/collector/w0/{f}" in objects for f in store.loc.read_json(pointer)["files"])
    else:
        assert not store.loc.exists(pointer)


# ORACLE_COLLECT's shapes (compiled by test_collect.py and test_coverage.py, loaded from the compile cache), 10 epochs
# of 1,600 steps, a checkpoint every 2 epochs, shards of ~2,000 rows.
ORACLE_ARGS = ["collect", "--policy", "oracle", "--env-steps", "16000", "--num-envs", "32", "--unroll-length", "50",
               "--episode-length", "250", "--action-noise", "0.2", "--goal-schedule", "navigate", "--seed", "1",
               "--checkpoint-every", "2", "--shard-rows", "2000", "--no-progress"]


@pytest.mark.slow  # three collections through the S3 server, one of them cut by the fault: ~6 min on 2 loaded cores
def test_server_stopped_mid_collection_then_resume(s3_root: str, s3_server: S3Server, tmp_path: Path) -> None:
    env = {**os.environ, "CRL_DATA_DIR": s3_root, "CRL_SCRATCH_DIR": str(tmp_path / "scratch"),
           "AWS_MAX_ATTEMPTS": "2"}
    cli = [sys.executable, "-m", "crl.pipelines.cli"]
    proc = subprocess.Popen([*cli, *ORACLE_ARGS, "--dataset", "t/cut"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    prefix = f"{s3_root.split('/', 3)[3]}/t/cut/.staging-v0/shards/"
    _, err = s3_server.stop_during(  # the server goes away in the middle of the collection
        proc, lambda: len([k for k in keys(s3_server, prefix) if k.endswith(".json")]) >= 3, timeout=300)
    assert proc.returncode == 2 and err.count("\n") == 1 and "Traceback" not in err, err[-3000:]
    assert err.startswith("crl-data: error: ") and "EndpointConnectionError" in err, err
    store = DatasetStore(s3_root)
    assert store.versions("t/cut") == [] and store.staging_versions("t/cut") == [0]  # still staging
    resumed = subprocess.run([*cli, *ORACLE_ARGS, "--dataset", "t/cut", "--resume"], env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0 and "t/cut-v0" in resumed.stdout, resumed.stderr
    assert verify(store, "t/cut-v0").ok
    ref = run_collection(replace(ORACLE_COLLECT, dataset="t/reference", env_steps=16_000, checkpoint_every=2,
                                 shard_rows=2000), store, show_progress=False)  # the same, uninterrupted
    a, b = store.open(ref["id"]).load(), store.open("t/cut-v0").load()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert store.manifest("t/cut-v0")["content_hash"] == ref["content_hash"]


@pytest.mark.slow  # an offline learner's compile for a new window shape, through the S3 server: ~6 min loaded
def test_offline_training_streams_from_the_bucket_and_the_report_reads_it(s3_root: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from test_offline import tiny

    from crl.eval.report import ReportSettings, make_report
    from crl.learners import run_learners
    from crl.offline import learner_grid

    monkeypatch.setenv("CRL_SCRATCH_DIR", str(tmp_path / "scratch"))
    store = DatasetStore(s3_root)
    did = run_collection(replace(ORACLE_COLLECT, dataset="s3/train", env_steps=3_200), store,
                         show_progress=False)["id"]
    grid = learner_grid(tiny(did, window=1_600), [4], [0])  # two windows: the second is read from the bucket
    done = run_learners(grid, tmp_path / "runs", progress=False, root=s3_root)
    assert isinstance(done["d4-s0"], dict) and done["d4-s0"]["sgd_steps"] == 60
    rep = make_report([tmp_path / "runs"], tmp_path / "rep", ReportSettings(evaluators=("goals",),
                                                                                      goals_episodes=4))
    html = rep.html.read_text()
    assert rep.runs[0].results["goals"]["result"]["eval/success"] >= 0.0
    assert f"coverage of {did}" in html  # the report read the run's dataset from the bucket


def _fake_step(run_dir: Path, step: int, salt: bytes) -> None:
    """A checkpoint folder as orbax leaves one (nested files of any bytes)."""
    for rel in ("_CHECKPOINT_METADATA", "state/manifest.ocdbt", "state/d/abc", "meta/metadata"):
        f = run_dir / "checkpoints" / str(step) / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(salt + rel.encode())


def test_bucket_checkpoints_survive_a_killed_upload(s3_root: str, tmp_path: Path) -> None:
    store = DatasetStore(s3_root)
    here = tmp_path / "host-a" / "w0"
    (here / "metrics.jsonl").parent.mkdir(parents=True)
    (here / "metrics.jsonl").write_text('{"epoch": 2}\n')
    _fake_step(here, 2, b"two:")
    mirror = BucketCheckpoints(store.loc, "t/.staging-v0/collector/w0", here)
    assert mirror.push() == 2 and mirror.push() is None  # nothing new
    _fake_step(here, 4, b"four:")
    # an upload of step 4 killed half way: some of its files are in the bucket, resume.json still names step 2
    store.loc.write_files({"t/.staging-v0/collector/w0/checkpoints/4/state/d/abc": b"half"})
    there = tmp_path / "host-b" / "w0"
    there.mkdir(parents=True)
    assert BucketCheckpoints(store.loc, mirror.rel, there).pull() == 2
    assert local_steps(there) == [2] and not list((there / "checkpoints").glob(".*"))
    for f in (here / "checkpoints/2").rglob("*"):
        if f.is_file():
            assert (there / "checkpoints/2" / f.relative_to(here / "checkpoints/2")).read_bytes() == f.read_bytes()
    assert (there / "metrics.jsonl").read_text() == '{"epoch": 2}\n'
    assert mirror.push() == 4  # the next upload replaces the leftovers and drops step 2
    assert store.loc.read_json(f"{mirror.rel}/{POINTER}")["step"] == 4
    assert store.loc.listdir(f"{mirror.rel}/checkpoints") == ["4"]
    assert store.loc.fs.cat_file(store.loc.path(f"{mirror.rel}/checkpoints/4/state/d/abc")) == b"four:state/d/abc"


def test_checkpoints_bucket_needs_a_root_on_object_storage(data_root: Path) -> None:
    with pytest.raises(ConfigError, match="--checkpoints bucket applies to a root on object storage"):
        run_collection(replace(ORACLE_COLLECT, checkpoints="bucket"), DatasetStore(data_root), show_progress=False)
    assert DatasetStore(data_root).staging_ids() == []  # refused before anything was written


@pytest.mark.slow  # three oracle collections (one killed), two through the S3 server: ~4 min on a shared core
def test_sigkill_then_resume_from_the_bucket_on_an_empty_scratch(s3_root: str, s3_server: S3Server, tmp_path: Path,
                                                                 data_root: Path) -> None:
    env = {**os.environ, "CRL_DATA_DIR": s3_root, "CRL_SCRATCH_DIR": str(tmp_path / "scratch-a")}
    cli = [sys.executable, "-m", "crl.pipelines.cli"]
    args = [*ORACLE_ARGS, "--dataset", "t/kill", "--checkpoints", "bucket"]
    staged = f"{s3_root.split('/', 3)[3]}/t/kill/.staging-v0"
    pointer = f"{staged}/collector/w0/{POINTER}"
    client = s3_server.client()
    proc = subprocess.Popen([*cli, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    try:
        while pointer not in keys(s3_server, pointer):  # the first checkpoint is in the bucket
            assert proc.poll() is None, f"the collection ended before it was killed: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint reached the bucket"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    store = DatasetStore(s3_root)
    assert store.versions("t/kill") == [] and store.staging_versions("t/kill") == [0]
    step = json.loads(client.get_object(Bucket=s3_server.bucket, Key=pointer)["Body"].read())["step"]
    logged = client.get_object(Bucket=s3_server.bucket, Key=f"{staged}/collector/w0/metrics.jsonl")["Body"].read()
    before = [r for r in logged.decode().splitlines() if json.loads(r)["epoch"] <= step]
    assert len(before) == step >= 2

    fresh = {**env, "CRL_SCRATCH_DIR": str(tmp_path / "scratch-b")}  # another host: nothing in its scratch
    resumed = subprocess.run([*cli, *args, "--resume"], env=fresh, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0 and "t/kill-v0" in resumed.stdout, resumed.stderr
    # it continued from the bucket's checkpoint: its log begins with the killed run's records (their wall times)
    (log,) = (tmp_path / "scratch-b").rglob("metrics.jsonl")
    assert log.read_text().splitlines()[:step] == before
    assert verify(store, "t/kill-v0").ok
    ref = run_collection(replace(ORACLE_COLLECT, dataset="t/reference", env_steps=16_000, checkpoint_every=2,
                                 shard_rows=2000), DatasetStore(data_root), show_progress=False)  # uninterrupted
    a, b = DatasetStore(data_root).open(ref["id"]).load(), store.open("t/kill-v0").load()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert store.manifest("t/kill-v0")["content_hash"] == ref["content_hash"]
    assert store.loc.read_json(f"t/kill/v0/collector/w0/{POINTER}")["step"] == 10  # the final checkpoint
