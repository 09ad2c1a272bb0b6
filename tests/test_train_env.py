"""Training-env choices (exploring starts, chained goals), stratified evaluation goals, the Polyak-averaged actor."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_TRAIN

from crl.config import TrainConfig
from crl.envs import make
from crl.errors import ConfigError
from crl.train import Trainer

TINY = TINY_TRAIN


def _start_cells(env, states) -> set[tuple[int, int]]:
    xy = np.asarray(states.obs[:, :2])
    return {env.maze.xy_to_cell(p) for p in xy}


def test_free_starts_cover_every_free_cell_and_start_keeps_the_task() -> None:
    env = make("point_u_maze")
    keys = jax.random.split(jax.random.PRNGKey(0), 256)
    fixed = jax.jit(jax.vmap(env.reset))(keys)  # jitted: op-by-op MJX compiles hundreds of tiny programs
    assert _start_cells(env, fixed) == set(env.maze.start_cells())
    free = env.with_config(start_cells="free")
    assert free.config.episode_length == env.config.episode_length and free.spec.name == env.spec.name
    assert _start_cells(free, jax.jit(jax.vmap(free.reset))(keys)) == set(env.maze.free_cells())
    with pytest.raises(ConfigError, match="start_cells"):
        make("point_u_maze", start_cells="anywhere")


def test_reset_to_goal_cell_cycles_through_the_goal_cells() -> None:
    env = make("point_u_maze")
    n = env.num_goal_cells
    states = jax.jit(jax.vmap(env.reset_to_goal_cell))(jax.random.split(jax.random.PRNGKey(1), 2 * n),
                                                       jnp.arange(2 * n))
    centres = np.array([env.maze.cell_to_xy(c) for c in env.maze.goal_cells()], np.float32)
    np.testing.assert_allclose(np.asarray(states.goal), np.concatenate([centres, centres]), atol=1e-6)
    assert _start_cells(env, states) == set(env.maze.start_cells())


def test_trainer_uses_free_starts_for_training_and_the_task_start_for_evaluation() -> None:
    config = TINY.replace(train_env_overrides={"start_cells": "free"}, num_envs=16)
    trainer = Trainer(config)
    assert trainer.env.config.start_cells == "start"
    ts = trainer.init(jax.random.PRNGKey(0))
    assert len(_start_cells(trainer.env, ts.env_state)) > len(trainer.env.maze.start_cells())
    with pytest.raises(ConfigError, match="unknown env option"):
        TINY.replace(train_env_overrides={"starts": "free"}).validate()
    assert TrainConfig.preset("paper").train_env_overrides == {}


def test_actor_ema_follows_the_actor_only_once_training_starts(tiny_trainer) -> None:
    from crl.learner import Learner

    assert TINY.learner.actor_ema == 0.1  # the cpu preset's; TINY's compiled epoch is shared with other files
    trainer = tiny_trainer
    ts0 = trainer.init(jax.random.PRNGKey(0))
    ts1, _, _ = trainer.epoch(ts0)  # prefill: no SGD, the average stays put
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), ts1.learner.actor_ema, ts0.learner.actor_ema)
    assert all(jax.tree.leaves(same))
    ts2, _, _ = trainer.epoch(ts1)  # trains: ema moves a tenth of the way to the new actor
    expected = jax.tree.map(lambda e, a: e + 0.1 * (a - e), ts1.learner.actor_ema, ts2.agent.params.actor)
    close = jax.tree.map(lambda a, b: bool(jnp.allclose(a, b, atol=1e-7)), ts2.learner.actor_ema, expected)
    assert all(jax.tree.leaves(close))
    assert Trainer.eval_params(ts2).actor is ts2.learner.actor_ema
    env = trainer.env
    live = Learner(TINY.replace(actor_ema=0.0).learner, env.state_size, env.action_size, env.goal_size)
    after = live.after_epoch(ts1.learner, ts2.agent, ts2.learner.key, jnp.bool_(True))  # 0: evaluate the live one
    assert after.actor_ema is ts2.agent.params.actor
    with pytest.raises(ConfigError, match="actor_ema"):
        TINY.replace(actor_ema=1.5).validate()


def test_cli_train_env_options_parse_and_bad_ones_exit_2(tmp_path, capsys) -> None:
    from crl.cli_train import main, parse_env_options

    assert parse_env_options(("start_cells=free", "new_goal_on_success=true", "start_jitter=0.5")) == {
        "start_cells": "free", "new_goal_on_success": True, "start_jitter": 0.5}
    assert parse_env_options(("task",)) == {}
    for bad in (["--train-env", "free"], ["--train-env", "startcells=free"]):
        with pytest.raises(SystemExit) as exc:
            main(["online", "--out", str(tmp_path / "run"), *bad])
        assert exc.value.code == 2
    assert not (tmp_path / "run").exists()
    assert "train" in capsys.readouterr().err


def test_overrides_on_an_env_without_with_config_are_a_clear_error() -> None:
    env = make("point_u_maze", episode_length=30)

    class Bare:
        spec, episode_length = env.spec, env.episode_length
        state_size, goal_size, action_size = env.state_size, env.goal_size, env.action_size
        observation_size, goal_indices = env.observation_size, env.goal_indices

    with pytest.raises(ConfigError, match="with_config"):
        Trainer(TINY.replace(train_env_overrides={"start_cells": "free"}), Bare())
