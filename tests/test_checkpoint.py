"""Checkpoints: self-describing round trip, resume == uninterrupted run, NaN stop keeping the last good one, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from conftest import TINY_TRAIN

from crl.checkpoint import load_agent, load_policy
from crl.errors import ConfigError, TrainingDivergedError
from crl.loop import drive
from crl.train import OnlineRunner, Trainer, run

TINY = TINY_TRAIN


def params_equal(a, b) -> bool:
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), a, b)))


def test_round_trip_and_resume_give_identical_parameters(tmp_path: Path, tiny_trainer) -> None:
    # uninterrupted reference: 6 epochs
    ref = tiny_trainer
    ts = ref.init(jax.random.PRNGKey(TINY.seed))
    for _ in range(6):
        ts, _, _ = ref.epoch(ts)

    short = TINY.replace(total_env_steps=160)  # 4 epochs, checkpoints at 2 and 4
    run(short, None, tmp_path / "run", progress=False, trainer=ref)  # runs on the shared trainer's programs
    loaded = load_agent(tmp_path / "run")
    assert loaded.config == short.to_dict() and loaded.step == 4 and loaded.kind == "online"
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["kind"] == "online" and stored["config"]["learner"]["batch_size"] == 16

    with pytest.raises(ConfigError, match="--resume"):
        run(TINY, None, tmp_path / "run", progress=False, trainer=ref)
    with pytest.raises(ConfigError, match="batch_size"):
        run(TINY.replace(batch_size=32), None, tmp_path / "run", resume=True, progress=False)

    last = run(TINY.replace(total_env_steps=240), None, tmp_path / "run", resume=True, progress=False, trainer=ref)
    assert last["epoch"] == 6 and "eval/success" in last
    resumed = load_agent(tmp_path / "run").learner_state
    assert params_equal(resumed.agent.params, ts.agent.params)
    policy = load_policy(tmp_path / "run")
    obs = jnp.zeros((3, policy.env_spec["observation_size"]))
    assert jnp.allclose(policy.act(obs), ref.policy(Trainer.eval_params(ts), obs, jax.random.PRNGKey(0), True),
                        atol=1e-6)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4, 5, 6]
    elapsed = [r["time/elapsed_s"] for r in lines]  # the run's wall clock goes on across the resume
    assert all(b > a for a, b in zip(elapsed, elapsed[1:], strict=False)) and elapsed[0] > 0
    assert (tmp_path / "run" / "learning_curve.png").stat().st_size > 1000


def test_a_restored_state_reuses_the_compiled_programs(tmp_path: Path, tiny_trainer) -> None:
    """Resuming must not compile the epoch again: orbax restores committed arrays, which jit lowers (and caches)
    as another program; crl.checkpoint hands back uncommitted ones, like a fresh init's."""
    from crl.checkpoint import manager, restore, save

    trainer = tiny_trainer
    state, _, _ = trainer.epoch(trainer.init(jax.random.PRNGKey(0)))
    trainer.evaluate(state, jax.random.PRNGKey(1))
    compiled = (trainer.epoch._cache_size(), trainer.evaluate._cache_size())
    mngr = manager(tmp_path / "run")
    save(mngr, 1, state, {"kind": "online", "config": TINY.to_dict(), "env_spec": trainer.env.spec.to_dict()})
    restored = restore(mngr, jax.eval_shape(trainer.init, jax.random.PRNGKey(0)))
    assert params_equal(restored, state)
    after, _, _ = trainer.epoch(restored)
    trainer.epoch(after)
    trainer.evaluate(restored, jax.random.PRNGKey(1))
    assert (trainer.epoch._cache_size(), trainer.evaluate._cache_size()) == compiled


class NaNDataAfter(OnlineRunner):
    """An online run whose replay data turns NaN before epoch `after` (as an env that blew up would make it),
    on the shared tiny trainer: the corruption is runtime data, so the compiled epoch is the usual one."""

    def __init__(self, config, trainer, after: int) -> None:
        super().__init__(config, trainer=trainer)
        self.after = after

    def epoch(self, state, index: int):
        if index == self.after:
            state = state.replace(buffer=state.buffer.replace(state=state.buffer.state * jnp.nan))
        return super().epoch(state, index)


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path, tiny_trainer) -> None:
    # epochs 0-1 fill the replay to min_replay_size (80 rows), epoch 2 is the first to train: on NaN data
    with pytest.raises(TrainingDivergedError, match="NaN/Inf") as err:
        drive(NaNDataAfter(TINY, tiny_trainer, after=2), tmp_path / "run", progress=False)
    assert "at epoch 3" in str(err.value) and "Last good checkpoint: epoch 2" in str(err.value)
    loaded = load_agent(tmp_path / "run")
    assert loaded.step == 2
    leaves = jax.tree.leaves(loaded.params)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)


