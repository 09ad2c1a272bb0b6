"""Offline training and fine-tuning on one learner: learning from an oracle dataset, one SGD code path, several
learners per command (sequential and Dask), kill -9 + resume, fine-tune continuity and batch mixing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ORACLE_COLLECT

from crl.checkpoint import load_agent, load_policy
from crl.config import TrainConfig
from crl.datasets import DatasetStore
from crl.errors import ConfigError
from crl.finetune import FinetuneConfig, FinetuneRunner
from crl.offline import OfflineConfig, OfflineRunner
from crl.pipelines.collection import run_collection
from crl.relabel import Batch

ORACLE = ORACLE_COLLECT
# Small learners for the mechanics tests (one compiled shape, shared through the persistent compile cache).
TINY = dict(depth=4, width=32, repr_dim=16, batch_size=64, sgd_steps=20, total_sgd_steps=60, eval_every=1,
            num_eval_envs=8, checkpoint_every=1, episode_length=60)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> tuple[DatasetStore, str]:
    root = tmp_path_factory.mktemp("offline") / "data"
    store = DatasetStore(root)
    return store, run_collection(ORACLE, store, show_progress=False)["id"]


def tiny(dataset: str, **overrides) -> OfflineConfig:
    return OfflineConfig().replace(dataset=dataset, **{**TINY, **overrides})


# The learning run (the default learner at width 128, DDPG+BC 0.03, batch 256): 1,000 SGD steps. Measured on this
# dataset (tests/conftest.py ORACLE_COLLECT), seeds 0-3, 48 evaluation episodes: success 0.83/0.69/0.67/0.79 after
# 1,000 steps (width 256: 0.67/0.83/0.58); the untrained policy ~0. README Tests has the command.
LEARN = dict(total_sgd_steps=1000, sgd_steps=500, eval_every=2, num_eval_envs=48, width=128)


@pytest.fixture(scope="module")
def learned(oracle, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, dict]:
    """An offline run on the oracle data (shared by the learning and the fine-tune tests): its folder, the untrained
    policy's success and the run's last record."""
    from crl.loop import drive

    store, dsid = oracle
    runner = OfflineRunner(OfflineConfig().replace(dataset=dsid, **LEARN), store)
    untrained = float(runner.evaluate(runner.init_state(), jax.random.PRNGKey(5))["eval/success"])
    out = tmp_path_factory.mktemp("learned") / "run"
    return out, untrained, drive(runner, out, progress=False)


def test_offline_learns_the_u_maze_from_oracle_data(oracle, learned) -> None:
    store, dsid = oracle
    out, untrained, last = learned
    assert untrained <= 0.2 and last["eval/success"] >= 0.5, (untrained, last)
    assert last["sgd_steps"] == 1000 and last["critic/loss"] < np.log(256) - 0.05  # InfoNCE below chance (log B)
    stored = json.loads((out / "config.json").read_text())
    assert stored["kind"] == "offline" and stored["dataset"]["id"] == dsid and stored["dataset"]["content_hash"]


def test_evaluation_is_the_task_not_the_collectors_goal_schedule(oracle) -> None:
    """A 'navigate' dataset's env moves the goal once reached; the evaluation (and the run's env spec, which crl-eval
    and fine-tunes rebuild) keeps one goal per episode, so time at goal is not cut short by the next goal."""
    from crl.envs.oracle import oracle_action
    from crl.goal_rollouts import evaluate_goals, goal_means

    store, dsid = oracle
    assert store.manifest(dsid)["env_spec"]["config"]["new_goal_on_success"] is True
    runner = OfflineRunner(tiny(dsid, episode_length=None), store)
    env = runner.env
    assert env.config.new_goal_on_success is False and runner.env_spec["config"]["new_goal_on_success"] is False
    assert env.config.episode_length == 250  # the dataset env's other settings are kept
    ev = jax.jit(lambda k: goal_means(evaluate_goals(env, lambda obs: oracle_action(env, obs), k, 16)))(
        jax.random.PRNGKey(0))
    # the oracle reaches every goal and stays there (with the collector's schedule the goal moves once reached)
    assert float(ev["eval/success"]) == 1.0 and float(ev["eval/time_at_goal"]) > 100, ev


def test_loader_and_online_sgd_are_one_code_path(oracle) -> None:
    store, dsid = oracle
    off = OfflineRunner(tiny(dsid, bc_alpha=0.0), store)  # the online objective on both sides
    online = TrainConfig.preset("cpu", env="point_u_maze", **{k: TINY[k] for k in
                                                                  ("depth", "width", "repr_dim", "batch_size")})
    from crl.train import Trainer

    on = Trainer(online.replace(sgd_steps=TINY["sgd_steps"], actor_ema=0.0))
    agent = off.learner.agent.init(jax.random.PRNGKey(0))
    window = next(off.stream.windows())[0]
    batch = off.sample(window, jax.random.PRNGKey(1))
    fixed = lambda data, key: data  # noqa: E731 - the same batch at every step
    a_off, m_off = off.learner.sgd(agent, batch, fixed, jax.random.PRNGKey(2), 3)
    a_on, m_on = on.learner.sgd(agent, batch, fixed, jax.random.PRNGKey(2), 3)
    manual, update = agent, jax.jit(on.agent.update)  # jitted: eager updates compile op by op
    for k in jax.random.split(jax.random.PRNGKey(2), 3):
        manual, _ = update(manual, batch, jax.random.split(k)[1])
    for a, b in ((a_off, a_on), (a_off, manual)):
        assert all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.allclose(x, y, atol=1e-6)), a.params,
                                                b.params)))
    assert m_off.keys() == m_on.keys()


@pytest.mark.slow  # two learners + one in a Dask worker process, each compiling; CI runs it in `pytest -m slow`
def test_two_depths_in_one_command_two_loadable_runs_and_dask(oracle, tmp_path: Path) -> None:
    store, dsid = oracle
    from crl.learners import run_learners
    from crl.offline import learner_grid

    grid = learner_grid(tiny(dsid), [4, 8], [0])
    seq = run_learners(grid, tmp_path / "seq", progress=False, root=store.root)
    assert sorted(seq) == ["d4-s0", "d8-s0"] and all(isinstance(v, dict) for v in seq.values())
    for name, depth in (("d4-s0", 4), ("d8-s0", 8)):
        policy = load_policy(tmp_path / "seq" / name)
        assert policy.kind == "offline" and load_agent(tmp_path / "seq" / name).agent.config.depth == depth
        assert policy.act(jnp.zeros((2, policy.env_spec["observation_size"]))).shape == (2, 2)
    dask = run_learners(grid[:1], tmp_path / "dask", progress=False, workers=1, root=store.root)
    assert isinstance(dask["d4-s0"], dict)
    # deterministic given the seed, up to float reassociation between processes
    assert dask["d4-s0"]["critic/loss"] == pytest.approx(seq["d4-s0"]["critic/loss"], rel=1e-3)
    assert dask["d4-s0"]["sgd_steps"] == seq["d4-s0"]["sgd_steps"]


def test_bad_offline_input_is_one_line(oracle, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store, dsid = oracle
    from crl.cli_train import main

    os.environ["CRL_DATA_DIR"] = str(store.root)
    try:
        cases = [(["--dataset", "test/nothing-v0"], "test/nothing"),
                 (["--dataset", dsid, "--depth", "6"], "multiple of 4"),
                 (["--dataset", dsid, "--batch-size", "100000"], "larger than the dataset"),
                 (["--dataset", dsid, "--eval-env", "ant_u_maze"], "sizes")]
        for args, hint in cases:
            with pytest.raises(SystemExit) as err:
                main(["offline", *args, "--out", str(tmp_path / "bad"), "--no-progress"])
            msg = capsys.readouterr().err.strip()
            assert err.value.code == 2 and hint in msg and "\n" not in msg, msg
        assert not (tmp_path / "bad" / "checkpoints").exists()
    finally:
        del os.environ["CRL_DATA_DIR"]


@pytest.mark.slow  # two CLI processes, each compiling (minutes cold); CI runs it in `pytest -m slow`
def test_kill_9_then_resume_gives_the_uninterrupted_metrics(oracle, tmp_path: Path) -> None:
    store, dsid = oracle
    args = ["offline", "--dataset", dsid, "--depth", "4", "--width", "32", "--repr-dim", "16", "--batch-size", "64",
            "--sgd-steps", "20", "--steps", "200", "--eval-every", "5", "--num-eval-envs", "8", "--checkpoint-every",
            "2", "--episode-length", "60", "--no-progress"]
    env = {**os.environ, "CRL_DATA_DIR": str(store.root)}
    ref = subprocess.run([sys.executable, "-m", "crl.cli_train", *args, "--out", str(tmp_path / "ref")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    cmd = [sys.executable, "-m", "crl.cli_train", *args, "--out", str(tmp_path / "run")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "run" / "checkpoints"
    deadline = time.time() + 600
    while time.time() < deadline and not (ckpt.is_dir() and any(p.name == "4" for p in ckpt.iterdir())):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    read = lambda p: [json.loads(x) for x in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    got, want = read(tmp_path / "run"), read(tmp_path / "ref")
    assert [(r["epoch"], r["sgd_steps"], sorted(r)) for r in got] == [(r["epoch"], r["sgd_steps"], sorted(r))
                                                                       for r in want]
    for g, w in zip(got, want, strict=True):
        for k in ("critic/loss", "critic/accuracy", "alpha", "eval/success", "eval/final_dist"):
            if k in w:
                assert g[k] == pytest.approx(w[k], rel=1e-4, abs=1e-6), (g["epoch"], k)


def test_finetune_starts_where_the_source_ended_and_mixes_batches(oracle, learned, tmp_path: Path) -> None:
    store, dsid = oracle
    src, _, src_last = learned  # the learned offline policy: its evaluation is not ~0, so continuity means something
    config = FinetuneConfig.preset(
        "cpu", env="", init_from=str(src), dataset=dsid, offline_ratio=0.25, num_envs=4, unroll_length=10,
        batch_size=64, sgd_steps=2, replay_size=400, min_replay_size=80, total_env_steps=120,
        num_eval_envs=LEARN["num_eval_envs"], eval_every=10, checkpoint_every=3)  # the source's evaluation settings
    runner = FinetuneRunner(config, store)
    from crl.loop import drive

    drive(runner, tmp_path / "ft", progress=False)
    first = json.loads((tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["epoch"] == 0 and src_last["eval/success"] >= 0.5
    for k in ("eval/success", "eval/time_at_goal", "eval/final_dist"):
        assert first[k] == pytest.approx(src_last[k], abs=1e-5), k
    assert load_policy(tmp_path / "ft").kind == "finetune"
    assert runner.config.agent.width == 128 and runner.config.episode_length == 250  # the source's networks and env

    # the mixture: 16 of 64 rows from the dataset window, the rest from the replay (states marked by source)
    trainer = runner.trainer
    ts = trainer.init(jax.random.PRNGKey(0))
    buffer = ts.buffer.replace(state=jnp.full_like(ts.buffer.state, -7.0), size=jnp.int32(ts.buffer.rows))
    window = runner.cursor.window_for(0)
    window = window.replace(state=jnp.full_like(window.state, 7.0))
    b: Batch = jax.jit(trainer.sample_batch)((buffer, window), jax.random.PRNGKey(3))
    marks = np.asarray(b.state[:, 0])
    assert (marks == 7.0).sum() == 16 and (marks == -7.0).sum() == 48

    with pytest.raises(ConfigError, match="needs --dataset"):
        FinetuneConfig.preset("cpu", init_from="x", offline_ratio=0.5).validate()


def test_offline_resume_keeps_each_learners_config(tmp_path: Path) -> None:
    """`crl-train offline ... --resume` without repeating --steps/--width keeps the learner's own values; options
    given again override them (and the driver then refuses what may not change)."""
    import json

    from crl.cli_train import resumed_config

    run = OfflineConfig(dataset="lab/u-v0").replace(total_sgd_steps=4000, width=128, seed=3)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "offline", "config": run.to_dict()}))
    built = OfflineConfig(dataset="lab/u-v0")  # the command line without --steps, --width or --seed
    assert resumed_config(built, tmp_path, "offline", {}) == run
    assert resumed_config(built, tmp_path, "offline", {"total_sgd_steps": 8000}) == run.replace(total_sgd_steps=8000)
    assert resumed_config(built, tmp_path, "online", {}) == built  # another kind: the driver refuses it
    assert resumed_config(built, tmp_path / "none", "offline", {}) == built


def test_offline_td_run_resumes_with_its_target_critic(oracle, tmp_path: Path) -> None:
    """A dataset run with the mixed critic: stopped after 2 epochs and resumed, it logs what one uninterrupted run
    logs (the target critic is checkpointed with the agent), and its records carry the TD terms."""
    from crl.loop import drive

    store, dsid = oracle
    ref = drive(OfflineRunner(tiny(dsid, critic_loss="mc+td"), store), tmp_path / "ref", progress=False)
    drive(OfflineRunner(tiny(dsid, critic_loss="mc+td", total_sgd_steps=40), store), tmp_path / "run",
          progress=False)
    got = drive(OfflineRunner(tiny(dsid, critic_loss="mc+td"), store), tmp_path / "run", resume=True,
                progress=False)
    assert {"critic/td_loss", "critic/goal_loss", "critic/mc_loss"} <= set(ref)
    for k in ("critic/loss", "critic/td_loss", "critic/accuracy", "eval/success"):
        assert got[k] == pytest.approx(ref[k], rel=1e-4, abs=1e-6), k
