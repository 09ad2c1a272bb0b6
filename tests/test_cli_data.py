"""`crl-data` through its real entry point: in-process `main(argv)` and the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import console_script
from test_ogbench import write_ogbench_npz

from crl.datasets import DatasetStore
from crl.datasets.synthetic import episode_batch, synthetic_spec
from crl.pipelines.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def _make(name: str = "test/pt") -> str:
    st = DatasetStore().begin(name, synthetic_spec(), provenance={"policy": "random"})
    with st.writer("w0", shard_rows=100) as w:
        w.append(episode_batch([50, 70, 30], seed=1))
    return st.commit()["id"]


def test_list_show_verify_rm(data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "list")[0] == 0
    did = _make()
    _make("test/other")
    code, out, _ = run(capsys, "list")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:3] == ["ID", "EPISODES", "TRANSITIONS"]
    assert lines[2].split()[:3] == ["test/pt-v0", "3", "150"] and "synthetic_point" in lines[2]
    code, out, _ = run(capsys, "show", did)
    assert code == 0 and "150 transitions" in out and "content hash" in out
    code, out, _ = run(capsys, "show", did, "--json")
    assert json.loads(out)["totals"]["episodes"] == 3
    code, out, _ = run(capsys, "verify", did)
    assert code == 0 and out.startswith("OK test/pt-v0")
    code, out, _ = run(capsys, "rm", "--yes", did)
    assert code == 0 and not DatasetStore().exists(did)


def test_list_flags_a_broken_manifest_and_lists_the_rest(data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make("test/a")
    _make("test/b")
    bad = data_root / "test/a/v0/manifest.json"
    bad.chmod(0o644)
    bad.write_text("{\"format\": \"crl-dataset\", \"format_vers")  # truncated mid-write by a foreign tool
    code, out, err = run(capsys, "list")
    lines = out.strip().splitlines()
    assert code == 1 and lines[1].split() == ["test/a-v0", "-", "-", "-", "-", "-", "BROKEN", "manifest"]
    assert lines[2].split()[:3] == ["test/b-v0", "3", "150"]
    assert err.count("\n") == 1 and "test/a-v0 is damaged" in err and "crl-data rm test/a-v0" in err
    code, _, err = run(capsys, "show", "test/a-v0")
    assert code == 2 and "not valid JSON" in err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["show", "../../etc/passwd-v0"], "invalid dataset id"),
        (["show", "test/Bad-v0"], "invalid dataset id"),
        (["show", "test/nothing-v0"], "unknown dataset"),
        (["verify", "test/pt"], "has no version"),
        (["rm", "--yes", "test/nothing-v3"], "unknown dataset"),
        (["import", "ogbench", "missing.npz", "--dataset", "ogb/x"], "does not exist"),
        (["import", "ogbench", "x.npz", "--dataset", "ogb/x-v0"], "carries a version"),
        (["import", "minari", "nope/nothing-v0", "--dataset", "m/x"], "cannot load"),
        (["export", "minari", "test/nothing-v0"], "unknown dataset"),
        (["import", "ogbench", "x.npz"], "Missing option '--dataset'"),
        (["export", "minari", "test/pt-v0", "--format", "zip"], "Invalid value for '--format'"),
        (["frobnicate"], "No such command"),
    ],
)
def test_user_errors_are_one_line_exit_2(data_root: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                         needle: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert [p for p in data_root.rglob("*") if p.is_file()] == []


def test_existing_staging_version_is_refused(data_root: Path, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    st = DatasetStore().begin("ogb/busy", synthetic_spec())  # an interrupted collection
    with st.writer("w0") as w:
        w.append(episode_batch([7, 8], seed=0))
    code, out, _ = run(capsys, "list", "--all")
    assert code == 0 and out.splitlines()[1].split()[:4] == ["ogb/busy-v0", "(staging)", "2", "15"]
    assert run(capsys, "list")[1] == ""
    write_ogbench_npz(tmp_path / "a.npz", [5])
    code, _, err = run(capsys, "import", "ogbench", str(tmp_path / "a.npz"), "--dataset", "ogb/busy")
    assert code == 2 and "unfinished" in err and "crl-data rm ogb/busy-v0" in err
    assert run(capsys, "rm", "--yes", "ogb/busy-v0")[0] == 0
    code, out, _ = run(capsys, "import", "ogbench", str(tmp_path / "a.npz"), "--dataset", "ogb/busy")
    assert code == 0 and out.strip() == "ogb/busy-v0"


def test_import_ogbench_with_val_and_minari_round_trip(data_root: Path, capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    write_ogbench_npz(tmp_path / "antmaze-x-v0.npz", [10, 12], seed=0)
    write_ogbench_npz(tmp_path / "antmaze-x-v0-val.npz", [8], seed=1)
    code, out, err = run(capsys, "import", "ogbench", str(tmp_path / "antmaze-x-v0.npz"), "--dataset", "ogb/ax")
    assert code == 0, err
    assert out.split() == ["ogb/ax-v0", "ogb/ax-v1"]
    val = DatasetStore().manifest("ogb/ax-v1")
    assert val["parent"]["id"] == "ogb/ax-v0" and val["provenance"]["split"] == "val"
    assert DatasetStore().children("ogb/ax-v0") == ["ogb/ax-v1"]
    code, out, err = run(capsys, "export", "minari", "ogb/ax-v0", "--minari-id", "ogb/ax-shared-v0")
    assert code == 0 and out.strip() == "ogb/ax-shared-v0", err
    code, _, err = run(capsys, "export", "minari", "ogb/ax-v0", "--minari-id", "ogb/ax-shared-v0")
    assert code == 2 and "already exists" in err
    code, out, err = run(capsys, "import", "minari", "ogb/ax-shared-v0", "--dataset", "ogb/ax")
    assert code == 0 and out.strip() == "ogb/ax-v2", err
    a, b = DatasetStore().open("ogb/ax-v0").load(), DatasetStore().open("ogb/ax-v2").load()
    for k in b:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_console_script_and_rm_confirmation(data_root: Path) -> None:
    did = _make()
    env = {**os.environ, "CRL_DATA_DIR": str(data_root)}
    cli = console_script("crl-data")
    p = subprocess.run([cli, "rm", did], input="n\n", capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1 and DatasetStore().exists(did)
    p = subprocess.run([cli, "show", "bad id"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("crl-data: error: invalid dataset id")
    p = subprocess.run([cli, "list"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and did in p.stdout
