"""OGBench's evaluation protocol (crl.eval.ogbench_protocol): its env, its 5 tasks, its success; the optional-extra
message; and (slow) a small OGBench-format dataset imported, trained on offline and evaluated with --env ogbench:."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crl.errors import CrlError
from crl.eval import ogbench_protocol as op

REPO = Path(__file__).resolve().parents[1]
ENV = "ogbench:pointmaze-medium-navigate-v0"


def _cli(*args: str, cwd: Path | None = None, block_ogbench: bool = False) -> subprocess.CompletedProcess[str]:
    """`crl-eval ARGS` in a fresh interpreter (optionally with `import ogbench` failing, as when it is missing)."""
    pre = "import sys; sys.modules['ogbench'] = None; " if block_ogbench else ""
    code = f"{pre}from crl.eval.cli import main; main({list(args)!r})"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd or REPO, env=env,
                          timeout=600)


def test_missing_ogbench_is_one_line_and_exit_2() -> None:
    p = _cli("goals", "--policy", "random", "--env", ENV, block_ogbench=True)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install -e ".[ogbench]"' in lines[0], p.stderr


def test_env_names() -> None:
    assert op.env_id(ENV) == "pointmaze-medium-v0"
    assert op.env_id("ogbench:antmaze-giant-stitch-v0") == "antmaze-giant-v0"
    assert op.env_id("ogbench:antmaze-teleport-v0") == "antmaze-teleport-v0"
    for bad in ("ogbench:cube-single-play-v0", "ogbench:pointmaze-huge-navigate-v0", "ogbench:visual-antmaze-medium"):
        with pytest.raises(CrlError, match="not an OGBench state-based locomaze env"):
            op.env_id(bad)


needs_ogbench = pytest.mark.skipif(importlib.util.find_spec("ogbench") is None,
                                   reason='ogbench is an optional extra: pip install -e ".[ogbench]"')


@needs_ogbench
def test_protocol_oracle_solves_the_five_tasks_and_random_does_not(tmp_path: Path) -> None:
    oracle = op.evaluate_ogbench(ENV, "oracle", episodes=2, seed=0, max_episode_steps=400, out_dir=tmp_path)
    assert [t["task_id"] for t in oracle["tasks"]] == [1, 2, 3, 4, 5]
    assert [t["goal_ij"] for t in oracle["tasks"]] == [[6, 6], [1, 6], [4, 2], [6, 1], [1, 1]]  # OGBench's tasks
    assert all(t["episodes"] == 2 for t in oracle["tasks"]) and oracle["episodes"] == 10
    # overall = mean over tasks of the per-task means (OGBench's evaluation/overall_success)
    assert oracle["overall_success"] == pytest.approx(np.mean([t["success"] for t in oracle["tasks"]]))
    assert oracle["overall_success"] >= 0.8, oracle["tasks"]
    # the env terminates at the goal: a successful episode is shorter than the limit
    assert all(t["mean_steps_success"] < 400 for t in oracle["tasks"] if t["success"] > 0)
    assert oracle["deviations"] == ["max_episode_steps=400 (protocol: 1000)"]
    assert (tmp_path / "ogbench_tasks.png").stat().st_size > 10_000
    rnd = op.evaluate_ogbench(ENV, "random", episodes=2, seed=0, max_episode_steps=400)
    assert rnd["overall_success"] <= 0.2, rnd["tasks"]
    again = op.evaluate_ogbench(ENV, "random", episodes=2, seed=0, max_episode_steps=400)
    assert [t["success"] for t in again["tasks"]] == [t["success"] for t in rnd["tasks"]]  # seeded


@needs_ogbench
def test_goals_cli_ogbench_branch(tmp_path: Path) -> None:
    p = _cli("goals", "--policy", "oracle", "--env", ENV, "--episodes", "1", "--episode-length", "300",
             "--out", str(tmp_path / "o"), "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["protocol"] == "ogbench" and len(r["tasks"]) == 5 and r["gym_id"] == "pointmaze-medium-v0"
    assert json.loads((tmp_path / "o" / "goals.json").read_text())["overall_success"] == r["overall_success"]
    p = _cli("goals", "--policy", "oracle", "--env", "ogbench:antmaze-medium-navigate-v0", "--episodes", "1")
    assert p.returncode == 2 and "only defined for OGBench point mazes" in p.stderr


# ---- slow: dataset -> import -> offline training -> OGBench protocol -------------------------------------------------
def write_point_dataset(path: Path, episodes: int, steps: int, noise: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """A small `pointmaze-medium-navigate` dataset exactly as OGBench's data_gen_scripts/generate_locomaze.py makes
    it (navigate: start anywhere, goals at vertex cells, a new goal whenever one is reached, the BFS-subgoal point
    expert with Gaussian action noise; terminals = done; an episode of `steps` stored rows)."""
    import gymnasium

    op.require_ogbench()
    env = gymnasium.make("pointmaze-medium-v0", terminate_at_goal=False, max_episode_steps=steps)
    u = env.unwrapped
    maze = u.maze_map
    cells = [(i, j) for i in range(maze.shape[0]) for j in range(maze.shape[1]) if maze[i, j] == 0]
    vertex = [(i, j) for i, j in cells if not (
        (maze[i - 1, j] == 0 and maze[i + 1, j] == 0 and maze[i, j - 1] == 1 and maze[i, j + 1] == 1)
        or (maze[i, j - 1] == 0 and maze[i, j + 1] == 0 and maze[i - 1, j] == 1 and maze[i + 1, j] == 1))]
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    data: dict[str, list[Any]] = {k: [] for k in ("observations", "actions", "terminals", "qpos", "qvel")}
    for _ in range(episodes):
        init, goal = cells[rng.integers(len(cells))], vertex[rng.integers(len(vertex))]
        ob, _ = env.reset(options=dict(task_info=dict(init_ij=init, goal_ij=goal)))
        done = False
        while not done:
            sub, _ = u.get_oracle_subgoal(u.get_xy(), u.cur_goal_xy)
            d = np.asarray(sub) - u.get_xy()
            action = np.clip(d / (np.linalg.norm(d) + 1e-6) + rng.normal(0, noise, 2), -1, 1)
            nxt, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            if info["success"]:
                u.set_goal(vertex[rng.integers(len(vertex))])
            data["observations"].append(ob)
            data["actions"].append(action)
            data["terminals"].append(done)
            data["qpos"].append(info["prev_qpos"])
            data["qvel"].append(info["prev_qvel"])
            ob = nxt
    env.close()
    out = {k: np.asarray(v, dtype=bool if k == "terminals" else np.float32) for k, v in data.items()}
    np.savez_compressed(path, **out)
    return out


@pytest.mark.slow
@needs_ogbench
def test_ogbench_end_to_end(data_root: Path, tmp_path: Path) -> None:
    from crl.datasets import DatasetStore
    from crl.datasets.ogbench_io import import_ogbench

    npz = tmp_path / "pointmaze-medium-navigate-v0.npz"
    src = write_point_dataset(npz, episodes=40, steps=201)
    assert src["terminals"].sum() == 40 and len(src["observations"]) == 40 * 201
    m = import_ogbench(DatasetStore(), npz, "ogb/pointmaze-medium-navigate")
    assert m["env_spec"]["name"] == ENV and m["env_spec"]["state_size"] == 2
    run = tmp_path / "run"
    from crl.offline import OfflineConfig, run_offline

    cfg = OfflineConfig(dataset=m["id"], total_sgd_steps=300, eval_env="none", checkpoint_every=1).replace(
        sgd_steps=100, batch_size=64, depth=4, width=64, bc_alpha=0.03)
    run_offline(cfg, run, progress=False)
    r = op.run_ogbench(f"checkpoint:{run}", ENV, episodes=2, seed=0, out=tmp_path / "eval", max_episode_steps=300)
    assert len(r["tasks"]) == 5 and r["episodes"] == 10 and r["policy_info"]["kind"] == "offline"
    assert r["overall_success"] == pytest.approx(np.mean([t["success"] for t in r["tasks"]]))
    assert r["policy_info"]["observation_layout"] == "concat(observation[2], goal_observation[[0, 1]])"
    assert r["policy_info"]["trained_env"] == ENV and r["policy_info"]["checkpoint_step"] == 3
    # the report evaluates it with the same protocol (same numbers), and says why stitching/geodesic do not apply
    from crl.eval.report import ReportSettings, make_report

    rep_settings = ReportSettings(goals_episodes=2, seed=0, ogbench_max_episode_steps=300)
    rep = make_report([run], tmp_path / "report", rep_settings)
    rr = rep.runs[0]
    g = rr.results["goals"]["result"]
    assert g["protocol"] == "ogbench" and g["tasks"] == r["tasks"] and g["overall_success"] == r["overall_success"]
    assert "OGBench env" in rr.skipped["stitching"] and "OGBench env" in rr.skipped["geodesic"]
    assert make_report([run], tmp_path / "report2", rep_settings).cache["hits"] == 1
    step_dir = run / "checkpoints" / "3"  # a checkpoint committed again (e.g. retrained into the same folder)
    st = step_dir.stat()
    os.utime(step_dir, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert make_report([run], tmp_path / "report3", rep_settings).cache == {
        "hits": 0, "misses": 1, "evaluated": 1, "errors": 0}
    md = rep.markdown.read_text()
    assert "| run | offline on ogb/pointmaze-medium-navigate-v0 | ogbench:pointmaze-medium-navigate-v0 |" in md
    assert "| task5 | (2, 6) | (1, 1) | 2 |" in md and "images/run_goals_ogbench_tasks.png" in md


@needs_ogbench
def test_planning_evaluates_a_trained_run_and_refuses_what_it_cannot_plan(data_root: Path, tmp_path: Path) -> None:
    from crl.datasets import DatasetStore
    from crl.datasets.ogbench_io import import_ogbench
    from crl.offline import OfflineConfig, run_offline

    npz = tmp_path / "pointmaze-medium-navigate-v0.npz"
    write_point_dataset(npz, episodes=8, steps=101)
    m = import_ogbench(DatasetStore(), npz, "ogb/pointmaze-medium-navigate")
    run = tmp_path / "run"
    cfg = OfflineConfig(dataset=m["id"], total_sgd_steps=100, eval_env="none", checkpoint_every=1).replace(
        sgd_steps=100, batch_size=32, depth=4, width=32, repr_dim=16, bc_alpha=0.03)
    run_offline(cfg, run, progress=False)
    r = op.run_ogbench(f"checkpoint:{run}", ENV, episodes=1, seed=0, max_episode_steps=40, plan_waypoints=40)
    plan = r["policy_info"]["planner"]
    assert plan["waypoints"] == 40 and plan["dataset"] == m["id"] and plan["local_distance"] > 0
    assert r["policy"].endswith("+plan40") and len(r["tasks"]) == 5 and r["episodes"] == 5
    assert any("planning over 40 dataset waypoints" in d for d in r["deviations"])
    assert Path(r["json"]) == run / "eval" / "pointmaze-medium-navigate-v0-plan40" / "goals.json"  # beside, not over
    p = _cli("goals", "--policy", "random", "--env", ENV, "--plan-waypoints", "10")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "needs a trained critic" in p.stderr, p.stderr
    p = _cli("goals", "--policy", f"checkpoint:{run}", "--plan-waypoints", "10")
    assert p.returncode == 2 and "OGBench's envs only" in p.stderr, p.stderr


def test_error_bars_never_negative() -> None:
    from crl.eval.plots import error_bars

    # a Wilson bound a rounding error past its estimate (what crashed `--episodes 50`'s figure)
    e = error_bars([1.0, 0.0, 0.5], [1.0 + 1e-12, 0.0, 0.3], [1.0, -1e-12, 0.7])
    assert (e >= 0).all() and e.shape == (2, 3)
    np.testing.assert_allclose(e[:, 2], [0.2, 0.2])


@needs_ogbench
def test_a_failing_figure_never_costs_the_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any) -> None:
        raise ValueError("'yerr' must not contain negative values")

    monkeypatch.setattr(op, "plot_tasks", boom)
    with pytest.warns(UserWarning, match="figure not drawn"):
        r = op.run_ogbench("random", ENV, episodes=1, seed=0, out=tmp_path / "ev", max_episode_steps=20)
    saved = json.loads((tmp_path / "ev" / "goals.json").read_text())
    assert saved["overall_success"] == r["overall_success"] and len(saved["tasks"]) == 5
    assert "png" not in r and not (tmp_path / "ev" / "ogbench_tasks.png").exists()
