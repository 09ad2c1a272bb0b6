"""`crl-data collect` into a bucket on the S3 server: shards go to the bucket, resume checkpoints to a local scratch
folder; the server stopped mid-collection leaves a staging version that `--resume` completes into the same data."""

from __future__ import annotations

import os
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
from crl.pipelines.run_collect import run_collection
from crl.pipelines.verify import verify


def keys(server: S3Server, prefix: str) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.mark.parametrize("config", [replace(ORACLE_COLLECT, dataset="s3/oracle", env_steps=3_200),
                                    replace(TINY_CRL, dataset="s3/crl")], ids=["oracle", "crl"])
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
    deadline = time.monotonic() + 300
    prefix = f"{s3_root.split('/', 3)[3]}/t/cut/.staging-v0/shards/"
    stopped = False
    try:
        while len([k for k in keys(s3_server, prefix) if k.endswith(".json")]) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "the collection ended before the fault"
            time.sleep(0.05)
        s3_server.stop()  # the server goes away in the middle of the collection
        stopped = True
        try:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode != 0 and "Traceback" not in err.strip().splitlines()[-1], err[-2000:]
        except subprocess.TimeoutExpired:  # still retrying: stopped all the same
            proc.kill()
            proc.communicate()
    finally:
        proc.kill()
        if stopped:
            s3_server.restart()
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
    from crl.offline import learner_grid
    from crl.pipelines.learners import run_learners

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
