"""The collector pipeline end to end: real MJX physics, real zarr shards, real orbax checkpoints, real Dask.

A tiny depth-4 CRL collector on point_u_maze (module fixture) is checked for counts, hashes, episode structure,
its stored checkpoint and the replay property; oracle data must contain successes; a SIGKILLed collection must
resume to exactly the data of an uninterrupted one; two Dask workers must produce one valid version; every env step
is recorded, episodes running when the budget is spent as truncated ones; Dask's INFO lines stay hidden by default.
"""

from __future__ import annotations

import dataclasses
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
from conftest import ORACLE_COLLECT, TINY_TRAIN

from crl.datasets import DatasetStore
from crl.envs import make
from crl.pipelines.cli import main as crl_data
from crl.pipelines.collection import run_collection
from crl.pipelines.collector import CollectConfig
from crl.pipelines.verify import verify

EPISODE_LENGTH = TINY_TRAIN.episode_length
# The CRL collector trains tests/conftest.py's TINY_TRAIN learner on the same rollout shapes (960 steps = 24 epochs of
# 4 envs x 10 steps, 8 whole episodes of 30 per env): its compiled epoch, init and evaluation come from the
# persistent compile cache whichever file compiles them first.
TINY_CRL = CollectConfig(
    env="point_u_maze", dataset="test/crl-d4", collector_depth=TINY_TRAIN.agent.depth, width=TINY_TRAIN.agent.width,
    policy="crl", env_steps=960, num_envs=TINY_TRAIN.num_envs, unroll_length=TINY_TRAIN.unroll_length,
    episode_length=EPISODE_LENGTH, seed=3, checkpoint_every=4, eval_every=5, shard_rows=300,
    train_overrides={"batch_size": TINY_TRAIN.learner.batch_size, "sgd_steps": TINY_TRAIN.learner.sgd_steps,
                     "num_eval_envs": TINY_TRAIN.num_eval_envs, "replay_size": TINY_TRAIN.replay_size,
                     "min_replay_size": TINY_TRAIN.min_replay_size, "repr_dim": TINY_TRAIN.agent.repr_dim},
)


@pytest.fixture(scope="module")
def crl_version(tmp_path_factory: pytest.TempPathFactory) -> tuple[DatasetStore, dict]:
    store = DatasetStore(tmp_path_factory.mktemp("collect") / "data")
    manifest = run_collection(TINY_CRL, store, show_progress=False)
    return store, manifest


def test_manifest_counts_match_stored_arrays_and_hashes_verify(crl_version: tuple[DatasetStore, dict]) -> None:
    store, manifest = crl_version
    assert manifest["id"] == "test/crl-d4-v0"
    data = store.open(manifest["id"]).load()
    offsets = data["episode_offsets"]
    assert manifest["totals"]["transitions"] == len(data["observation"]) == offsets[-1]
    assert manifest["totals"]["episodes"] == len(offsets) - 1 == len(data["final_observation"])
    assert sum(s["rows"] for s in manifest["shards"]) == manifest["totals"]["transitions"]
    assert len(manifest["shards"]) > 1  # shard_rows=300 and checkpoint flushes cut several shards
    # every env step of whole episodes is recorded: 4 envs x 960/4 steps, episodes of 30 -> nothing dropped
    assert manifest["totals"]["transitions"] == TINY_CRL.env_steps
    collector = manifest["provenance"]["collector"]
    assert collector["collector_depth"] == 4 and collector["env_steps"] == 960
    assert collector["cut_episodes"] == 0 and collector["env_steps_requested"] == 960
    assert verify(store, manifest["id"]).ok


def test_episodes_are_whole_and_ids_unique(crl_version: tuple[DatasetStore, dict]) -> None:
    store, manifest = crl_version
    data = store.open(manifest["id"]).load()
    offsets = data["episode_offsets"]
    lengths = np.diff(offsets)
    for e, (a, b) in enumerate(zip(offsets[:-1], offsets[1:], strict=True)):
        np.testing.assert_array_equal(data["step"][a:b], np.arange(b - a))
        assert len(np.unique(data["episode_id"][a:b])) == 1
        ended_by_time = data["truncation"][b - 1] and lengths[e] == EPISODE_LENGTH
        assert ended_by_time or data["terminal"][b - 1], f"episode {e} neither full length nor terminated"
        assert not (data["truncation"][a : b - 1] | data["terminal"][a : b - 1]).any()
    ids = data["episode_id"][offsets[:-1]]
    assert len(np.unique(ids)) == len(ids)


