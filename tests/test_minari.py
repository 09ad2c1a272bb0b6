"""Minari interop with real minari datasets in a temporary MINARI_DATASETS_PATH."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from crl.datasets import DatasetStore
from crl.datasets.minari_io import episode_buffers, export_minari, import_minari
from crl.datasets.synthetic import episode_batch, synthetic_spec
from crl.errors import DatasetError


@pytest.fixture
def minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "minari"
    root.mkdir()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def _dataset(store: DatasetStore, name: str = "test/pt") -> str:
    st = store.begin(name, synthetic_spec(), provenance={"policy": "random", "author": "tester",
                                                         "code_permalink": "https://example.org/crl"})
    with st.writer("w0", shard_rows=120) as w:
        w.append(episode_batch([50, 70, 30, 100], seed=1))
        w.append(episode_batch([20, 40], first_episode_id=4, seed=2, terminate_last=True))
    return st.commit()["id"]


@pytest.mark.parametrize("fmt", ["hdf5", "arrow"])
def test_zarr_minari_zarr_is_bit_identical(data_root: Path, minari_root: Path, fmt: str) -> None:
    import minari

    store = DatasetStore()
    src = _dataset(store)
    mid = export_minari(store.open(src), minari_id=f"test/pt-{fmt}-v0", data_format=fmt)
    ds = minari.load_dataset(mid)
    assert ds.total_episodes == 6 and ds.total_steps == 310
    assert isinstance(ds.observation_space, gym.spaces.Dict)
    assert ds.storage.metadata["author"] == {"tester"}
    assert ds.storage.metadata["code_permalink"] == "https://example.org/crl"
    ep = next(iter(ds.iterate_episodes([0])))
    # goal-env convention: observation = the state part (state_size 4), the goal in desired_goal only
    assert ep.observations["observation"].shape == (51, 4) and ep.infos["qpos"].shape == (51, 2)
    assert ds.observation_space["observation"].shape == (4,)
    assert ds.storage.metadata["crl_observation"].startswith("goal-env")
    back = import_minari(store, mid, "test/back")
    assert back["id"] == "test/back-v0" and back["provenance"]["crl_source"]["id"] == src
    a, b = store.open(src).load(), store.open(back["id"]).load()
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    assert back["env_spec"] == store.manifest(src)["env_spec"]


def test_minari_show_and_existing_id_refused(data_root: Path, minari_root: Path) -> None:
    store = DatasetStore()
    src = _dataset(store)
    export_minari(store.open(src))
    out = subprocess.run([sys.executable, "-m", "minari.cli", "show", src], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "Total Episodes" in out.stdout and "310" in out.stdout, out.stderr
    with pytest.raises(DatasetError, match="already exists"):
        export_minari(store.open(src))


def test_import_box_observations_with_goal_options(data_root: Path, minari_root: Path) -> None:
    """A foreign Minari dataset with Box obs = [state (4), goal (2)] and no crl metadata."""
    import minari
    from minari.data_collector import EpisodeBuffer

    rng = np.random.default_rng(0)
    bufs = []
    for e, T in enumerate([30, 45]):
        state = np.cumsum(rng.normal(0, 0.1, (T + 1, 4)), 0).astype(np.float32)
        goal = np.repeat(rng.uniform(-1, 1, (1, 2)).astype(np.float32), T + 1, 0)
        bufs.append(EpisodeBuffer(
            id=e, observations=np.concatenate([state, goal], 1), actions=rng.uniform(-1, 1, (T, 2)),
            rewards=np.zeros(T), terminations=np.zeros(T, bool), truncations=np.arange(T) == T - 1))
    space = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
    minari.create_dataset_from_buffers("foreign/box-v0", bufs, observation_space=space,
                                       action_space=gym.spaces.Box(-1, 1, (2,), np.float64),
                                       algorithm_name="x", author="y", author_email="z", code_permalink="w")
    with pytest.raises(DatasetError, match="goal-indices"):
        import_minari(DatasetStore(), "foreign/box-v0", "test/box")
    m = import_minari(DatasetStore(), "foreign/box-v0", "test/box", goal_indices=(0, 1), goal_dims=2,
                      success_threshold=0.3)
    r = DatasetStore().open(m["id"])
    d = r.load()
    assert d["observation"].shape == (75, 4) and d["desired_goal"].shape == (75, 2)
    np.testing.assert_array_equal(d["achieved_goal"], d["observation"][:, :2])
    nxt = np.concatenate([d["achieved_goal"][1:30], d["final_achieved_goal"][:1]])
    want = np.linalg.norm(nxt - d["desired_goal"][:30], axis=-1) <= 0.3
    np.testing.assert_array_equal(d["success"][:30], want)
    assert m["env_spec"]["goal_indices"] == [0, 1] and m["env_spec"]["nq"] == 0
    with pytest.raises(DatasetError, match="cannot load"):
        import_minari(DatasetStore(), "foreign/nothing-v0", "test/none")
    assert DatasetStore().versions("test/none") == [] and DatasetStore().staging_versions("test/none") == []


def test_export_sets_env_spec_so_recover_environment_works(data_root: Path, minari_root: Path) -> None:
    """With the env's gym id in the spec, Minari records the registered crl env and can rebuild it."""
    import minari

    import crl.envs

    spec = crl.envs.make("point_u_maze").spec.to_dict()
    st = DatasetStore().begin("test/point", spec, provenance={"policy": "random"})
    with st.writer("w0") as w:
        w.append(episode_batch([20, 25], seed=3))  # synthetic data with the point env's widths (4, 2, 2, 2)
    did = st.commit()["id"]
    mid = export_minari(DatasetStore().open(did))
    ds = minari.load_dataset(mid)
    assert ds.spec.env_spec is not None and ds.spec.env_spec.id == "crl/PointUMaze-v0"
    assert ds.observation_space["observation"].shape == (spec["state_size"],)
    env = ds.recover_environment()
    assert env.observation_space == ds.observation_space and env.action_space.shape == ds.action_space.shape
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    ep = next(iter(ds.iterate_episodes([0])))
    assert ep.observations["observation"].shape[1] == obs["observation"].shape[0] == spec["state_size"]


