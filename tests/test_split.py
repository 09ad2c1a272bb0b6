"""Stitching splits on real Zarr stores: the K-cell rule (checked with this file's own BFS), tasks, reading a split
like a dataset, lineage (verify, rm), Minari export, and CLI errors."""

from __future__ import annotations

import itertools
from collections import deque
from pathlib import Path

import numpy as np
import pytest

import crl.envs
from crl.datasets import DatasetStore
from crl.datasets.stitch_split import cut_episode, load_tasks, stitch_split, stitching_tasks
from crl.datasets.synthetic import episode_batch, synthetic_spec
from crl.errors import DatasetError
from crl.pipelines.cli import main
from crl.pipelines.verify import verify

SPEC = crl.envs.make("point_u4_maze").spec.to_dict()
LAYOUT = [row for row in SPEC["layout_text"].splitlines() if row]
CELL = float(SPEC["config"]["cell_size"])
FREE = [(r, c) for r, row in enumerate(LAYOUT) for c, ch in enumerate(row) if ch != "#"]
# The U4 corridor from the start cell to the far end, one free cell after the other.
CORRIDOR = [(2, 1), (1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (4, 3), (5, 3), (5, 2), (5, 1), (4, 1)]


def bfs(src: tuple[int, int]) -> dict[tuple[int, int], int]:
    """Steps between free cells (4-connected), written here independently of crl.envs.maze."""
    out, queue = {src: 0}, deque([src])
    while queue:
        r, c = queue.popleft()
        for nxt in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if nxt in FREE and nxt not in out:
                out[nxt] = out[(r, c)] + 1
                queue.append(nxt)
    return out


DIST = {a: bfs(a) for a in FREE}


def cell_of(xy: np.ndarray) -> tuple[int, int]:
    """The free cell of a point: its square, or for a point in a wall the free square nearest to it."""
    r, c = (int(v) for v in np.floor(np.asarray(xy) / CELL + 0.5))
    if (r, c) in FREE:
        return r, c
    centre = np.multiply(FREE, CELL)
    gap = np.linalg.norm(np.asarray(xy) - np.clip(xy, centre - CELL / 2, centre + CELL / 2), axis=-1)
    return FREE[int(np.argmin(gap))]


def walk(cells: list[tuple[int, int]], steps: int, rng: np.random.Generator, graze: bool = False) -> np.ndarray:
    """xy of a point walking through `cells` centre to centre, `steps` states per cell boundary; with graze,
    some states poke 0.1 cell into the wall beside the corridor (their cell is the one they came from)."""
    xy = [np.multiply(cells[0], CELL)]
    for a, b in itertools.pairwise(cells):
        for t in range(1, steps + 1):
            xy.append((np.multiply(a, CELL) * (steps - t) + np.multiply(b, CELL) * t) / steps)
    xy = np.asarray(xy, dtype=np.float64) + rng.normal(0, 0.05, (len(xy), 2))
    if graze:
        for i in range(0, len(xy), 7):
            cell = cell_of(xy[i])
            for d in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                if (cell[0] + d[0], cell[1] + d[1]) not in FREE:
                    xy[i] = np.multiply(cell, CELL) + np.multiply(d, CELL * 0.6)
                    break
    return xy.astype(np.float32)


def batch(paths: list[np.ndarray], first_id: int = 0) -> dict[str, np.ndarray]:
    """A format-v1 episode batch whose states are the given xy paths (T+1 states each)."""
    lengths = [len(p) - 1 for p in paths]
    b = episode_batch(lengths, first_episode_id=first_id, seed=first_id)
    obs = np.concatenate([np.concatenate([p[:-1], np.diff(p, axis=0)], axis=1) for p in paths])
    b["observation"], b["achieved_goal"], b["qpos"] = obs, obs[:, :2], obs[:, :2]
    b["final_observation"] = np.stack([np.concatenate([p[-1], p[-1] - p[-2]]) for p in paths])
    b["final_achieved_goal"] = b["final_qpos"] = b["final_observation"][:, :2]
    return b


def make_parent(store: DatasetStore, name: str = "test/u4", seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    paths = [walk(CORRIDOR, 6, rng), walk(CORRIDOR[::-1], 5, rng, graze=True), walk(CORRIDOR[2:7], 9, rng),
             walk([(1, 2), (1, 2)], 4, rng), walk(CORRIDOR + CORRIDOR[-2::-1], 3, rng, graze=True)]
    st = store.begin(name, SPEC, provenance={"policy": "corridor walk"})
    with st.writer("w0", shard_rows=120) as w:
        w.append(batch(paths[:3]))
        w.append(batch(paths[3:], first_id=3))
    return st.commit()["id"]


def states(ep: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([ep["observation"][:, :2], ep["final_observation"][None, :2]])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_segments_obey_the_rule_are_greedy_and_read_like_episodes(data_root: Path) -> None:
    store = DatasetStore()
    pid = make_parent(store)
    before = files(data_root)
    m = stitch_split(store, pid, 3)
    assert m["id"] == "test/u4-stitch3-v0" and m["kind"] == "split" and m["shards"] == []
    assert files(data_root / "test/u4") == {k[len("test/u4/"):]: v for k, v in before.items()}  # parent untouched
    sp = m["split"]
    parent = store.open(pid)
    P = parent.load()
    assert sp["transitions"] + sp["dropped_transitions"] == parent.num_transitions
    r = store.open(m["id"])
    assert r.num_episodes == sp["segments"] == len(list(r.iter_episodes(["step"]))) > 5
    assert r.env_spec["goal_indices"] == [0, 1] and r.fields == parent.fields
    po = parent.episode_offsets
    for i, ep in enumerate(r.iter_episodes()):
        cells = [cell_of(xy) for xy in states(ep)]
        assert max(DIST[a][b] for a in cells for b in cells) <= 3, i
        a, b = int(r.start[i]), int(r.end[i])
        assert b - a >= 2 and len(ep["action"]) == b - a
        np.testing.assert_array_equal(ep["observation"], P["observation"][a:b])
        e = int(np.searchsorted(po, a, side="right")) - 1
        if b == po[e + 1]:  # the segment ends with its parent episode: the parent's final state
            np.testing.assert_array_equal(ep["final_observation"], P["final_observation"][e])
            assert ep["truncation"][-1] == P["truncation"][b - 1]
        else:  # cut inside: the parent's next state, and the state after it would break the rule (greedy)
            np.testing.assert_array_equal(ep["final_observation"], P["observation"][b])
            assert ep["truncation"][-1] and not ep["terminal"][-1]
            after = cell_of(P["observation"][b + 1, :2] if b + 1 < po[e + 1] else P["final_observation"][e, :2])
            assert max(DIST[after][c] for c in cells) > 3, i
        assert (ep["episode_id"] == i).all()
        single = r.episode(i)
        for k in ep:
            np.testing.assert_array_equal(single[k], ep[k], err_msg=k)
    flat = r.load()
    np.testing.assert_array_equal(flat["episode_offsets"], r.episode_offsets)
    assert flat["observation"].shape == (r.num_transitions, 4)
    for k in ("observation", "final_observation", "truncation", "episode_id", "final_qvel"):
        np.testing.assert_array_equal(r.array(k).compute(), flat[k], err_msg=k)
    last = r.episode(-1)
    np.testing.assert_array_equal(last["action"], flat["action"][r.episode_offsets[-2]:])


def test_min_length_drops_short_segments_and_counts_them(data_root: Path) -> None:
    store = DatasetStore()
    pid = make_parent(store)
    sp = stitch_split(store, pid, 3, name="test/long", min_length=15)["split"]
    r = store.open("test/long-v0")
    assert sp["dropped_segments"] > 0 and (np.diff(r.episode_offsets) >= 15).all()
    assert sp["transitions"] + sp["dropped_transitions"] == store.open(pid).num_transitions


def test_legacy_spec_without_layout_text_resolves_as_written(data_root: Path) -> None:
    """A spec from before 2026-12-01 (no layout_text, layout name "u4" = today's 5x5 "u") splits over that maze,
    and the split records the layout text it used."""
    from crl.envs.maze import load_layout

    old = {**SPEC, "layout_text": None, "config": {**SPEC["config"], "layout": "u4"}}
    old.pop("layout_text")
    store = DatasetStore()
    st = store.begin("test/old", old)
    with st.writer("w0") as w:
        w.append(batch([walk([(1, 1), (1, 2), (1, 3)], 4, np.random.default_rng(0))]))
    st.commit()
    m = stitch_split(store, "test/old-v0", 1)
    u = load_layout("u")
    assert m["env_spec"]["layout_text"] == u.to_text()
    assert "layout_text" not in store.manifest("test/old-v0")["env_spec"]
    assert m["split"]["diameter"] == int(u.cell_distance_matrix.max()) != 10


def test_cut_episode_greedy_on_a_line() -> None:
    """Cells 0..9 on a line (distance |i - j|): cuts at the first state that breaks the rule; a jump further
    than K is in no segment."""
    line = np.abs(np.subtract.outer(np.arange(10), np.arange(10))).astype(float)
    assert cut_episode(np.array([0, 0, 1, 2, 3, 3, 2, 4, 5]), line, 2) == [(0, 3), (3, 7), (7, 8)]
    assert cut_episode(np.array([0, 1, 1, 9, 9, 8]), line, 2) == [(0, 2), (3, 5)]
    assert cut_episode(np.array([4, 4, 4]), line, 1) == [(0, 2)]


def test_tasks_sit_at_the_distances_they_claim(data_root: Path) -> None:
    store = DatasetStore()
    sid = stitch_split(store, make_parent(store), 3)["id"]
    t = load_tasks(store, sid)
    assert t["max_cells"] == 3 and t["start_cell"].shape == (len(FREE) * (len(FREE) - 1), 2)
    pairs = {(tuple(a), tuple(b)) for a, b in zip(t["start_cell"].tolist(), t["goal_cell"].tolist(), strict=True)}
    assert pairs == {(a, b) for a in FREE for b in FREE if a != b}
    for a, b, d in zip(t["start_cell"].tolist(), t["goal_cell"].tolist(), t["distance"].tolist(), strict=True):
        assert DIST[tuple(a)][tuple(b)] == d
    assert sorted(set(t["distance"].tolist())) == list(range(1, 11))  # the U4 corridor: diameter 10
    np.testing.assert_array_equal(t["in_distribution"], t["distance"] <= 3)
    assert sorted(set(t["distance"][~t["in_distribution"]].tolist())) == list(range(4, 11))
    fresh = stitching_tasks(crl.envs.maze_from_spec(SPEC), 3)
    for k in ("start_cell", "goal_cell", "distance", "in_distribution"):
        np.testing.assert_array_equal(fresh[k], t[k], err_msg=k)


def test_lineage_verify_and_rm(data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = DatasetStore()
    pid = make_parent(store)
    code, out, err = run(capsys, "split", "stitch", pid, "--max-cells", "2", "--dataset", "test/near")
    assert code == 0 and out.strip() == "test/near-v0" and "segments" in err
    sid = "test/near-v0"
    assert verify(store, sid).ok and verify(store, pid).ok
    code, out, _ = run(capsys, "list")
    assert code == 0 and f"split of {pid} (max 2 cells)" in out
    code, out, _ = run(capsys, "show", sid)
    assert code == 0 and "split        stitch of test/u4-v0" in out and "evaluation tasks" in out
    code, out, _ = run(capsys, "verify", sid)
    assert code == 0 and out.startswith("OK test/near-v0: 1 own + 2 parent shards")
    code, _, err = run(capsys, "rm", "--yes", pid)
    assert code == 2 and sid in err and "--force" in err and err.count("\n") == 1 and store.exists(pid)
    assert run(capsys, "rm", "--yes", "--force", pid)[0] == 0 and not store.exists(pid)
    with pytest.raises(DatasetError, match="parent test/u4-v0 is gone"):
        store.open(sid)
    assert load_tasks(store, sid)["max_cells"] == 2  # tasks need no parent
    code, out, _ = run(capsys, "verify", sid)
    assert code == 1 and "MISMATCH test/near-v0 parent test/u4-v0: the parent is gone" in out
    assert "split of test/u4-v0 (max 2 cells); PARENT GONE" in run(capsys, "list")[1]
    make_parent(store, seed=1)  # a different test/u4-v0 under the same id
    with pytest.raises(DatasetError, match="changed since the split was made"):
        store.open(sid)
    code, out, _ = run(capsys, "verify", sid)
    assert code == 1 and "the parent changed" in out
    assert "PARENT CHANGED" in run(capsys, "list")[1]
    code, _, err = run(capsys, "export", "minari", sid)
    assert code == 2 and "changed" in err and err.count("\n") == 1
    assert run(capsys, "rm", "--yes", sid)[0] == 0


def test_minari_export_of_a_split(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import minari

    from crl.datasets.minari_io import export_minari, import_minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    store = DatasetStore()
    sid = stitch_split(store, make_parent(store), 3)["id"]
    r = store.open(sid)
    mid = export_minari(r, minari_id="test/stitch-v0")
    ds = minari.load_dataset(mid)
    assert ds.total_episodes == r.num_episodes and ds.total_steps == r.num_transitions
    ep = next(iter(ds.iterate_episodes([1])))
    seg = r.episode(1)
    np.testing.assert_array_equal(ep.observations["achieved_goal"][-1], seg["final_achieved_goal"])
    assert ep.truncations[-1] or ep.terminations[-1]
    back = store.open(import_minari(store, mid, "test/back")["id"]).load()
    flat = r.load()
    for k in flat:
        np.testing.assert_array_equal(back[k], flat[k], err_msg=k)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["split", "stitch", "test/u4-v0", "--max-cells", "0"], "out of range"),
        (["split", "stitch", "test/u4-v0", "--max-cells", "10"], "choose 1..9"),
        (["split", "stitch", "test/none-v0", "--max-cells", "3"], "unknown dataset"),
        (["split", "stitch", "test/syn-v0", "--max-cells", "3"], "not a crl maze env"),
        (["split", "stitch", "test/u4-stitch3-v0", "--max-cells", "2"], "is itself a split"),
        (["split", "stitch", "test/u4-v0", "--max-cells", "3", "--min-length", "999"], "lower --min-length"),
        (["split", "stitch", "test/u4-v0", "--max-cells", "3", "--dataset", "Bad/x"], "invalid dataset name"),
        (["split", "stitch", "test/u4-v0"], "Missing option '--max-cells'"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(data_root: Path, capsys: pytest.CaptureFixture[str],
                                                            argv: list[str], needle: str) -> None:
    store = DatasetStore()
    make_parent(store)
    stitch_split(store, "test/u4-v0", 3)
    st = store.begin("test/syn", synthetic_spec())
    with st.writer("w0") as w:
        w.append(episode_batch([10, 12], seed=0))
    st.commit()
    before = files(data_root)
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert files(data_root) == before


def test_split_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "split", "stitch", "--help")
    assert code == 0 and "--max-cells" in out and "crl-data split stitch crl/point-u4-v0 --max-cells 3" in out
