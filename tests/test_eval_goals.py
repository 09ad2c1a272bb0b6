"""Goal reaching and stitching evaluators on real MJX point mazes: the oracle solves every goal and distance, the
random policy does not, and `evaluate_goals` gives exactly the trainer's own evaluation."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import TINY_TRAIN
from PIL import Image

from crl.envs import make
from crl.eval import run_goals, run_stitching
from crl.eval.stitching import all_pairs, stitching_distance
from crl.goal_rollouts import evaluate_goals, goal_means, goal_vector, summarize_goals, wilson_ci
from crl.train import Trainer

SHORT = 100  # steps: the oracle needs ~75 to cross the U


def _png_ok(path: str, min_px: int = 200) -> None:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert min(im.size) >= min_px and max(im.size) <= 2000


def test_oracle_reaches_every_goal_cell_and_random_does_not(tmp_path) -> None:
    oracle = run_goals("oracle", "point_u_maze", episodes=12, seed=0, out=tmp_path / "o", episode_length=SHORT)
    assert oracle["eval/success"] == 1.0 and oracle["ci95"]["eval/success"][0] > 0.7
    assert [r["cell"] for r in oracle["per_goal_cell"]] == [list(c) for c in make("point_u_maze").maze.goal_cells()]
    assert all(r["success"] == 1.0 and r["episodes"] == 2 for r in oracle["per_goal_cell"])
    assert oracle["eval/final_dist"] < 0.5 and oracle["eval/time_at_goal"] > 20
    assert (tmp_path / "o" / "goals.json").is_file()
    _png_ok(oracle["png"])

    rand = run_goals("random", "point_u_maze", episodes=12, seed=0, out=tmp_path / "r", episode_length=SHORT)
    assert rand["eval/success"] <= 0.35 and rand["eval/time_at_goal"] < oracle["eval/time_at_goal"] / 4
    assert rand["ci95"]["eval/success"][1] < oracle["ci95"]["eval/success"][0]


def test_oracle_stitches_every_distance(tmp_path) -> None:
    env = make("point_u_maze")
    r = run_stitching("oracle", "point_u_maze", seed=0, out=tmp_path, episode_length=SHORT, max_cells=3)
    diameter = int(np.max(env.maze.cell_distance_matrix))
    assert [row["distance"] for row in r["success_by_distance"]] == list(range(1, diameter + 1))
    assert all(row["success"] >= 0.95 for row in r["success_by_distance"])
    assert r["stitching_distance"] == diameter == 6
    assert r["pairs"] == 7 * 6 and len(r["per_pair"]) == 42
    assert r["in_distribution"]["pairs"] == 30 and r["out_of_distribution"]["success"] >= 0.95
    _png_ok(r["png"])


def test_pair_enumeration_and_stitching_distance() -> None:
    maze = make("point_u4_maze").maze
    tasks = all_pairs(maze)
    assert len(tasks["distance"]) == 11 * 10 and tasks["distance"].max() == 10
    assert all(maze.cell_distance(tuple(s), tuple(g)) == d
               for s, g, d in zip(tasks["start_cell"], tasks["goal_cell"], tasks["distance"], strict=True))
    few = all_pairs(maze, max_pairs_per_distance=3, seed=1)
    assert np.bincount(few["distance"]).max() == 3 and set(few["distance"]) == set(range(1, 11))
    assert stitching_distance([1, 2, 3, 4], [0.9, 0.6, 0.4, 0.8]) == 2
    assert stitching_distance([1, 2], [0.2, 0.9]) == 0


def test_statistics() -> None:
    lo, hi = wilson_ci(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_ci(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    s = summarize_goals({"success": np.array([1, 0, 1, 1.0]), "time_at_goal": np.array([10, 0, 20, 30.0]),
                         "final_dist": np.array([0.1, 3, 0.2, 0.3]), "goal_cell": np.array([0, 1, 0, 1])},
                        [(1, 2), (3, 3)])
    assert s["eval/success"] == 0.75 and s["episodes"] == 4
    assert s["per_goal_cell"][1] == {"goal_cell": 1, "cell": [3, 3], "episodes": 2, "success": 0.5,
                                     "time_at_goal": 15.0, "final_dist": 1.65}
    lo, hi = s["ci95"]["eval/time_at_goal"]
    assert 0 <= lo < 15 < hi


def test_evaluate_goals_is_the_trainers_evaluation(tiny_trainer) -> None:
    config = TINY_TRAIN  # the shared trainer (tests/conftest.py): its compiled init and evaluation are reused
    trainer = tiny_trainer
    ts = trainer.init(jax.random.PRNGKey(3))
    params = Trainer.eval_params(ts)

    def act(obs: jax.Array) -> jax.Array:
        return trainer.agent.policy(params, obs, jax.random.PRNGKey(0), deterministic=True)

    mine = jax.jit(lambda k: evaluate_goals(trainer.env, act, k, config.num_eval_envs))
    for key in (jax.random.fold_in(jax.random.PRNGKey(config.seed + 1), 10), jax.random.PRNGKey(7)):
        want = {k: float(v) for k, v in trainer.evaluate(ts, key).items()}
        per_episode = mine(key)
        got = {k: float(v) for k, v in goal_means(per_episode).items()}
        assert got == pytest.approx(want, rel=1e-6, abs=1e-6)
        assert np.asarray(per_episode["goal_cell"]).tolist() == [0, 1, 2, 3]
        host = summarize_goals(jax.device_get(per_episode))
        assert {k: host[k] for k in want} == pytest.approx(want, rel=1e-6, abs=1e-6)
    # the key matters (otherwise the comparison above would prove little)
    a, b = (float(goal_means(mine(jax.random.PRNGKey(s)))["eval/final_dist"]) for s in (7, 8))
    assert a != b


def test_goal_vector_follows_the_env() -> None:
    xy = np.array([[4.0, 8.0], [12.0, 4.0]], np.float32)
    np.testing.assert_array_equal(goal_vector(make("point_u_maze"), xy), xy)
    hum = make("humanoid_u_maze")
    g = np.asarray(goal_vector(hum, xy))
    assert g.shape == (2, hum.goal_size) == (2, 3)
    np.testing.assert_array_equal(g[:, :2], xy)
    np.testing.assert_allclose(g[:, 2], np.asarray(hum.sample_goal(jax.random.PRNGKey(0)))[2])
