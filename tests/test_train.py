"""Config validation, the jitted epoch (prefill, transitions, counters, determinism) and evaluation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_TRAIN

from crl.config import AgentConfig, TrainConfig
from crl.errors import ConfigError

TINY = TINY_TRAIN


def test_presets_are_valid_and_overridable() -> None:
    for name in ("cpu", "paper"):
        TrainConfig.preset(name).validate()
    cfg = TrainConfig.preset("paper", depth=256, actor_depth=128, batch_size=1024)
    assert cfg.agent.depth == 256 and cfg.agent.resolved_actor_depth == 128 and cfg.learner.batch_size == 1024
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        ({"batch_size": 512, "min_replay_size": 256}, "min_replay_size >= 512"),
        ({"depth": 10}, "use e.g. 8 or 12"),
        ({"replay_size": 100}, "replay_size >= "),
        ({"total_env_steps": 10}, "total_env_steps > "),
        ({"energy": "cos"}, "'l2'"),
        ({"bogus": 1}, "unknown config field"),
        ({"discount": 1.0}, "0.99"),
    ],
)
def test_inconsistent_values_name_what_would_work(overrides: dict, hint: str) -> None:
    with pytest.raises(ConfigError, match=hint):
        TrainConfig.preset("cpu", **overrides).validate()


def test_epoch_prefills_then_trains_and_returns_every_transition(tiny_trainer) -> None:
    trainer = tiny_trainer
    ts = trainer.init(jax.random.PRNGKey(0))
    ts1, m1, tr1 = trainer.epoch(ts)
    assert float(m1["train/sgd"]) == 0.0 and int(ts1.sgd_steps) == 0  # prefill: 40 < 80 transitions
    assert tr1.obs.shape == (10, 4, trainer.env.observation_size)
    assert tr1.action.shape == (10, 4, trainer.env.action_size)
    # the unroll starts from the reset states and consecutive records chain up
    np.testing.assert_array_equal(tr1.obs[0], ts.env_state.obs)
    not_done = np.asarray(tr1.terminal[:-1] + tr1.truncation[:-1]) == 0
    np.testing.assert_array_equal(np.asarray(tr1.next_obs[:-1])[not_done], np.asarray(tr1.obs[1:])[not_done])
    np.testing.assert_array_equal(np.asarray(ts1.buffer.state[:10]), np.asarray(tr1.obs[..., :4]))
    ts2, m2, _ = trainer.epoch(ts1)
    assert float(m2["train/sgd"]) == 1.0 and int(ts2.sgd_steps) == 2 and int(ts2.env_steps) == 80
    assert set(m2) == set(trainer.metric_names())
    for name in ("critic/loss", "critic/accuracy", "critic/logits_pos", "critic/logits_neg", "actor/loss",
                 "actor/entropy", "alpha"):
        assert np.isfinite(float(m2[name])), name
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), ts1.agent.params, ts2.agent.params)
    assert all(jax.tree.leaves(changed))


def test_epochs_are_deterministic_given_the_seed(tiny_trainer) -> None:
    trainer = tiny_trainer
    runs = []
    for _ in range(2):
        ts = trainer.init(jax.random.PRNGKey(7))
        for _ in range(3):
            ts, _, _ = trainer.epoch(ts)
        runs.append(ts.agent.params)
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), *runs)
    assert all(jax.tree.leaves(same))


def test_evaluate_reports_success_time_at_goal_and_final_distance(tiny_trainer) -> None:
    trainer = tiny_trainer
    ev = trainer.evaluate(trainer.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
    assert set(ev) == {"eval/success", "eval/time_at_goal", "eval/final_dist"}
    assert 0.0 <= float(ev["eval/success"]) <= 1.0
    assert 0.0 <= float(ev["eval/time_at_goal"]) <= 30.0
    assert float(ev["eval/final_dist"]) > 0.0


def test_policy_deterministic_and_bounded(tiny_trainer) -> None:
    trainer = tiny_trainer
    params = trainer.init(jax.random.PRNGKey(0)).agent.params
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, trainer.env.observation_size))
    a1 = trainer.policy(params, obs, jax.random.PRNGKey(2), deterministic=True)
    a2 = trainer.policy(params, obs, jax.random.PRNGKey(3), deterministic=True)
    s1 = trainer.policy(params, obs, jax.random.PRNGKey(2), deterministic=False)
    np.testing.assert_array_equal(a1, a2)
    assert a1.shape == (5, trainer.env.action_size) and float(jnp.abs(s1).max()) <= 1.0
    assert not np.allclose(a1, s1)


def test_actor_depth_can_differ_from_critic_depth() -> None:
    from crl.agent import CRLAgent

    agent = CRLAgent(AgentConfig(depth=8, actor_depth=4, width=16), 4, 2, 2)
    p = agent.init(jax.random.PRNGKey(0)).params
    assert len([k for k in p.sa_encoder["params"] if k.startswith("block_")]) == 2
    assert len([k for k in p.actor["params"]["trunk"] if k.startswith("block_")]) == 1


def test_solved_streak_counts_trailing_perfect_evaluations() -> None:
    """`--stop-when-solved N` stops after N evaluations in a row at 1.0; a resumed run recovers its streak from the
    log (so it stops where the uninterrupted run would), ignoring records without an evaluation and epoch 0."""
    from crl.loop import solved_streak_of

    rec = [{"epoch": 0, "eval/success": 1.0}, {"epoch": 5, "eval/success": 1.0}, {"epoch": 6},
           {"epoch": 10, "eval/success": 0.83}, {"epoch": 15, "eval/success": 1.0}, {"epoch": 16},
           {"epoch": 20, "eval/success": 1.0}]
    assert solved_streak_of(rec) == 2
    assert solved_streak_of(rec[:4]) == 0 and solved_streak_of(rec[:3]) == 1 and solved_streak_of(rec[:1]) == 0
    assert solved_streak_of([]) == 0


def test_runs_on_one_trainer_keep_their_own_run_settings_and_nothing_else(tiny_trainer) -> None:
    """Runs that differ only in what the driver reads (seed, budget, cadences) share one Trainer and its compiled
    programs; anything a program depends on needs its own trainer."""
    from crl.train import RUN_ONLY_FIELDS, OnlineRunner

    runner = OnlineRunner(TINY.replace(seed=5, total_env_steps=120, eval_every=1), trainer=tiny_trainer)
    assert runner.trainer is tiny_trainer and runner.config.seed == 5 and runner.num_epochs == 3
    assert runner.config.eval_every == 1 and tiny_trainer.config.seed == TINY.seed
    first = runner.init_state()  # the run's seed, not the trainer's
    assert not jnp.array_equal(first.learner.key, tiny_trainer.init(jax.random.PRNGKey(TINY.seed)).learner.key)
    assert set(RUN_ONLY_FIELDS) <= set(TINY.to_dict())
    for change in ({"batch_size": 32}, {"num_eval_envs": 8}, {"depth": 8}):
        with pytest.raises(ConfigError, match="may change only"):
            OnlineRunner(TINY.replace(**change), trainer=tiny_trainer)


def test_resume_options_default_to_the_run_config_not_the_preset(tmp_path) -> None:
    """`crl-train online --out D --resume --total-env-steps N` keeps the run's seed and sizes: options not given
    come from D/config.json, not from the preset (before, seed 0 of the preset was refused against the run's)."""
    import json

    from crl.cli_train import online_config

    run = TrainConfig.preset("cpu", seed=2, num_envs=8, batch_size=64, depth=8)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "online", "config": run.to_dict()}))
    options = {"total_env_steps": 2_000_000, "seed": None, "depth": None}
    got = online_config(TrainConfig, "cpu", None, (), options, str(tmp_path))
    assert got == run.replace(total_env_steps=2_000_000)
    assert online_config(TrainConfig, "cpu", None, (), options, None).seed == 0  # a new run: the preset
    (tmp_path / "config.json").write_text(json.dumps({"kind": "offline", "config": {"bogus": 1}}))
    assert online_config(TrainConfig, "cpu", None, (), options, str(tmp_path)).num_envs == 256  # driver refuses it