def test_older_exports_with_state_and_goal_in_observation_still_import(data_root: Path, minari_root: Path) -> None:
    """Exports before 2026-12-02 stored observation = concat(state, desired goal); they import to the same data."""
    from dataclasses import replace

    import minari

    from crl.datasets.minari_io import minari_spaces

    store = DatasetStore()
    src = _dataset(store)
    m = store.manifest(src)
    data = store.open(src).load()
    old = [replace(b, observations={**b.observations, "observation": np.concatenate(
        [b.observations["observation"], b.observations["desired_goal"]], axis=1)}) for b in episode_buffers(data)]
    obs_space, act_space = minari_spaces(m["env_spec"], data["action"])
    obs_space = gym.spaces.Dict({**obs_space.spaces, "observation": gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)})
    ds = minari.create_dataset_from_buffers("old/pt-v0", old, observation_space=obs_space, action_space=act_space,
                                            algorithm_name="random", author="tester", author_email="-",
                                            code_permalink="-", description="an export of the old convention")
    ds.storage.update_metadata({"crl_env_spec": m["env_spec"],
                                "crl_source": {"id": src, "content_hash": m["content_hash"], "provenance": {}}})
    back = import_minari(store, "old/pt-v0", "test/old")
    a, b = store.open(src).load(), store.open(back["id"]).load()
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k

    wrong = {**m["env_spec"], "state_size": 3, "observation_size": 5}  # a width that fits neither convention
    ds.storage.update_metadata({"crl_env_spec": wrong})
    with pytest.raises(DatasetError, match="observation has 6 columns"):
        import_minari(store, "old/pt-v0", "test/wrong")


def test_import_foreign_goal_dict_dataset(data_root: Path, minari_root: Path) -> None:
    """Gymnasium-Robotics style: Dict obs whose `observation` excludes the goal, `success` in infos (T+1 rows)."""
    import minari
    from minari.data_collector import EpisodeBuffer

    rng = np.random.default_rng(1)
    T = 40
    ach = np.cumsum(rng.normal(0, 0.1, (T + 1, 2)), 0).astype(np.float32)
    obs = {"observation": np.concatenate([ach, rng.normal(size=(T + 1, 3)).astype(np.float32)], 1),
           "achieved_goal": ach, "desired_goal": np.repeat(ach[-1:], T + 1, 0)}
    succ = np.arange(T + 1) >= T - 2
    buf = EpisodeBuffer(id=0, observations=obs, actions=rng.uniform(-1, 1, (T, 2)).astype(np.float32),
                        rewards=succ[1:].astype(np.float32), terminations=np.arange(T) == T - 1,
                        truncations=np.zeros(T, bool), infos={"success": succ})
    box = lambda n: gym.spaces.Box(-np.inf, np.inf, (n,), np.float32)  # noqa: E731
    space = gym.spaces.Dict({"observation": box(5), "achieved_goal": box(2), "desired_goal": box(2)})
    minari.create_dataset_from_buffers("foreign/dict-v0", [buf], observation_space=space,
                                       action_space=gym.spaces.Box(-1, 1, (2,), np.float32),
                                       algorithm_name="x", author="y", author_email="z", code_permalink="w",
                                       description="d")
    m = import_minari(DatasetStore(), "foreign/dict-v0", "test/dict")
    d = DatasetStore().open(m["id"]).load()
    np.testing.assert_array_equal(d["observation"], obs["observation"][:-1])
    np.testing.assert_array_equal(d["final_desired_goal"][0], ach[-1])
    np.testing.assert_array_equal(d["success"], succ[1:])
    assert d["terminal"][-1] and m["env_spec"]["state_size"] == 5 and m["provenance"]["source"] == "minari"
