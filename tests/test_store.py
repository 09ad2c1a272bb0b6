"""DatasetStore / ShardWriter / DatasetReader on real zarr shards in a temporary root."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr

from crl.datasets import DatasetStore, parse_id, parse_name
from crl.datasets.synthetic import episode_batch, synthetic_spec
from crl.errors import DatasetError

SPEC = synthetic_spec()


def _write(store: DatasetStore, name: str, batches: list[dict], shard_rows: int = 100, **kw) -> dict:
    st = store.begin(name, SPEC, provenance={"policy": "test"}, **kw)
    with st.writer("w0", shard_rows=shard_rows) as w:
        for b in batches:
            w.append(b)
    return st.commit()


def test_round_trip_arrays_equal_and_shards_hold_whole_episodes(data_root: Path) -> None:
    store = DatasetStore()
    b1 = episode_batch([50, 70, 30, 100, 20], seed=1)
    b2 = episode_batch([40, 60], first_episode_id=5, seed=2)
    m = _write(store, "test/pt", [b1, b2])
    assert m["id"] == "test/pt-v0" and m["totals"]["episodes"] == 7 and m["totals"]["transitions"] == 370
    assert all(s["rows"] <= 100 or s["episodes"] == 1 for s in m["shards"])
    assert sum(s["rows"] for s in m["shards"]) == 370
    r = store.open("test/pt-v0")
    got = r.load()
    want = {k: np.concatenate([b1[k], b2[k]]) for k in b1 if k != "episode_offsets"}
    for k, v in want.items():
        assert got[k].shape == v.shape, k
        np.testing.assert_array_equal(got[k], v.astype(got[k].dtype), err_msg=k)
    np.testing.assert_array_equal(got["episode_offsets"], np.cumsum([0, 50, 70, 30, 100, 20, 40, 60]))
    ep = r.episode(3)
    assert ep["step"].tolist() == list(range(100)) and ep["final_observation"].shape == (4,)
    np.testing.assert_array_equal(ep["observation"], b1["observation"][150:250])
    np.testing.assert_array_equal(r.episode(-1)["final_qpos"], b2["final_qpos"][-1])
    lazy = r.array("observation")
    assert lazy.shape == (370, 4)
    np.testing.assert_allclose(float(lazy.sum().compute()), float(want["observation"].sum()), rtol=1e-5)
    assert [e["episode_id"][0] for e in r.iter_episodes(["episode_id"])] == list(range(7))
    with pytest.raises(DatasetError, match="out of range"):
        r.episode(7)


def test_shards_are_readable_with_plain_zarr_and_the_manifest(data_root: Path) -> None:
    """The public contract: manifest.json + zarr alone recover every transition."""
    store = DatasetStore()
    b = episode_batch([30, 40, 50], seed=3)
    _write(store, "test/plain", [b], shard_rows=60)
    vdir = data_root / "test" / "plain" / "v0"
    manifest = json.loads((vdir / "manifest.json").read_text())
    obs, offsets = [], [0]
    for s in manifest["shards"]:
        g = zarr.open_group(str(vdir / s["path"]), mode="r")
        assert g.attrs["format"] == "crl-dataset" and g.attrs["rows"] == s["rows"]
        obs.append(g["observation"][:])
        offsets += list(np.asarray(g["episode_offsets"][1:]) + offsets[-1])
    np.testing.assert_array_equal(np.concatenate(obs), b["observation"])
    assert offsets == [0, 30, 70, 120]


def test_jax_arrays_accepted(data_root: Path) -> None:
    import jax.numpy as jnp

    store = DatasetStore()
    b = {k: jnp.asarray(v) for k, v in episode_batch([10, 12], seed=4).items()}
    m = _write(store, "test/jax", [b])
    np.testing.assert_array_equal(store.open(m["id"]).load(["action"])["action"], np.asarray(b["action"]))


@pytest.mark.parametrize(
    "bad", ["../x-v0", "/abs/x-v0", "a/../b-v0", "A/b-v0", "a/b c-v0", "a/b", "a/b-v01", "a-v0", "a/b/c-v0",
            "a/b-v-1", "s3://x/y-v0", "a/.hidden-v0"]
)
def test_bad_ids_refused(bad: str) -> None:
    with pytest.raises(DatasetError):
        parse_id(bad)


def test_ids_parse_and_names_validate() -> None:
    d = parse_id("crl/point-u4_maze-v12")
    assert (d.namespace, d.name, d.version, str(d)) == ("crl", "point-u4_maze", 12, "crl/point-u4_maze-v12")
    assert parse_name("crl/ant") == ("crl", "ant")
    for bad in ["crl/ant-v0", "../ant", "crl", "crl/Ant"]:
        with pytest.raises(DatasetError):
            parse_name(bad)


def test_versions_are_immutable_and_new_data_makes_next_version(data_root: Path) -> None:
    store = DatasetStore()
    m0 = _write(store, "test/imm", [episode_batch([10], seed=0)])
    with pytest.raises(DatasetError, match="immutable"):
        store.begin("test/imm", SPEC, version=0)
    m1 = _write(store, "test/imm", [episode_batch([12], seed=1)], parent="test/imm-v0")
    assert m1["id"] == "test/imm-v1"
    assert m1["parent"] == {"id": "test/imm-v0", "content_hash": m0["content_hash"]}
    assert store.next_version("test/imm") == 2
    shard_file = next((data_root / "test/imm/v0/shards").rglob("c/0/0"))
    assert not shard_file.stat().st_mode & 0o222  # committed files are read-only
    assert [m["id"] for m in store.list()] == ["test/imm-v0", "test/imm-v1"]
    store.remove("test/imm-v0")
    assert [str(i) for i in store.ids()] == ["test/imm-v1"]
    with pytest.raises(DatasetError, match="unknown dataset"):
        store.manifest("test/imm-v0")


def test_commit_refuses_existing_version_and_staging_is_exclusive(data_root: Path) -> None:
    store = DatasetStore()
    st = store.begin("test/ex", SPEC)
    with pytest.raises(DatasetError, match="unfinished"):
        store.begin("test/ex", SPEC)
    with st.writer("w0") as w:
        w.append(episode_batch([5], seed=0))
    (data_root / "test/ex/v0").mkdir()  # someone else published v0 meanwhile
    with pytest.raises(DatasetError, match="already exists"):
        st.commit()
    assert store.list() == []
    st.abort()
    assert not (data_root / "test/ex/.staging-v0").exists()


@pytest.mark.parametrize(
    "mutate, msg",
    [
        (lambda b: b.pop("qvel"), "missing"),
        (lambda b: b.__setitem__("action", b["action"][:-1]), "first axis"),
        (lambda b: b.__setitem__("observation", b["observation"][:, :3]), "width"),
        (lambda b: b.__setitem__("episode_offsets", np.array([0, 5, 5, 30])), "strictly increase"),
        (lambda b: b.__setitem__("episode_id", np.arange(30)), "constant within"),
        (lambda b: b.__setitem__("terminal", np.full(30, 2.0)), "boolean"),
    ],
)
def test_bad_batches_refused_before_anything_is_written(data_root: Path, mutate, msg: str) -> None:
    store = DatasetStore()
    st = store.begin("test/bad", SPEC)
    b = episode_batch([10, 20], seed=0)
    mutate(b)
    w = st.writer("w0")
    with pytest.raises(DatasetError, match=msg):
        w.append(b)
    w.close()
    assert st.completed() == {}


def test_concurrent_writers_share_one_staging(data_root: Path) -> None:
    """Two writers (threads here, processes in test_store_kill) write shards of one version at once."""
    store = DatasetStore()
    st = store.begin("test/multi", SPEC)

    def work(worker: str, first: int) -> None:
        attached = store.staging("test/multi-v0")  # what a remote worker would do
        with attached.writer(worker, shard_rows=150) as w:
            for k in range(6):
                w.append(episode_batch([40, 60], first_episode_id=first + 2 * k, seed=first + k))

    threads = [threading.Thread(target=work, args=(f"w{i}", 1000 * i)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = st.completed()
    assert set(done) == {"w0", "w1"} and all(d["rows"] == 600 for d in done.values())
    assert done["w1"]["last_episode_id"] == 1011
    m = st.commit()
    assert m["totals"]["episodes"] == 24 and m["totals"]["transitions"] == 1200
    ids = store.open("test/multi-v0").load(["episode_id"])["episode_id"]
    assert np.unique(ids).size == 24 and (np.diff(ids) >= 0).all()  # shard order = worker then sequence


def test_fsspec_memory_root() -> None:
    store = DatasetStore("memory://crl-test-root")
    m = _write(store, "test/mem", [episode_batch([15, 25], seed=5)], shard_rows=20)
    r = store.open(m["id"])
    np.testing.assert_array_equal(r.load(["step"])["step"][:15], np.arange(15))
    assert [x["id"] for x in store.list()] == ["test/mem-v0"]
    store.remove("test/mem-v0")


def test_writer_copies_caller_buffers_and_accepts_out_of_order_episode_ids(data_root: Path) -> None:
    """Collectors emit episodes in completion order (ids not monotonic across batches) and may reuse buffers."""
    store = DatasetStore()
    st = store.begin("test/order", SPEC)
    b1 = episode_batch([10, 10], first_episode_id=4, seed=0)
    b2 = episode_batch([10], first_episode_id=1, seed=1)
    want = b1["observation"].copy()
    with st.writer("w0", shard_rows=1000) as w:
        w.append(b1)
        b1["observation"][:] = -1.0  # the caller reuses its buffer before the shard is written
        w.append(b2)
        dup = episode_batch([5, 5], first_episode_id=9, seed=2)
        dup["episode_id"][:] = 9
        dup["episode_offsets"] = np.array([0, 5, 10])
        with pytest.raises(DatasetError, match="share an episode_id"):
            w.append(dup)
    assert st.completed()["w0"]["last_episode_id"] == 5
    r = store.open(st.commit()["id"])
    np.testing.assert_array_equal(r.load(["observation"])["observation"][:20], want)
    assert r.manifest["shards"][0]["first_episode_id"] == 1


def test_damaged_shard_reads_raise_one_dataset_error(data_root: Path) -> None:
    """A shard missing an array, or with a corrupt chunk, fails every read path with a DatasetError that names
    the version and shard and points at `crl-data verify` (never a KeyError or a silent partial read)."""
    import shutil

    store = DatasetStore()
    _write(store, "test/dmg", [episode_batch([60, 50], seed=0), episode_batch([70, 40], first_episode_id=2, seed=1)])
    r = store.open("test/dmg-v0")
    first, last = r.manifest["shards"][0]["path"], r.manifest["shards"][-1]["path"]
    assert first != last
    shutil.rmtree(data_root / "test/dmg/v0" / last / "action")
    r = store.open("test/dmg-v0")
    want = rf"test/dmg-v0: shard {last} has no array 'action'.*crl-data verify test/dmg-v0"
    for read in (lambda: r.load(), lambda: r.load(["action"]), lambda: r.episode(3), lambda: r.array("action"),
                 lambda: list(r.iter_episodes(["action"]))):
        with pytest.raises(DatasetError, match=want):
            read()
    assert r.episode(0)["action"].shape == (60, 2)  # the intact shard still reads
    assert r.load(["observation"])["observation"].shape == (220, 4)
    chunk = data_root / "test/dmg/v0" / first / "observation/c/0/0"
    chunk.chmod(0o644)
    chunk.write_bytes(b"not a blosc frame")
    with pytest.raises(DatasetError, match=rf"{first} array 'observation' cannot be decoded"):
        store.open("test/dmg-v0").load(["observation"])
    shutil.rmtree(data_root / "test/dmg/v0" / first)
    with pytest.raises(DatasetError, match=rf"{first} is missing.*crl-data verify test/dmg-v0"):
        store.open("test/dmg-v0").episode(0)


def test_a_broken_manifest_hides_nothing_else(data_root: Path) -> None:
    store = DatasetStore()
    for name in ("test/a", "test/b", "test/c"):
        _write(store, name, [episode_batch([10], seed=0)])
    bad = data_root / "test/b/v0/manifest.json"
    bad.chmod(0o644)
    bad.write_text(bad.read_text()[:100])
    good, broken = store.scan()
    assert [m["id"] for m in good] == ["test/a-v0", "test/c-v0"] == [m["id"] for m in store.list()]
    assert [i for i, _ in broken] == ["test/b-v0"] and "not valid JSON" in broken[0][1]
    with pytest.raises(DatasetError, match="not valid JSON"):
        store.open("test/b-v0")
