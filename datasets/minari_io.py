"""Minari interop: export a version as a Minari dataset (goal-Dict observations) and import Minari datasets.

Export layout per episode of T transitions (Minari's convention, T+1 observations):
observations = {observation, achieved_goal, desired_goal} with rows s_0..s_T (the last is the final_* row), where
`observation` is the state part only (state_size columns) and the goal lives in `desired_goal` alone: the
Gymnasium-Robotics goal-env convention that Minari users and libraries such as d3rlpy expect, and what the crl
Gymnasium wrapper emits; actions, rewards, terminations, truncations [T]; infos {qpos, qvel, success, episode_id,
step} [T+1] where row t describes s_t (row 0: success False). The crl env spec, source manifest and observation
convention go in the metadata (`crl_env_spec`, `crl_source`, `crl_observation`), so Zarr -> Minari -> Zarr is
bit-identical on every field. Exports written before 2026-12-02 have observation = concat(state part, desired goal)
(observation_size columns); the importer tells the two apart by width and keeps the state part of either.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np

from crl.datasets.importing import imported_spec, success_labels, write_version
from crl.datasets.reader import DatasetReader
from crl.datasets.schema import OFFSETS
from crl.datasets.store import DatasetStore
from crl.errors import DatasetError

OBSERVATION_CONVENTION = "goal-env: observation = state part (state_size columns); goal only in desired_goal"
"""Written as the export's `crl_observation` metadata."""


def _minari() -> Any:
    import minari

    return minari


def minari_spaces(env_spec: dict[str, Any], actions: np.ndarray) -> tuple[gym.spaces.Dict, gym.spaces.Box]:
    """Minari's (observation Dict, action Box) spaces of a crl dataset: observation / achieved_goal / desired_goal."""
    s, g = int(env_spec["state_size"]), int(env_spec["goal_size"])
    box = lambda n: gym.spaces.Box(-np.inf, np.inf, (n,), np.float32)  # noqa: E731
    obs = gym.spaces.Dict({"observation": box(s), "achieved_goal": box(g), "desired_goal": box(g)})
    lo = min(-1.0, float(actions.min(initial=-1.0)))
    hi = max(1.0, float(actions.max(initial=1.0)))
    return obs, gym.spaces.Box(lo, hi, (actions.shape[1],), np.float32)


def _gym_env_id(env_spec: dict[str, Any]) -> str | None:
    gym_id = env_spec.get("gym_id")
    if not gym_id:
        return None
    try:
        import crl.envs  # noqa: F401  (registers crl/* Gymnasium ids)
    except ImportError:
        pass
    try:
        gym.spec(gym_id)
    except gym.error.Error as e:
        raise DatasetError(f"Gymnasium id {gym_id!r} from the env spec is not registered ({e})") from e
    return gym_id


def episode_buffers(data: dict[str, np.ndarray], column_infos: bool = False) -> Iterator[Any]:
    """Minari episode buffers; column_infos stores 1-D infos as [T+1, 1] (minari 0.5.4's arrow backend cannot
    decode 1-D info arrays; the importer squeezes them back)."""
    from minari.data_collector import EpisodeBuffer

    col = (lambda v: v[:, None]) if column_infos else (lambda v: v)  # noqa: E731

    off = data[OFFSETS]
    for e in range(off.size - 1):
        a, b = int(off[e]), int(off[e + 1])
        T = b - a

        def with_final(k: str, a: int = a, b: int = b, e: int = e) -> np.ndarray:
            return np.concatenate([data[k][a:b], data["final_" + k][e:e + 1]])

        yield EpisodeBuffer(
            id=e,
            observations={
                "observation": with_final("observation"),
                "achieved_goal": with_final("achieved_goal"),
                "desired_goal": with_final("desired_goal"),
            },
            actions=data["action"][a:b],
            rewards=data["reward"][a:b],
            terminations=data["terminal"][a:b],
            truncations=data["truncation"][a:b],
            infos={
                "qpos": with_final("qpos"),
                "qvel": with_final("qvel"),
                "success": col(np.concatenate([[False], data["success"][a:b]])),
                "episode_id": col(np.full(T + 1, data["episode_id"][a], np.int64)),
                "step": col(np.concatenate([data["step"][a:b], data["step"][b - 1:b] + 1]).astype(np.int32)),
            },
        )


