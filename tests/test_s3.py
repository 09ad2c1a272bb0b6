"""The dataset store on a real S3-API server (moto over HTTP, s3fs): every `crl-data` command against `s3://`,
damage to objects named by verify, and wrong credentials / a missing bucket as one-line errors (exit 2)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import console_script
from s3_server import S3Server
from test_eval_split import _parent
from test_ogbench import write_ogbench_npz

from crl.datasets import DatasetStore
from crl.datasets.synthetic import episode_batch, synthetic_spec
from crl.errors import DatasetError
from crl.pipelines.cli import main
from crl.pipelines.verify import verify


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def keys(server: S3Server, prefix: str) -> list[str]:
    """Every object key under `prefix` in the test bucket (boto3 directly, not through the store)."""
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_every_data_command_on_s3(s3_root: str, s3_server: S3Server, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    store = DatasetStore(s3_root)
    parent = _parent(store)
    assert parent == "test/u-walk-v0"
    prefix = s3_root.split("/", 3)[3]
    assert f"{prefix}/test/u-walk/v0/manifest.json" in keys(s3_server, prefix)  # really in the bucket

    code, out, _ = run(capsys, "list")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["test/u-walk-v0", "1", "30"]
    code, out, _ = run(capsys, "show", parent, "--map", str(tmp_path / "map.png"))
    assert code == 0 and "30 transitions" in out and "7/7 free cells visited" in out
    assert (tmp_path / "map.png").stat().st_size > 10_000
    code, out, _ = run(capsys, "verify", parent)
    assert code == 0 and out.startswith("OK test/u-walk-v0")
    code, out, err = run(capsys, "split", "stitch", parent, "--max-cells", "2")
    assert code == 0 and out.strip() == "test/u-walk-stitch2-v0", err
    code, out, _ = run(capsys, "verify", "test/u-walk-stitch2-v0")
    assert code == 0 and "1 parent" in out
    split = store.open("test/u-walk-stitch2-v0")
    assert split.num_episodes >= 2 and split.load(["observation"])["observation"].shape[1] == 4

    code, out, err = run(capsys, "export", "minari", parent, "--minari-id", "s3test/walk-v0")
    assert code == 0, err
    code, out, err = run(capsys, "import", "minari", "s3test/walk-v0", "--dataset", "test/back")
    assert code == 0 and out.strip() == "test/back-v0", err
    a, b = store.open(parent).load(["observation", "action"]), store.open("test/back-v0").load(["observation",
                                                                                                  "action"])
    np.testing.assert_array_equal(a["observation"], b["observation"])
    write_ogbench_npz(tmp_path / "o.npz", [6, 9])
    code, out, err = run(capsys, "import", "ogbench", str(tmp_path / "o.npz"), "--dataset", "ogb/o")
    assert code == 0 and out.strip() == "ogb/o-v0", err
    assert store.open("ogb/o-v0").num_transitions == 15

    code, _, err = run(capsys, "rm", "--yes", parent)
    assert code == 2 and "test/u-walk-stitch2-v0" in err  # the split reads from it
    for did in ("test/u-walk-stitch2-v0", parent, "test/back-v0", "ogb/o-v0"):
        assert run(capsys, "rm", "--yes", did)[0] == 0
    assert store.ids() == []
    assert [k for k in keys(s3_server, prefix) if "/.claim-" not in k] == []


def test_verify_names_a_deleted_and_a_rewritten_object(s3_root: str, s3_server: S3Server,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    st = DatasetStore(s3_root).begin("test/dmg", synthetic_spec())
    with st.writer("w0", shard_rows=60) as w:
        w.append(episode_batch([50, 60, 40], seed=3))
    m = st.commit()
    assert [s["path"] for s in m["shards"]] == ["shards/w0-000000.zarr", "shards/w0-000001.zarr",
                                                "shards/w0-000002.zarr"]
    prefix = s3_root.split("/", 3)[3] + "/test/dmg/v0/shards"
    client = s3_server.client()
    gone = next(k for k in keys(s3_server, f"{prefix}/w0-000000.zarr/observation/c/"))
    client.delete_object(Bucket=s3_server.bucket, Key=gone)
    changed = next(k for k in keys(s3_server, f"{prefix}/w0-000002.zarr/action/c/"))
    body = bytearray(client.get_object(Bucket=s3_server.bucket, Key=changed)["Body"].read())
    body[-1] ^= 0xFF
    client.put_object(Bucket=s3_server.bucket, Key=changed, Body=bytes(body))
    code, out, _ = run(capsys, "verify", "test/dmg-v0")
    bad = [line.split()[2].rstrip(":") for line in out.splitlines() if line.startswith("MISMATCH")]
    assert code == 1 and bad == ["shards/w0-000000.zarr", "shards/w0-000002.zarr"]
    assert "FAILED (2 of 3 checks)" in out


@pytest.mark.parametrize("change, needle", [
    ({"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "refused access"),
    ({"AWS_ACCESS_KEY_ID": "AKIANOSUCHKEY0000000"}, "refused access"),
    ({"CRL_DATA_DIR": "s3://no-such-bucket/crl"}, "bucket 'no-such-bucket' of s3://no-such-bucket/crl does not exist"),
])
def test_wrong_credentials_and_missing_bucket_are_one_line(s3_root: str, s3_server: S3Server, tmp_path: Path,
                                                           change: dict[str, str], needle: str) -> None:
    write_ogbench_npz(tmp_path / "o.npz", [6])
    env = {**os.environ, "CRL_DATA_DIR": s3_root, **change}
    argv = ["import", "ogbench", str(tmp_path / "o.npz"), "--dataset", "ogb/o"] if "bucket" in needle else ["list"]
    p = subprocess.run([console_script("crl-data"), *argv], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and needle in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert "no-such-bucket" not in [b["Name"] for b in s3_server.client().list_buckets()["Buckets"]]
    assert keys(s3_server, s3_root.split("/", 3)[3]) == []  # nothing written


def test_server_gone_is_one_line(s3_server: S3Server) -> None:
    with pytest.raises(DatasetError, match="cannot use s3://crl-test/x at http://127.0.0.1:9"):
        DatasetStore("s3://crl-test/x", storage_options={"endpoint_url": "http://127.0.0.1:9",
                                                         "config_kwargs": {"retries": {"max_attempts": 1}}})


def test_copy_both_ways_with_lineage(s3_root: str, data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    local = DatasetStore(data_root)
    parent = _parent(local)
    code, out, err = run(capsys, "--root", str(data_root), "split", "stitch", parent, "--max-cells", "2")
    assert code == 0, err
    split = out.strip()
    code, _, err = run(capsys, "--root", str(data_root), "copy", split, "--to", s3_root)
    assert code == 2 and f"copy {parent} first" in err  # a split without its parent would be unreadable there
    for did in (parent, split):
        code, out, err = run(capsys, "--root", str(data_root), "copy", did, "--to", s3_root)
        assert code == 0 and out.startswith(f"copied {did} to {s3_root}"), err
    remote = DatasetStore(s3_root)
    assert remote.manifest(split) == local.manifest(split)  # same manifest: id, lineage, hashes
    assert verify(remote, split).ok
    code, out, _ = run(capsys, "--root", str(data_root), "copy", parent, "--to", s3_root)
    assert code == 0 and "already under" in out
    back = data_root.parent / "back"
    code, out, err = run(capsys, "--root", s3_root, "copy", parent, "--to", str(back))
    assert code == 0, err
    np.testing.assert_array_equal(DatasetStore(back).open(parent).load(["observation"])["observation"],
                                  local.open(parent).load(["observation"])["observation"])
    other = DatasetStore(data_root.parent / "other")  # a different test/u-walk-v0 elsewhere: never overwritten
    st = other.begin("test/u-walk", synthetic_spec())
    with st.writer("w0") as w:
        w.append(episode_batch([4], seed=9))
    st.commit()
    code, _, err = run(capsys, "--root", str(data_root.parent / "other"), "copy", parent, "--to", s3_root)
    assert code == 2 and "already exists" in err and "other content" in err
    assert remote.manifest(parent) == local.manifest(parent)


def test_server_gone_mid_command_is_one_line_and_loses_nothing(s3_root: str, s3_server: S3Server,
                                                               data_root: Path) -> None:
    remote = DatasetStore(s3_root)
    st = remote.begin("test/kept", synthetic_spec())
    with st.writer("w0") as w:
        w.append(episode_batch([20, 30], seed=1))
    kept = st.commit()
    local = DatasetStore(data_root)
    st = local.begin("test/big", synthetic_spec(state_size=29, action_size=8))
    with st.writer("w0", shard_rows=1000) as w:  # 6 shards: the copy is still running when the server goes
        w.append(episode_batch([500] * 12, seed=2, state_size=29, action_size=8))
    st.commit()
    env = {**os.environ, "AWS_MAX_ATTEMPTS": "2"}
    cmd = [console_script("crl-data"), "--root", str(data_root), "copy", "test/big-v0", "--to", s3_root]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prefix = s3_root.split("/", 3)[3] + "/test/big/.staging-v0/shards/"
    out, err = s3_server.stop_during(proc, lambda: len(keys(s3_server, prefix)) >= 5)  # mid-command
    assert proc.returncode == 2 and out == "", err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("crl-data: error: lost the connection to the storage server at http://127.0.0.1:")
    assert "committed versions are not affected" in err
    assert remote.versions("test/big") == [] and remote.staging_versions("test/big") == [0]  # nothing published
    assert remote.manifest("test/kept-v0") == kept and verify(remote, "test/kept-v0").ok  # nothing lost
    assert remote.writer_status("test/big-v0")[0] == "stale"  # its writer is gone: `rm` or a new copy may go on


def test_only_lost_connections_count_as_a_server_gone() -> None:
    from botocore.exceptions import EndpointConnectionError

    from crl.datasets.location import connection_failure

    try:
        try:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/b/k")
        except EndpointConnectionError:
            raise RuntimeError("aborting the staging version failed too") from None
    except RuntimeError as e:
        lost = connection_failure(e)  # found while handling the other
    assert lost is None  # `from None`: the chain was cut on purpose
    try:
        try:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/b/k")
        except EndpointConnectionError as inner:
            raise RuntimeError("aborting the staging version failed too") from inner
    except RuntimeError as e:
        lost = connection_failure(e)
    assert isinstance(lost, DatasetError) and "EndpointConnectionError" in str(lost)
    assert connection_failure(BrokenPipeError()) is None  # a closed stdout (`crl-data list | head`)
    assert connection_failure(ValueError("a bug")) is None
