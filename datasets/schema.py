"""The fields of an episode batch / shard (format v1), their dtypes, and batch validation.

An episode batch holds E whole episodes with N transitions in total (see datasets/FORMAT.md):
per-transition arrays [N, ...], per-episode arrays [E, ...] (`final_*`: the state after the last transition, and
any extra `ep_*` field) and `episode_offsets` [E+1] (episode e is rows offsets[e]:offsets[e+1]).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crl.errors import DatasetError

FORMAT_NAME = "crl-dataset"
FORMAT_VERSION = 1

#: Required per-transition fields and the dtype they are stored with.
TRANSITION_FIELDS: dict[str, np.dtype] = {
    "observation": np.dtype("float32"),
    "action": np.dtype("float32"),
    "achieved_goal": np.dtype("float32"),
    "desired_goal": np.dtype("float32"),
    "reward": np.dtype("float32"),
    "success": np.dtype("bool"),
    "terminal": np.dtype("bool"),
    "truncation": np.dtype("bool"),
    "qpos": np.dtype("float32"),
    "qvel": np.dtype("float32"),
    "episode_id": np.dtype("int64"),
    "step": np.dtype("int32"),
}
#: Required per-episode fields (state s_T after the episode's last transition).
EPISODE_FIELDS: dict[str, np.dtype] = {
    "final_observation": np.dtype("float32"),
    "final_achieved_goal": np.dtype("float32"),
    "final_desired_goal": np.dtype("float32"),
    "final_qpos": np.dtype("float32"),
    "final_qvel": np.dtype("float32"),
}
#: Fields whose trailing width must match another's (per-episode final_x mirrors x).
FINAL_OF = {k: k[len("final_"):] for k in EPISODE_FIELDS}
VECTOR_FIELDS = ("observation", "action", "achieved_goal", "desired_goal", "qpos", "qvel")
OFFSETS = "episode_offsets"


def is_episode_field(name: str) -> bool:
    """Per-episode fields are `final_*` and `ep_*`; everything else (but the offsets) is per transition."""
    return name.startswith("final_") or name.startswith("ep_")


def _to_numpy(value: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(value)  # also pulls JAX arrays to the host
    except Exception as e:  # noqa: BLE001 - anything unconvertible is a user error
        raise DatasetError(f"field {name!r} is not array-like: {e}") from e


def _cast(arr: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    if arr.dtype == dtype:
        return arr
    if dtype == np.bool_:
        if arr.dtype.kind in "fiu" and not np.isin(arr, (0, 1)).all():
            raise DatasetError(f"field {name!r} must be boolean (0/1 values), got other values")
        return arr.astype(bool)
    if dtype.kind in "iu" and arr.dtype.kind == "f":
        if not np.array_equal(arr, np.round(arr)):
            raise DatasetError(f"field {name!r} must hold integers, got fractional values")
    if dtype.kind == "f" and arr.dtype.kind not in "fiub":
        raise DatasetError(f"field {name!r} must be numeric, got dtype {arr.dtype}")
    return arr.astype(dtype)


def normalize_batch(batch: dict[str, Any]) -> dict[str, np.ndarray]:
    """Validate an episode batch and return numpy arrays in the stored dtypes.

    Checks: every required field present; per-transition fields have N rows and per-episode ones E rows;
    offsets start at 0, strictly increase and end at N; episode_id is constant within each episode;
    final_x has x's trailing shape. Raises DatasetError naming the first problem.
    """
    missing = [k for k in (*TRANSITION_FIELDS, *EPISODE_FIELDS, OFFSETS) if k not in batch]
    if missing:
        raise DatasetError(f"episode batch is missing fields {missing}")
    offsets = _to_numpy(batch[OFFSETS], OFFSETS)
    if offsets.ndim != 1 or offsets.size < 2 or offsets.dtype.kind not in "iu":
        raise DatasetError(f"{OFFSETS} must be a 1-D integer array [E+1] with E >= 1, got {offsets.shape}")
    offsets = offsets.astype(np.int64)
    n_rows = int(offsets[-1])
    n_eps = offsets.size - 1
    if offsets[0] != 0 or np.any(np.diff(offsets) <= 0):
        raise DatasetError(f"{OFFSETS} must start at 0 and strictly increase (no empty episodes)")
    out: dict[str, np.ndarray] = {OFFSETS: offsets}
    for name, value in batch.items():
        if name == OFFSETS:
            continue
        arr = _to_numpy(value, name)
        per_episode = is_episode_field(name)
        want = n_eps if per_episode else n_rows
        if arr.ndim == 0 or arr.shape[0] != want:
            kind = "episodes (E)" if per_episode else "transitions (N = episode_offsets[-1])"
            raise DatasetError(f"field {name!r} has shape {arr.shape}; its first axis must be {want} {kind}")
        dtype = TRANSITION_FIELDS.get(name) or EPISODE_FIELDS.get(name)
        if dtype is not None:
            arr = _cast(arr, dtype, name)
            if name in VECTOR_FIELDS or name in EPISODE_FIELDS:
                if arr.ndim != 2:
                    raise DatasetError(f"field {name!r} must be 2-D [rows, width], got shape {arr.shape}")
            elif arr.ndim != 1:
                raise DatasetError(f"field {name!r} must be 1-D [N], got shape {arr.shape}")
        out[name] = np.ascontiguousarray(arr)
    for final, base in FINAL_OF.items():
        if out[final].shape[1:] != out[base].shape[1:]:
            raise DatasetError(
                f"{final} has width {out[final].shape[1:]} but {base} has {out[base].shape[1:]}"
            )
    ids = out["episode_id"]
    starts = ids[offsets[:-1]]
    if not np.array_equal(ids, np.repeat(starts, np.diff(offsets))):
        raise DatasetError("episode_id must be constant within each episode (check episode_offsets)")
    return out


def field_signature(batch: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """{field: {dtype, shape (trailing), per}}: what must stay identical across the shards of a version."""
    return {
        name: {
            "dtype": str(arr.dtype),
            "shape": list(arr.shape[1:]),
            "per": "episode" if is_episode_field(name) else "transition",
        }
        for name, arr in sorted(batch.items())
        if name != OFFSETS
    }


def check_env_spec(batch: dict[str, np.ndarray], env_spec: dict[str, Any]) -> None:
    """Raise DatasetError when array widths disagree with the environment spec (wrong env or wrong slicing)."""
    expect = {
        "observation": env_spec.get("state_size"),
        "action": env_spec.get("action_size"),
        "achieved_goal": env_spec.get("goal_size"),
        "desired_goal": env_spec.get("goal_size"),
        "qpos": env_spec.get("nq"),
        "qvel": env_spec.get("nv"),
    }
    for name, width in expect.items():
        if width is not None and batch[name].shape[1] != int(width):
            raise DatasetError(
                f"field {name!r} has width {batch[name].shape[1]} but env {env_spec.get('name')!r} says {width}"
            )


def concat_batches(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate normalised batches (episode offsets shifted)."""
    if len(batches) == 1:
        return batches[0]
    out: dict[str, np.ndarray] = {}
    for name in batches[0]:
        if name == OFFSETS:
            parts, base = [np.zeros(1, np.int64)], 0
            for b in batches:
                parts.append(b[OFFSETS][1:] + base)
                base += int(b[OFFSETS][-1])
            out[name] = np.concatenate(parts)
        else:
            out[name] = np.concatenate([b[name] for b in batches])
    return out


def slice_episodes(batch: dict[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    """Episodes [start, stop) of a normalised batch, offsets rebased to 0."""
    off = batch[OFFSETS]
    r0, r1 = int(off[start]), int(off[stop])
    out = {OFFSETS: off[start:stop + 1] - r0}
    for name, arr in batch.items():
        if name != OFFSETS:
            out[name] = arr[start:stop] if is_episode_field(name) else arr[r0:r1]
    return out