def test_collector_checkpoint_is_stored_with_the_dataset(crl_version: tuple[DatasetStore, dict]) -> None:
    from crl.checkpoint import load_agent
    from crl.config import TrainConfig

    store, manifest = crl_version
    rel = manifest["provenance"]["collector"]["checkpoint"]
    path = Path(store.loc.path(f"test/crl-d4/v0/{rel}"))
    loaded = load_agent(path)
    agent = TrainConfig.from_dict(loaded.config).learner.agent
    assert agent.depth == 4 and agent.width == 32 and loaded.env_spec["name"] == "point_u_maze"
    assert loaded.step * TINY_CRL.num_envs * TINY_CRL.unroll_length == TINY_CRL.env_steps  # the last epoch


def test_frozen_collector_checkpoint_can_collect_again(crl_version: tuple[DatasetStore, dict]) -> None:
    store, manifest = crl_version
    path = store.loc.path(f"test/crl-d4/v0/{manifest['provenance']['collector']['checkpoint']}")
    config = CollectConfig(env="point_u_maze", dataset="test/frozen", policy=f"checkpoint:{path}", env_steps=400,
                           num_envs=4, unroll_length=10, episode_length=EPISODE_LENGTH, deterministic=True)
    frozen = run_collection(config, store, show_progress=False)
    assert frozen["totals"]["transitions"] == 400
    assert frozen["provenance"]["collector"]["checkpoint"] == path
    actions = store.open(frozen["id"]).load(["action"])["action"]
    assert np.abs(actions).max() <= 1.0 and actions.std() > 0


def test_recorded_qpos_qvel_and_actions_replay_to_recorded_next_states(crl_version: tuple[DatasetStore, dict]) -> None:
    store, manifest = crl_version
    data = store.open(manifest["id"]).load()
    env = make("point_u_maze", episode_length=EPISODE_LENGTH)
    offsets = data["episode_offsets"]
    # next state of every row: the following row inside the episode, else the episode's final state
    ep_of_row = np.searchsorted(offsets, np.arange(offsets[-1]), side="right") - 1
    last = np.zeros(offsets[-1], bool)
    last[offsets[1:] - 1] = True
    nxt = np.minimum(np.arange(offsets[-1]) + 1, offsets[-1] - 1)
    want_qpos = np.where(last[:, None], data["final_qpos"][ep_of_row], data["qpos"][nxt])
    want_obs = np.where(last[:, None], data["final_observation"][ep_of_row], data["observation"][nxt])

    template = jax.jit(env.reset)(jax.random.PRNGKey(0))  # eager MJX would compile op by op

    @jax.jit
    def replay(qpos, qvel, goal, action):
        def one(q, v, g, a):
            s = template.replace(data=template.data.replace(qpos=q, qvel=v), goal=g)
            return env.step(s, a)
        return jax.vmap(one)(qpos, qvel, goal, action)

    out = replay(jnp.asarray(data["qpos"]), jnp.asarray(data["qvel"]), jnp.asarray(data["desired_goal"]),
                 jnp.asarray(data["action"]))
    # Exact away from walls; at a wall contact the 1-iteration Newton solver starts from mjx's qacc_warmstart,
    # which the dataset does not store, so contact steps agree only to a few 1e-3 in position and a few 1e-2 in
    # velocity (measured on this dataset: 3.5e-3 and 2.8e-2, both on 1 of its 960 rows).
    np.testing.assert_allclose(np.asarray(out.data.qpos), want_qpos, atol=5e-3)
    np.testing.assert_allclose(np.asarray(out.obs[:, : env.state_size]), want_obs, atol=5e-2)
    close = np.all(np.abs(np.asarray(out.data.qpos) - want_qpos) < 1e-5, axis=1)
    assert close.mean() > 0.95


def test_oracle_dataset_contains_successful_episodes(data_root: Path) -> None:
    # tests/test_offline.py's oracle shapes (its compiled rollout is reused): 32 envs x 250 steps, one episode each
    config = dataclasses.replace(ORACLE_COLLECT, dataset="test/oracle", env_steps=8000)
    manifest = run_collection(config, DatasetStore(data_root), show_progress=False)
    data = DatasetStore(data_root).open(manifest["id"]).load(["success"])
    per_episode = np.maximum.reduceat(data["success"].astype(int), data["episode_offsets"][:-1])
    assert len(per_episode) == 32 and per_episode.mean() >= 0.9


# The random-policy tests share one compiled shape (4 envs x 20 steps, episodes of 50); MJX compiles are slow.
# 3120 steps = 39 epochs of 4 envs x 20 steps: 780 steps per env = 15 episodes of 50 and a cut tail of 30
RANDOM_ARGS = ["collect", "--policy", "random", "--env-steps", "3120", "--num-envs", "4", "--unroll-length", "20",
               "--episode-length", "50", "--checkpoint-every", "2", "--shard-rows", "200", "--no-progress"]