def export_minari(
    reader: DatasetReader,
    minari_id: str | None = None,
    data_format: str = "hdf5",
    author: str | None = None,
    author_email: str | None = None,
    code_permalink: str | None = None,
    description: str | None = None,
) -> str:
    """Write `reader`'s version into MINARI_DATASETS_PATH as a Minari dataset; returns the Minari id.

    Refuses an existing Minari id; on failure the partial Minari dataset is deleted.
    """
    minari = _minari()
    from minari.storage import get_dataset_path

    m = reader.manifest
    mid = minari_id or m["id"]
    if data_format not in ("hdf5", "arrow"):
        raise DatasetError(f"unknown Minari format {data_format!r}: hdf5 or arrow")
    try:
        path = get_dataset_path(mid)
    except Exception as e:  # noqa: BLE001 - minari raises plain errors for malformed ids
        raise DatasetError(f"invalid Minari dataset id {mid!r}: {e}") from e
    if os.path.exists(path):
        raise DatasetError(f"Minari dataset {mid} already exists at {path}; pick another --minari-id")
    env_id = _gym_env_id(m["env_spec"])
    data = reader.load()
    obs_space, act_space = minari_spaces(m["env_spec"], data["action"])
    prov = m.get("provenance", {})
    authors = author or prov.get("author") or "crl"
    try:
        with warnings.catch_warnings():  # minari warns about unset optional metadata (email, eval env)
            warnings.simplefilter("ignore", UserWarning)
            ds = _create(minari, mid, data, env_id, obs_space, act_space, prov, authors, author_email,
                         code_permalink, description, data_format, m)
        ds.storage.update_metadata({
            "crl_env_spec": m["env_spec"],
            "crl_observation": OBSERVATION_CONVENTION,
            "crl_source": {"id": m["id"], "content_hash": m["content_hash"], "provenance": prov},
        })
    except DatasetError:
        shutil.rmtree(path, ignore_errors=True)
        raise
    except Exception as e:
        shutil.rmtree(path, ignore_errors=True)
        raise DatasetError(f"Minari export of {m['id']} failed: {type(e).__name__}: {e}") from e
    return mid


def _create(minari: Any, mid: str, data: dict[str, np.ndarray], env_id: str | None, obs_space: Any,
            act_space: Any, prov: dict[str, Any], authors: Any, author_email: str | None,
            code_permalink: str | None, description: str | None, data_format: str, m: dict[str, Any]) -> Any:
    return minari.create_dataset_from_buffers(
        dataset_id=mid,
        buffer=list(episode_buffers(data, column_infos=data_format == "arrow")),
        env=env_id,
        observation_space=obs_space,
        action_space=act_space,
        algorithm_name=str(prov.get("algorithm") or prov.get("policy") or "unknown"),
        author={authors} if isinstance(authors, str) else set(authors),
        author_email=author_email or prov.get("author_email"),
        code_permalink=code_permalink or prov.get("code_permalink") or f"crl {m['code_version']}",
        description=description or prov.get("description")
        or f"crl dataset {m['id']} (content hash {m['content_hash']}), exported from Zarr format v1",
        data_format=data_format,
    )


def _info(infos: dict[str, Any] | None, key: str, T: int) -> np.ndarray | None:
    """Per-state info of length T+1 (or per-transition, length T, padded in front); None if absent."""
    if not infos or key not in infos:
        return None
    v = np.asarray(infos[key])
    if key in ("success", "is_success", "episode_id", "step") and v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if len(v) == T + 1:
        return v
    if len(v) == T:
        return np.concatenate([v[:1], v])
    raise DatasetError(f"info {key!r} has {len(v)} rows for an episode of {T} transitions")


def import_minari(
    store: DatasetStore,
    minari_id: str,
    name: str,
    goal_indices: tuple[int, ...] | None = None,
    goal_dims: int = 0,
    success_threshold: float = 0.5,
    parent: str | None = None,
) -> dict[str, Any]:
    """Import a local Minari dataset (goal-Dict or Box observations) as the next version of `name`.

    Dict observations need keys observation/achieved_goal/desired_goal. Box observations need `goal_indices`
    (which dims are the achieved goal); their last `goal_dims` dims are taken as the commanded goal (0: none
    recorded, hindsight = final achieved goal). success comes from infos (`success`/`is_success`) when present,
    else from the threshold. qpos/qvel come from infos when present (else zero-width).
    """
    minari = _minari()
    try:
        ds = minari.load_dataset(minari_id)
    except Exception as e:  # noqa: BLE001 - minari raises many kinds for unknown/corrupt datasets
        raise DatasetError(f"cannot load Minari dataset {minari_id!r}: {type(e).__name__}: {e}") from e
    meta = ds.storage.metadata
    crl_spec = meta.get("crl_env_spec")
    obs_space = ds.observation_space
    is_dict = isinstance(obs_space, gym.spaces.Dict)
    if is_dict:
        keys = set(obs_space.spaces)
        if not {"observation", "achieved_goal", "desired_goal"} <= keys:
            raise DatasetError(f"{minari_id}: Dict observations need observation/achieved_goal/desired_goal, "
                               f"got {sorted(keys)}")
    elif isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1:
        if goal_indices is None:
            raise DatasetError(f"{minari_id} has Box observations: give --goal-indices (e.g. 0,1)")
        if goal_dims < 0 or goal_dims >= obs_space.shape[0]:
            raise DatasetError(f"--goal-dims {goal_dims} does not fit {obs_space.shape[0]}-dim observations")
    else:
        raise DatasetError(f"{minari_id}: only Box or goal-Dict observation spaces are supported ({obs_space})")

    state_size = _crl_state_width(minari_id, crl_spec, obs_space) if is_dict else None
    gen = (_episode_from_minari(ep, is_dict, goal_indices, goal_dims, success_threshold, state_size)
           for ep in ds.iterate_episodes())
    try:
        b0 = next(gen)
    except StopIteration:
        raise DatasetError(f"{minari_id} holds no episodes") from None
    if crl_spec is not None:
        spec = crl_spec
    else:
        gi = goal_indices if goal_indices is not None else ()
        env_spec = meta.get("env_spec")
        gym_id = json.loads(env_spec).get("id") if isinstance(env_spec, str) and env_spec else None
        spec = imported_spec(
            f"minari:{minari_id}", state_size=b0["observation"].shape[1], action_size=b0["action"].shape[1],
            goal_size=b0["achieved_goal"].shape[1], goal_indices=gi, nq=b0["qpos"].shape[1],
            nv=b0["qvel"].shape[1], episode_length=int(b0["step"][-1]) + 1,
            success_threshold=success_threshold, gym_id=gym_id, family="minari",
        )
    provenance = {"source": "minari", "minari_id": minari_id, "minari_version": meta.get("minari_version"),
                  "author": _plain(meta.get("author")), "algorithm": meta.get("algorithm_name"),
                  "code_permalink": meta.get("code_permalink"), "description": meta.get("description")}
    if meta.get("crl_source"):
        provenance["crl_source"] = meta["crl_source"]

    def chain() -> Iterator[dict[str, np.ndarray]]:
        yield b0
        yield from gen

    return write_version(store, name, spec, provenance, chain(), parent=parent)


