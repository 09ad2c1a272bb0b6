"""OGBench npz import: every transition and every episode boundary survives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crl.datasets import DatasetStore
from crl.datasets.ogbench_io import import_ogbench, load_npz
from crl.errors import DatasetError


def write_ogbench_npz(path: Path, lengths: list[int], seed: int = 0, obs_dim: int = 29) -> dict[str, np.ndarray]:
    """OGBench layout: an episode of L transitions is L+1 rows; its last row (terminals=1) is the final state."""
    rng = np.random.default_rng(seed)
    rows = sum(L + 1 for L in lengths)
    obs = np.cumsum(rng.normal(0, 0.05, (rows, obs_dim)), 0).astype(np.float32)
    term = np.zeros(rows, np.float32)
    term[np.cumsum([L + 1 for L in lengths]) - 1] = 1
    data = {"observations": obs, "actions": rng.uniform(-1, 1, (rows, 8)).astype(np.float32), "terminals": term,
            "qpos": obs[:, :15].copy(), "qvel": obs[:, 15:29].copy()}
    np.savez(path, **data)
    return data


def test_ogbench_import_keeps_every_transition_and_boundary(data_root: Path, tmp_path: Path) -> None:
    lengths = [20, 35, 1, 50]
    src = write_ogbench_npz(tmp_path / "antmaze-test-navigate-v0.npz", lengths)
    store = DatasetStore()
    m = import_ogbench(store, tmp_path / "antmaze-test-navigate-v0.npz", "ogb/antmaze", episodes_per_batch=3)
    assert m["id"] == "ogb/antmaze-v0" and m["totals"]["episodes"] == 4 and m["totals"]["transitions"] == 106
    assert m["env_spec"]["nq"] == 15 and m["provenance"]["split"] == "train"
    d = store.open(m["id"]).load()
    np.testing.assert_array_equal(d["episode_offsets"], np.cumsum([0, *lengths]))
    # Rebuild the npz rows from the dataset: transitions, then the episode's final row.
    obs, act, qpos, term = [], [], [], []
    for e in range(4):
        a, b = d["episode_offsets"][e], d["episode_offsets"][e + 1]
        obs += [d["observation"][a:b], d["final_observation"][e:e + 1]]
        act += [d["action"][a:b], d["final_action"][e:e + 1]]
        qpos += [d["qpos"][a:b], d["final_qpos"][e:e + 1]]
        term += [np.zeros(b - a), [1.0]]
        assert d["truncation"][b - 1] and not d["truncation"][a:b - 1].any()
        np.testing.assert_array_equal(d["desired_goal"][a:b], np.repeat(d["final_achieved_goal"][e:e + 1], b - a, 0))
    np.testing.assert_array_equal(np.concatenate(obs), src["observations"])
    np.testing.assert_array_equal(np.concatenate(act), src["actions"])
    np.testing.assert_array_equal(np.concatenate(qpos), src["qpos"])
    np.testing.assert_array_equal(np.concatenate(term), src["terminals"])
    np.testing.assert_array_equal(d["achieved_goal"], d["observation"][:, :2])
    assert d["success"][np.cumsum(lengths) - 1].all()  # reaching the hindsight goal ends each episode
    np.testing.assert_array_equal(d["reward"], d["success"].astype(np.float32))


@pytest.mark.parametrize("how", ["missing_key", "not_terminal", "garbage", "missing_file", "ragged"])
def test_corrupted_ogbench_input_refused_and_nothing_written(data_root: Path, tmp_path: Path, how: str) -> None:
    p = tmp_path / "bad.npz"
    if how != "missing_file":
        data = write_ogbench_npz(p, [5, 6])
        if how == "missing_key":
            data.pop("actions")
        elif how == "not_terminal":
            data["terminals"][-1] = 0
        elif how == "ragged":
            data["qpos"] = data["qpos"][:-1]
        np.savez(p, **data)
        if how == "garbage":
            p.write_bytes(b"PK\x03\x04 definitely not a zip file")
    with pytest.raises(DatasetError):
        load_npz(p)
    with pytest.raises(DatasetError):
        import_ogbench(DatasetStore(), p, "ogb/bad")
    assert list(data_root.rglob("*")) == []
