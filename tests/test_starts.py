"""Exploring starts (start_cells='free' for the training envs only) and evaluation goals stratified by goal cell."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crl.config import TrainConfig
from crl.envs import make
from crl.errors import ConfigError
from crl.train import Trainer

TINY = TrainConfig.preset(
    "cpu", episode_length=30, num_envs=4, unroll_length=10, batch_size=16, sgd_steps=2, replay_size=400,
    min_replay_size=80, total_env_steps=400, eval_every=5, num_eval_envs=4, checkpoint_every=2, depth=4, width=32,
    repr_dim=8,
)


def _start_cells(env, states) -> set[tuple[int, int]]:
    xy = np.asarray(states.obs[:, :2])
    return {env.maze.xy_to_cell(p) for p in xy}


def test_free_starts_cover_every_free_cell_and_start_keeps_the_task() -> None:
    env = make("point_u4_maze")
    keys = jax.random.split(jax.random.PRNGKey(0), 256)
    fixed = jax.vmap(env.reset)(keys)
    assert _start_cells(env, fixed) == set(env.maze.start_cells())
    free = env.with_config(start_cells="free")
    assert free.config.episode_length == env.config.episode_length and free.spec.name == env.spec.name
    assert _start_cells(free, jax.vmap(free.reset)(keys)) == set(env.maze.free_cells())
    with pytest.raises(ConfigError, match="start_cells"):
        make("point_u4_maze", start_cells="anywhere")


def test_reset_to_goal_cell_cycles_through_the_goal_cells() -> None:
    env = make("point_u4_maze")
    n = env.num_goal_cells
    states = jax.vmap(env.reset_to_goal_cell)(jax.random.split(jax.random.PRNGKey(1), 2 * n), jnp.arange(2 * n))
    centres = np.array([env.maze.cell_to_xy(c) for c in env.maze.goal_cells()], np.float32)
    np.testing.assert_allclose(np.asarray(states.goal), np.concatenate([centres, centres]), atol=1e-6)
    assert _start_cells(env, states) == set(env.maze.start_cells())


def test_trainer_uses_free_starts_for_training_and_the_task_start_for_evaluation() -> None:
    config = TINY.replace(train_start_cells="free", num_envs=16)
    trainer = Trainer(config)
    assert trainer.env.config.start_cells == "start"
    ts = trainer.init(jax.random.PRNGKey(0))
    assert len(_start_cells(trainer.env, ts.env_state)) > len(trainer.env.maze.start_cells())
    with pytest.raises(ConfigError, match="train_start_cells"):
        TINY.replace(train_start_cells="corners").validate()
    assert TrainConfig.preset("paper").train_start_cells is None