def _crl_state_width(minari_id: str, crl_spec: dict[str, Any] | None, obs_space: gym.spaces.Dict) -> int | None:
    """How many leading `observation` columns of a crl export are the state part (None: not a crl export).

    Exports follow the goal-env convention (width state_size); older ones (before 2026-12-02) stored
    concat(state, desired goal) (width observation_size), told apart here by the width; both import to the state.
    """
    if crl_spec is None:
        return None
    width = int(obs_space["observation"].shape[0])
    state_size, full_size = int(crl_spec["state_size"]), int(crl_spec["observation_size"])
    if width not in (state_size, full_size):
        raise DatasetError(f"{minari_id}: observation has {width} columns, but its crl env spec "
                           f"{crl_spec.get('name')!r} has state_size {state_size} (observation_size {full_size})")
    return state_size


def _plain(v: Any) -> Any:
    return sorted(v) if isinstance(v, set | list | tuple) else v


def _episode_from_minari(
    ep: Any, is_dict: bool, goal_indices: tuple[int, ...] | None, goal_dims: int, threshold: float,
    state_size: int | None = None,
) -> dict[str, np.ndarray]:
    T = len(ep.rewards)
    if T == 0:
        raise DatasetError(f"Minari episode {ep.id} has no transitions")
    if is_dict:
        state = np.asarray(ep.observations["observation"])
        if state_size is not None:
            state = state[:, :state_size]
        ach = np.asarray(ep.observations["achieved_goal"])
        des = np.asarray(ep.observations["desired_goal"])
    else:
        full = np.asarray(ep.observations)
        state = full[:, : full.shape[1] - goal_dims]
        ach = state[:, list(goal_indices or ())]
        des = full[:, full.shape[1] - goal_dims:] if goal_dims else np.repeat(ach[-1:], T + 1, 0)
    if len(state) != T + 1:
        raise DatasetError(f"Minari episode {ep.id}: {len(state)} observations for {T} transitions (want T+1)")
    infos = ep.infos or {}
    qpos = _info(infos, "qpos", T)
    qvel = _info(infos, "qvel", T)
    qpos = np.zeros((T + 1, 0), np.float32) if qpos is None else qpos.reshape(T + 1, -1)
    qvel = np.zeros((T + 1, 0), np.float32) if qvel is None else qvel.reshape(T + 1, -1)
    succ = _info(infos, "success", T)
    if succ is None:
        succ = _info(infos, "is_success", T)
    success = success_labels(ach[1:], des[:-1], threshold) if succ is None else np.asarray(succ[1:], bool)
    ids = _info(infos, "episode_id", T)
    steps = _info(infos, "step", T)
    eid = int(ids[0]) if ids is not None else int(ep.id)
    return {
        "observation": state[:-1], "action": np.asarray(ep.actions).reshape(T, -1),
        "achieved_goal": ach[:-1], "desired_goal": des[:-1], "reward": np.asarray(ep.rewards),
        "success": success, "terminal": np.asarray(ep.terminations), "truncation": np.asarray(ep.truncations),
        "qpos": qpos[:-1], "qvel": qvel[:-1], "episode_id": np.full(T, eid, np.int64),
        "step": steps[:-1] if steps is not None else np.arange(T, dtype=np.int32),
        "final_observation": state[-1:], "final_achieved_goal": ach[-1:], "final_desired_goal": des[-1:],
        "final_qpos": qpos[-1:], "final_qvel": qvel[-1:],
        "episode_offsets": np.array([0, T], np.int64),
    }
