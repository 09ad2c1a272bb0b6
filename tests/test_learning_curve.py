"""The learning-curve figure every run writes: the panels it has data for, OGBench's tasks one line each."""

from __future__ import annotations

from pathlib import Path


def test_learning_curve_draws_ogbench_tasks_and_leaves_out_empty_panels(tmp_path: Path) -> None:
    from crl.metrics import plot_learning_curve

    ogb = [{"sgd_steps": 500 * i, "critic/accuracy": 0.01 * i, "eval/success": 0.1 * i,
            **{f"eval/task{t}_success": 0.02 * i * t for t in range(1, 6)}} for i in range(1, 4)]
    drawn = plot_learning_curve(ogb, tmp_path / "ogb.png", x="sgd_steps")
    assert drawn == ["eval success", "eval success per task", "critic accuracy"]
    assert (tmp_path / "ogb.png").stat().st_size > 0
    maze = [{"env_steps": 100 * i, "eval/success": 0.1, "eval/time_at_goal": 3.0, "critic/accuracy": 0.2}
            for i in range(3)]
    assert plot_learning_curve(maze, tmp_path / "maze.png") == ["eval success", "eval time at goal",
                                                                 "critic accuracy"]
