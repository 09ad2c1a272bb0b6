"""Deterministic synthetic episode batches in the format-v1 layout (for tests and examples without an env).

A point moves by its clipped actions (a smooth random walk, not noise), so arrays look like real trajectories.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def synthetic_spec(state_size: int = 4, action_size: int = 2, goal_size: int = 2) -> dict[str, Any]:
    """An env-spec dict matching `episode_batch` (shaped like EnvSpec.to_dict(); no Gymnasium id)."""
    return {
        "name": "synthetic_point", "family": "synthetic", "layout": "none",
        "observation_size": state_size + goal_size, "state_size": state_size, "goal_size": goal_size,
        "action_size": action_size, "goal_indices": list(range(goal_size)), "episode_length": 1000,
        "success_threshold": 0.5, "nq": goal_size, "nv": goal_size, "gym_id": None, "config": {},
    }


def episode_batch(
    lengths: list[int],
    first_episode_id: int = 0,
    seed: int = 0,
    state_size: int = 4,
    action_size: int = 2,
    goal_size: int = 2,
    terminate_last: bool = False,
) -> dict[str, np.ndarray]:
    """A batch of len(lengths) episodes with the given lengths (episode ids consecutive from first_episode_id)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {}

    def put(k: str, v: np.ndarray) -> None:
        out.setdefault(k, []).append(v)

    for e, T in enumerate(lengths):
        actions = np.clip(rng.normal(0.0, 0.5, (T, action_size)), -1, 1).astype(np.float32)
        pos = np.zeros((T + 1, goal_size), np.float32)
        pos[0] = rng.uniform(-2, 2, goal_size)
        vel = 0.1 * actions[:, :goal_size] if action_size >= goal_size else np.zeros((T, goal_size), np.float32)
        pos[1:] = pos[0] + np.cumsum(vel, axis=0)
        state = np.zeros((T + 1, state_size), np.float32)
        state[:, :goal_size] = pos
        state[1:, goal_size:goal_size * 2] = vel[:, : max(0, min(goal_size, state_size - goal_size))]
        goal = rng.uniform(-2, 2, goal_size).astype(np.float32)
        dist = np.linalg.norm(pos[1:] - goal, axis=-1)
        success = dist < 0.5
        term = np.zeros(T, bool)
        trunc = np.zeros(T, bool)
        (term if terminate_last else trunc)[-1] = True
        put("observation", state[:-1])
        put("action", actions)
        put("achieved_goal", pos[:-1])
        put("desired_goal", np.repeat(goal[None], T, 0))
        put("reward", success.astype(np.float32))
        put("success", success)
        put("terminal", term)
        put("truncation", trunc)
        put("qpos", pos[:-1])
        put("qvel", np.concatenate([np.zeros((1, goal_size), np.float32), vel[:-1]]))
        put("episode_id", np.full(T, first_episode_id + e, np.int64))
        put("step", np.arange(T, dtype=np.int32))
        put("final_observation", state[-1:])
        put("final_achieved_goal", pos[-1:])
        put("final_desired_goal", goal[None])
        put("final_qpos", pos[-1:])
        put("final_qvel", vel[-1:])
    batch = {k: np.concatenate(v) for k, v in out.items()}
    batch["episode_offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return batch