def _run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crl.pipelines.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow  # two CLI processes, each compiling (minutes cold); CI runs it in `pytest -m slow`
def test_sigkill_then_resume_gives_the_uninterrupted_data(tmp_path: Path) -> None:
    env = {**os.environ, "CRL_DATA_DIR": str(tmp_path / "data")}
    ref = _run_cli([*RANDOM_ARGS, "--dataset", "t/reference"], env)
    assert ref.returncode == 0, ref.stderr
    proc = subprocess.Popen([sys.executable, "-m", "crl.pipelines.cli", *RANDOM_ARGS, "--dataset", "t/killed"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "data" / "t" / "killed" / ".staging-v0" / "collector" / "w0" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and len([p for p in ckpts.glob("*") if p.name.isdigit()]) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = DatasetStore(tmp_path / "data")
    assert store.versions("t/killed") == []  # nothing visible
    resumed = _run_cli([*RANDOM_ARGS, "--dataset", "t/killed", "--resume"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert "t/killed-v0" in resumed.stdout
    assert verify(store, "t/killed-v0").ok
    a, b = store.open("t/reference-v0").load(), store.open("t/killed-v0").load()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert len(b["observation"]) == 3120 and "4 episodes cut at the budget, recorded as truncated" in resumed.stdout
    assert store.manifest("t/killed-v0")["provenance"]["collector"]["cut_episodes"] == 4
    np.testing.assert_array_equal(_assert_whole_budget_with_truncated_tails(b, 50), [30] * 4)


# Before the Dask test: it compiles the 4 envs x 20 steps rollout here, so the two Dask worker processes load it
# from the persistent compile cache instead of both compiling it.
def test_a_worker_rerun_after_its_last_checkpoint_keeps_its_cut_episodes(data_root: Path) -> None:
    from crl.pipelines.collector import collect_worker, provenance

    # 240 steps = 3 epochs of 4 envs x 20: 60 steps per env = one episode of 50 and a cut tail of 10
    config = CollectConfig(env="point_u_maze", dataset="test/again", policy="random", env_steps=240, num_envs=4,
                           unroll_length=20, episode_length=50, checkpoint_every=1)
    store = DatasetStore(data_root)
    env = make(config.env, **config.env_overrides())
    staging = store.begin(config.dataset, env.spec.to_dict(), provenance(config, env))
    first = collect_worker(config, staging, 0, config.env_steps)
    assert (first["env_steps"], first["cut_episodes"], first["cut_transitions"]) == (240, 4, 40)
    again = collect_worker(config, staging, 0, config.env_steps)  # e.g. a Dask retry after the last checkpoint
    assert again == first
    manifest = staging.commit()
    assert manifest["totals"]["transitions"] == 240 and manifest["totals"]["episodes"] == 8
    data = store.open(manifest["id"]).load()
    np.testing.assert_array_equal(_assert_whole_budget_with_truncated_tails(data, 50), [10] * 4)


def test_two_dask_workers_write_one_version(data_root: Path) -> None:
    config = CollectConfig(env="point_u_maze", dataset="test/dask", policy="random", env_steps=1600,
                           num_envs=4, unroll_length=20, episode_length=50, workers=2, shard_rows=100)
    manifest = run_collection(config, DatasetStore(data_root), show_progress=False)
    workers = {s["path"].split("/")[1].split("-")[0] for s in manifest["shards"]}
    assert workers == {"w0", "w1"}
    assert manifest["totals"]["transitions"] == 1600 and manifest["provenance"]["failed_workers"] == []
    data = DatasetStore(data_root).open(manifest["id"]).load(["episode_id"])
    ids = data["episode_id"][data["episode_offsets"][:-1]]
    assert len(np.unique(ids)) == len(ids) == 32  # 2 workers x 4 envs x 200 steps, episodes of 50
    assert verify(DatasetStore(data_root), manifest["id"]).ok


@pytest.mark.slow  # Dask worker processes compile their own rollouts (minutes cold); CI runs it in `pytest -m slow`
def test_a_failing_dask_worker_is_retried_then_left_out_whole(data_root: Path) -> None:
    from crl.pipelines.collector import checkpoint_root, provenance

    config = CollectConfig(env="point_u_maze", dataset="test/dask-fail", policy="random", env_steps=1600,
                           num_envs=4, unroll_length=20, episode_length=50, workers=2, shard_rows=100)
    store = DatasetStore(data_root)
    env = make(config.env, **config.env_overrides())
    staging = store.begin(config.dataset, env.spec.to_dict(), provenance(config, env))
    blocker = checkpoint_root(staging, "w1")  # a real fault: w1's checkpoint folder path is taken by a file
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    manifest = run_collection(config, store, resume=True, show_progress=False)
    failed = manifest["provenance"]["failed_workers"]
    assert [f["worker"] for f in failed] == ["w1"]
    assert {s["path"].split("/")[1].split("-")[0] for s in manifest["shards"]} == {"w0"}
    assert manifest["totals"]["transitions"] == 800
    assert verify(store, manifest["id"]).ok


def _assert_whole_budget_with_truncated_tails(data: dict, episode_length: int) -> np.ndarray:
    """Every episode ends with exactly one end flag; returns the lengths of the episodes cut short."""
    offsets = data["episode_offsets"]
    lengths = np.diff(offsets)
    last = offsets[1:] - 1
    assert (data["truncation"][last] | data["terminal"][last]).all()
    ends = (data["truncation"] | data["terminal"]).astype(int)
    assert ends.sum() == len(lengths)
    assert lengths.max() <= episode_length
    return lengths[data["truncation"][last] & (lengths < episode_length)]


# the scaled-down shape of `--policy random --env-steps 12800 --workers 2` with the cpu preset (64 envs x 50 steps,
# episodes of 250): each worker's budget ends before any env finishes its first episode
DASK_ARGS = ["collect", "--policy", "random", "--env-steps", "160", "--num-envs", "4", "--unroll-length", "20",
             "--episode-length", "50", "--workers", "2", "--no-progress"]


@pytest.mark.slow  # Dask worker processes compile their own rollouts (minutes cold); CI runs it in `pytest -m slow`
def test_dask_budget_shorter_than_an_episode_commits_every_step_quietly(data_root: Path) -> None:
    env = dict(os.environ)
    quiet = _run_cli([*DASK_ARGS, "--dataset", "t/short"], env)
    assert quiet.returncode == 0, quiet.stderr
    assert "8 episodes cut at the budget, recorded as truncated" in quiet.stdout
    assert [line for line in quiet.stderr.splitlines() if "distributed." in line and "INFO" in line] == []
    store = DatasetStore(data_root)
    manifest = store.manifest("t/short-v0")
    assert manifest["totals"]["transitions"] == 160 == manifest["provenance"]["collector"]["env_steps"]
    assert {s["path"].split("/")[1].split("-")[0] for s in manifest["shards"]} == {"w0", "w1"}
    data = store.open("t/short-v0").load()
    np.testing.assert_array_equal(_assert_whole_budget_with_truncated_tails(data, 50), [20] * 8)
    assert verify(store, "t/short-v0").ok

    loud = _run_cli([*DASK_ARGS, "--dataset", "t/short", "--dask-log", "info"], env)
    assert loud.returncode == 0, loud.stderr
    assert [line for line in loud.stderr.splitlines() if "distributed.scheduler" in line and "INFO" in line]
    assert store.manifest("t/short-v1")["content_hash"] == manifest["content_hash"]


def test_summary_names_the_rounded_budget_and_the_cut_episodes() -> None:
    from crl.pipelines.collection import describe
    from crl.pipelines.collector import epoch_shape, worker_budget

    # the case: 20,000 steps with the cpu preset (64 envs x 50 steps, episodes of 250) used to record only
    # the 16,000 steps of whole episodes; now all 22,400 steps of 7 epochs, 64 episodes cut after 100 steps
    config = CollectConfig(env_steps=20_000, policy="random")
    assert epoch_shape(config) == (64, 50) and worker_budget(config, 20_000) == 22_400
    collector = {"env": "point_u_maze", "policy": "random", "collector_depth": 4, "env_steps": 22_400,
                 "env_steps_requested": 20_000, "epoch_envs": 64, "epoch_steps": 50, "cut_episodes": 64,
                 "cut_transitions": 6_400}
    text = describe({"id": "t/x-v0", "totals": {"episodes": 128, "transitions": 22_400, "shards": 1},
                     "provenance": {"collector": collector}})
    assert "22,400 env steps collected and recorded: --env-steps 20,000 rounded up to whole epochs of 64 envs x " \
           "50 steps per worker" in text
    assert "64 episodes cut at the budget, recorded as truncated (6,400 transitions)" in text


def test_cli_user_errors_exit_2_and_leave_nothing(data_root: Path, capsys: pytest.CaptureFixture) -> None:
    for args in (["collect", "--policy", "telepathy", "--dataset", "t/x"],
                 ["collect", "--env", "point_nowhere_maze", "--dataset", "t/x"],
                 ["collect", "--dataset", "Bad/ID!"],
                 ["collect", "--env-steps", "10", "--collector-depth", "6", "--dataset", "t/x"]):
        with pytest.raises(SystemExit) as exc:
            crl_data(args)
        assert exc.value.code == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("crl-data: error:"), err
    assert DatasetStore(data_root).ids() == []
