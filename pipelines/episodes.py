"""Turn streams of per-step `Transition` records from vectorised envs into whole-episode batches.

A rollout hands back transitions with leading axes [steps, num_envs]; each env slot is a stream of episodes that
end where `terminal` or `truncation` is set. The assembler keeps each slot's unfinished episode between calls (so
episodes may span many unrolls) and emits whole episodes, in the dataset format's "episode batch" form (see
datasets/FORMAT.md): flat per-transition arrays, per-episode final-state arrays, and `episode_offsets`. On the
last block of a collection (`add(..., last=True)`) the episodes still running are emitted too, cut there and
marked as truncated, so every step a collector took is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# Transition fields kept per step on the host, and the dtype each is stored with.
_STEP_FIELDS: dict[str, Any] = {
    "obs": np.float32,
    "action": np.float32,
    "reward": np.float32,
    "terminal": np.bool_,
    "truncation": np.bool_,
    "success": np.bool_,
    "qpos": np.float32,
    "qvel": np.float32,
    "episode_id": np.int64,
    "step": np.int32,
}
_FINAL_FIELDS = ("next_obs", "next_qpos", "next_qvel")


class EpisodeAssembler:
    """Collect [steps, num_envs] transition blocks; return the episodes that finished, as one episode batch.

    state_size / goal_indices split an observation into its state part, achieved goal and commanded goal.
    """

    def __init__(self, num_envs: int, state_size: int, goal_indices: tuple[int, ...]):
        self.num_envs = num_envs
        self.state_size = state_size
        self.goal_indices = np.asarray(goal_indices, dtype=np.int64)
        # Per slot: list of per-field arrays (chunks) of the unfinished episode.
        self._pending: list[list[dict[str, np.ndarray]]] = [[] for _ in range(num_envs)]
        self.cut_episodes = 0
        """Episodes emitted by `add(..., last=True)` while still running (recorded as truncated)."""
        self.cut_transitions = 0
        """Transitions in those episodes."""

    # ------------------------------------------------------------------ state for checkpoint / resume
    def pending_transitions(self) -> int:
        """Transitions held in unfinished episodes."""
        return sum(len(c["step"]) for slot in self._pending for c in slot)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Unfinished episodes as flat numpy arrays (saved with a collector checkpoint)."""
        out: dict[str, np.ndarray] = {}
        slot_lengths = []
        for slot in self._pending:
            slot_lengths.append(sum(len(c["step"]) for c in slot))
        out["slot_lengths"] = np.asarray(slot_lengths, dtype=np.int64)
        for name in _STEP_FIELDS:
            chunks = [c[name] for slot in self._pending for c in slot]
            out[name] = np.concatenate(chunks) if chunks else np.zeros((0,), _STEP_FIELDS[name])
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore unfinished episodes saved by `state_dict`."""
        lengths = np.asarray(state["slot_lengths"])
        if len(lengths) != self.num_envs:
            raise ValueError(f"saved assembler has {len(lengths)} slots, expected {self.num_envs}")
        starts = np.concatenate([[0], np.cumsum(lengths)])
        self._pending = []
        for i in range(self.num_envs):
            a, b = starts[i], starts[i + 1]
            self._pending.append([{k: np.asarray(state[k][a:b]) for k in _STEP_FIELDS}] if b > a else [])

    # ------------------------------------------------------------------ assembly
    def add(self, transitions: Any, last: bool = False) -> dict[str, np.ndarray] | None:
        """Add a [steps, num_envs] block (a Transition of numpy/JAX arrays); return finished episodes or None.

        last: the block ends the collection; each slot's running episode is emitted as well, with truncation set
        on its last transition and the block's last next-state as its final state (nothing is left pending).
        """
        steps = {k: np.asarray(getattr(transitions, k)).astype(dt, copy=False) for k, dt in _STEP_FIELDS.items()}
        finals = {k: np.asarray(getattr(transitions, k)) for k in _FINAL_FIELDS}
        t_len, n = steps["step"].shape[:2]
        if n != self.num_envs:
            raise ValueError(f"transition block has {n} env slots, expected {self.num_envs}")
        ends = steps["terminal"] | steps["truncation"]  # [T, N]
        episodes: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []
        for slot in range(n):
            start = 0
            for t in np.flatnonzero(ends[:, slot]):
                chunk = {k: v[start : t + 1, slot] for k, v in steps.items()}
                parts = self._pending[slot] + [chunk]
                self._pending[slot] = []
                body = {k: np.concatenate([p[k] for p in parts]) if len(parts) > 1 else parts[0][k]
                        for k in _STEP_FIELDS}
                final = {k: v[t, slot] for k, v in finals.items()}
                episodes.append((body, final))
                start = t + 1
            if start < t_len:
                self._pending[slot].append({k: v[start:, slot] for k, v in steps.items()})
            if last and self._pending[slot]:
                parts, self._pending[slot] = self._pending[slot], []
                body = {k: np.concatenate([p[k] for p in parts]) for k in _STEP_FIELDS}
                body["truncation"] = body["truncation"].copy()
                body["truncation"][-1] = True  # cut by the budget: an end by time limit, not a terminal state
                episodes.append((body, {k: v[t_len - 1, slot] for k, v in finals.items()}))
                self.cut_episodes += 1
                self.cut_transitions += len(body["step"])
        if not episodes:
            return None
        episodes.sort(key=lambda e: int(e[0]["episode_id"][0]))
        return self._to_batch(episodes)

    def _to_batch(self, episodes: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
        body = {k: np.concatenate([e[0][k] for e in episodes]).astype(dt, copy=False)
                for k, dt in _STEP_FIELDS.items()}
        final = {k: np.stack([e[1][k] for e in episodes]).astype(np.float32, copy=False) for k in _FINAL_FIELDS}
        lengths = np.asarray([len(e[0]["step"]) for e in episodes], dtype=np.int64)
        obs, next_obs = body["obs"], final["next_obs"]
        s = self.state_size
        return {
            "observation": obs[:, :s],
            "action": body["action"],
            "achieved_goal": obs[:, self.goal_indices],
            "desired_goal": obs[:, s:],
            "reward": body["reward"],
            "success": body["success"],
            "terminal": body["terminal"],
            "truncation": body["truncation"],
            "qpos": body["qpos"],
            "qvel": body["qvel"],
            "episode_id": body["episode_id"],
            "step": body["step"],
            "final_observation": next_obs[:, :s],
            "final_achieved_goal": next_obs[:, self.goal_indices],
            "final_desired_goal": next_obs[:, s:],
            "final_qpos": final["next_qpos"],
            "final_qvel": final["next_qvel"],
            "episode_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        }
