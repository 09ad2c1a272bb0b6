"""`crl-data generate ogbench`: OGBench's point-maze recipe (data_gen_scripts/generate_locomaze.py) in OGBench's own
env; the same env description on generate and import; bad input is one line, exit 2, nothing written; offline
training on the result evaluates with OGBench's 5 tasks."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crl.errors import CrlError

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ogbench") is None,
                                reason='ogbench is an optional extra: pip install -e ".[ogbench]"')
REPO = Path(__file__).resolve().parents[1]


def _gen(env: str, episodes: int, steps: int, noise: float = 0.5, seed: int = 0) -> tuple[dict, dict]:
    from crl.datasets.ogbench_gen import generate_arrays, make_spec

    return generate_arrays(make_spec(env, episodes, steps, noise, seed), debug=True)


def test_episode_structure_and_determinism() -> None:
    data, info = _gen("pointmaze-medium-navigate", episodes=3, steps=60)
    assert len(data["observations"]) == 180 and data["observations"].shape[1] == 2
    np.testing.assert_array_equal(np.flatnonzero(data["terminals"]), [59, 119, 179])  # every episode runs L steps
    np.testing.assert_allclose(data["qpos"], data["observations"], atol=1e-6)  # a point's observation is its xy
    # consecutive rows of an episode are consecutive states: the velocity integrates to the next position
    step = np.linalg.norm(np.diff(data["observations"][:60], axis=0), axis=1)
    assert step.max() < 1.0
    again, _ = _gen("pointmaze-medium-navigate", episodes=3, steps=60)
    other, _ = _gen("pointmaze-medium-navigate", episodes=3, steps=60, seed=1)
    np.testing.assert_array_equal(again["actions"], data["actions"])
    assert not np.allclose(other["actions"], data["actions"])
    from crl.datasets.ogbench_gen import vertex_cells

    maze = np.asarray(info["layout"]["maze_map"])
    assert {tuple(c) for c in info["goal_ij"]} <= set(vertex_cells(maze))  # navigate goals: vertex cells


def test_stitch_goals_are_four_cells_away() -> None:
    from crl.datasets.ogbench_gen import bfs_cells

    data, info = _gen("pointmaze-large-stitch-v0", episodes=25, steps=5)
    maze = np.asarray(info["layout"]["maze_map"])
    d = [bfs_cells(maze, tuple(s))[tuple(g)] for s, g in zip(info["init_ij"], info["goal_ij"], strict=True)]
    assert d == [4] * 25
    assert len({tuple(s) for s in info["init_ij"]}) > 10  # starts spread over the free cells
    # the first observation of each episode is near its start cell (OGBench's reset noise is small)
    unit, (ox, oy) = info["layout"]["maze_unit"], info["layout"]["maze_offset"]
    start_xy = np.array([[j * unit - ox, i * unit - oy] for i, j in info["init_ij"]])
    assert np.abs(data["observations"][::5] - start_xy).max() < 1.0


def test_action_noise_statistics() -> None:
    noise = 0.2
    data, info = _gen("pointmaze-medium-navigate", episodes=4, steps=400, noise=noise)
    direction, act = info["direction"], data["actions"]
    assert np.allclose(np.linalg.norm(direction, axis=1), 1.0, atol=1e-4)  # the expert moves at full speed
    inside = np.abs(direction) < 1 - 3 * noise  # where clipping to [-1, 1] is (almost) never active
    resid = (act - direction)[inside]
    assert resid.size > 500
    assert abs(resid.mean()) < 0.03 and resid.std() == pytest.approx(noise, rel=0.1)
    assert np.abs(act).max() <= 1.0
    loud, _ = _gen("pointmaze-medium-navigate", episodes=1, steps=300, noise=0.5)
    assert (np.abs(loud["actions"]) == 1.0).mean() > 0.1  # OGBench's noise 0.5 saturates often


def _data_cli(root: Path, *args: str, block_ogbench: bool = False) -> subprocess.CompletedProcess[str]:
    pre = "import sys; sys.modules['ogbench'] = None; " if block_ogbench else ""
    code = f"{pre}from crl.pipelines.cli import main; main({list(args)!r})"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CRL_DATA_DIR": str(root)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("args,block,needle", [
    (("antmaze-medium-navigate-v0",), False, "unknown OGBench env"),
    (("pointmaze-medium-navigate", "--episodes", "0"), False, "at least 1 episode"),
    (("pointmaze-medium-navigate", "--episodes", "2"), True, 'pip install -e ".[ogbench]"'),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, args: tuple, block: bool, needle: str) -> None:
    root = tmp_path / "root"
    p = _data_cli(root, "generate", "ogbench", *args, block_ogbench=block)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr
    assert not root.exists() or not any(p for p in root.rglob("*") if p.is_file())


def test_generate_and_import_describe_the_env_alike_and_split_stitch_works(data_root: Path, tmp_path: Path) -> None:
    from crl.datasets import DatasetStore
    from crl.datasets.ogbench_gen import generate, generate_arrays, make_spec
    from crl.datasets.ogbench_io import import_ogbench
    from crl.datasets.stitch_split import stitch_split
    from crl.envs import maze_from_spec

    store = DatasetStore()
    spec = make_spec("pointmaze-medium-stitch", 30, 40, seed=3)
    m = generate(store, spec, "ogb/pms")
    es = m["env_spec"]
    assert es["name"] == "ogbench:pointmaze-medium-stitch-v0" and es["gym_id"] == "pointmaze-medium-v0"
    assert m["provenance"]["seed"] == 3 and m["provenance"]["ogbench_version"] and m["totals"]["episodes"] == 30
    assert es["ogbench_maze"]["maze_unit"] == 4.0 and es["ogbench_maze"]["maze_offset"] == [4.0, 4.0]
    # the crl maze of the record places OGBench's x-y coordinates in their cells
    maze = maze_from_spec(es)
    xy = store.open(m["id"]).load()["achieved_goal"]
    ogb = np.asarray(es["ogbench_maze"]["maze_map"])
    for p in xy[::97]:
        i, j = int(np.floor((p[1] + 4) / 4 + 0.5)), int(np.floor((p[0] + 4) / 4 + 0.5))
        assert ogb[i, j] == 0 and maze.xy_to_cell(p) == (j - 1, i - 1)
    # the same data as an OGBench file named without its version: the same env description
    data, _ = generate_arrays(spec)
    npz = tmp_path / "pointmaze-medium-stitch.npz"
    np.savez(npz, **data)
    mi = import_ogbench(store, npz, "ogb/pms-imported")
    assert mi["env_spec"] == es
    assert mi["totals"] == {**m["totals"], "bytes": mi["totals"]["bytes"]}
    sp = stitch_split(store, mi["id"], 1)  # the maze is known: the split cuts episodes at 1-cell segments
    assert sp["split"]["segments"] > 30 and sp["split"]["test_tasks"] > 0 and sp["split"]["maze"] == es["layout"]


def test_offline_training_evaluates_with_ogbench_tasks(data_root: Path, tmp_path: Path) -> None:
    from crl.datasets import DatasetStore
    from crl.datasets.ogbench_gen import generate, make_spec
    from crl.offline import OfflineConfig, run_offline

    m = generate(DatasetStore(), make_spec("pointmaze-medium-navigate", 4, 120), "ogb/pmn")
    cfg = OfflineConfig(dataset=m["id"], total_sgd_steps=4, eval_every=1, checkpoint_every=2,
                        ogbench_episodes=1).replace(sgd_steps=2, batch_size=16, depth=4, width=32, repr_dim=8)
    run_offline(cfg, tmp_path / "run", progress=False)
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(recs) == 2
    for r in recs:
        per = [r[f"eval/task{t}_success"] for t in range(1, 6)]
        assert r["eval/success"] == pytest.approx(np.mean(per)) and set(per) <= {0.0, 1.0}
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["env"]["name"] == "ogbench:pointmaze-medium-navigate-v0"


def test_env_name_normalisation() -> None:
    from crl.datasets.ogbench_gen import parse_env
    from crl.datasets.ogbench_io import normalise_env_name

    assert normalise_env_name("pointmaze-large-stitch") == "ogbench:pointmaze-large-stitch-v0"
    assert normalise_env_name("pointmaze-large-stitch-v0-val") == "ogbench:pointmaze-large-stitch-v0"
    assert normalise_env_name("antmaze-test-navigate-v0") == "ogbench:antmaze-test-navigate-v0"
    assert parse_env("ogbench:pointmaze-giant-explore") == ("pointmaze-giant-explore-v0", "pointmaze-giant-v0",
                                                           "explore")
    with pytest.raises(CrlError, match="unknown OGBench env"):
        parse_env("pointmaze-medium-v0")