def test_cli_online_smoke_and_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from crl.cli_train import main

    args = ["online", "--env", "point_u_maze", "--episode-length", "30", "--num-envs", "4", "--unroll-length",
            "10", "--batch-size", "16", "--sgd-steps", "2", "--replay-size", "400", "--min-replay-size", "80",
            "--total-env-steps", "120", "--eval-every", "5", "--num-eval-envs", "4", "--checkpoint-every", "2",
            "--depth", "4", "--width", "32", "--repr-dim", "8", "--train-env", "task", "--no-progress",
            "--out", str(tmp_path / "cli")]  # TINY_TRAIN's shapes: its compiled programs are reused
    with pytest.raises(SystemExit) as ok:
        main(args)
    assert ok.value.code == 0
    assert "eval/success" in capsys.readouterr().out
    assert (tmp_path / "cli" / "checkpoints").is_dir()
    with pytest.raises(SystemExit) as bad:
        main(args[:-1] + [str(tmp_path / "bad")] + ["--batch-size", "128"])
    assert bad.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("crl-train: error:") and "min_replay_size >= 128" in err and "\n" not in err


def test_a_checkpoint_that_does_not_fit_is_a_clear_error(tmp_path: Path, tiny_trainer) -> None:
    from crl.checkpoint import manager, save

    trainer = tiny_trainer
    state = trainer.init(jax.random.PRNGKey(0))
    mngr = manager(tmp_path / "run")
    # the stored config says another width than the state has
    save(mngr, 1, state, {"kind": "online", "config": TINY.replace(width=16).to_dict(),
                          "env_spec": trainer.env.spec.to_dict(), "epoch": 1})
    with pytest.raises(ConfigError, match="does not fit this run: agent/params/actor"):
        load_agent(tmp_path / "run")


def test_a_checkpoint_of_the_old_positional_layout_fails_with_one_line(tmp_path: Path) -> None:
    import orbax.checkpoint as ocp

    from crl.checkpoint import manager

    mngr = manager(tmp_path / "old")
    mngr.save(3, args=ocp.args.Composite(state=ocp.args.StandardSave({"leaf_00000": jnp.zeros(2)}),
                                         config=ocp.args.JsonSave(TINY.to_dict())))
    mngr.wait_until_finished()
    with pytest.raises(ConfigError, match="older crl") as err:
        load_policy(tmp_path / "old")
    assert "\n" not in str(err.value)


def test_a_collector_checkpoint_of_the_layout_before_the_driver_still_loads(tmp_path: Path, tiny_trainer) -> None:
    """Datasets committed before collectors ran under crl.loop.drive keep their collector checkpoints in the old
    layout: `state`, `pending`, a training collector's config as an item `config`, and metadata without kind, config
    or env spec. This writes one exactly as that collector did and loads it as any run."""
    import numpy as np
    import orbax.checkpoint as ocp

    from crl.checkpoint import manager, pack_state, read_meta

    ts = tiny_trainer.init(jax.random.PRNGKey(0))
    version = tmp_path / "t" / "old" / "v0"
    mngr = manager(version / "collector" / "w0", max_to_keep=2)  # the old collector's folder: collector/w0/checkpoints
    meta = {"epoch": 3, "next_seq": 1, "next_episode_index": 4, "env_steps": 120, "worker": "w0",
            "source": TINY.to_dict(), "cut_episodes": 0, "cut_transitions": 0}
    pending = {"slot_lengths": np.zeros((5,), np.int64)}
    mngr.save(3, args=ocp.args.Composite(state=ocp.args.StandardSave(pack_state(ts)),
                                         pending=ocp.args.StandardSave(pending), meta=ocp.args.JsonSave(meta),
                                         config=ocp.args.JsonSave(TINY.to_dict())), force=True)
    mngr.wait_until_finished()

    upgraded = read_meta(mngr)
    assert upgraded["kind"] == "collector" and upgraded["config"] == TINY.to_dict()
    assert upgraded["env_spec"]["name"] == "point_u_maze" and upgraded["next_seq"] == 1
    for path in (version, version / "collector" / "w0"):  # the version folder finds its first worker
        loaded = load_agent(path)
        assert loaded.kind == "collector" and loaded.step == 3 and loaded.config == TINY.to_dict()
        assert params_equal(loaded.params.sa_encoder, ts.learner.agent.params.sa_encoder)
