"""`crl-eval stitching --split`: the evaluation tasks and the env come from a stitching split in a real store."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

import crl.envs
from crl.datasets import DatasetStore
from crl.datasets.stitch_split import stitch_split
from crl.datasets.synthetic import episode_batch
from crl.eval import run_stitching

SPEC = crl.envs.make("point_u_maze", episode_length=100).spec.to_dict()
CORRIDOR = [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1)]  # the U from the start cell to its far end


def _parent(store: DatasetStore) -> str:
    """A dataset of one walk along the U's corridor (centre to centre, 5 states per cell boundary)."""
    cell = SPEC["config"]["cell_size"]
    xy = [np.multiply(CORRIDOR[0], cell)]
    for a, b in itertools.pairwise(CORRIDOR):
        xy += [(np.multiply(a, cell) * (5 - t) + np.multiply(b, cell) * t) / 5 for t in range(1, 6)]
    p = np.asarray(xy, np.float32)
    b = episode_batch([len(p) - 1])
    obs = np.concatenate([p[:-1], np.diff(p, axis=0)], axis=1)
    b["observation"], b["achieved_goal"], b["qpos"] = obs, obs[:, :2], obs[:, :2]
    b["final_observation"] = np.concatenate([p[-1], p[-1] - p[-2]])[None]
    b["final_achieved_goal"] = b["final_qpos"] = b["final_observation"][:, :2]
    st = DatasetStore().begin("test/u-walk", SPEC, provenance={"policy": "corridor walk"})
    with st.writer("w0", shard_rows=100) as w:
        w.append(b)
    return st.commit()["id"]


def test_oracle_on_a_splits_tasks(data_root: Path, tmp_path: Path) -> None:
    store = DatasetStore()
    split = stitch_split(store, _parent(store), 2)["id"]
    r = run_stitching("oracle", split=split, out=tmp_path)
    assert r["dataset"] == split and r["env"] == "point_u_maze" and r["episode_length"] == 100
    assert r["max_cells"] == 2 and r["pairs"] == 42
    assert r["in_distribution"]["pairs"] == 12 + 10 and r["out_of_distribution"]["pairs"] == 8 + 6 + 4 + 2
    assert r["in_distribution"]["success"] >= 0.95 and r["out_of_distribution"]["success"] >= 0.95
    assert r["stitching_distance"] == 6
    assert (tmp_path / "stitching.json").is_file() and (tmp_path / "stitching.png").stat().st_size > 5000
