"""Episode assembly from [steps, num_envs] transition blocks: boundaries, finals, carry-over, save/restore."""

from __future__ import annotations

import numpy as np

from crl.pipelines.episodes import EpisodeAssembler
from crl.transition import Transition

STATE, GOAL, A, NQ = 3, 2, 2, 2


def _block(t0: int, steps: int, num_envs: int, lengths: list[int]) -> Transition:
    """Synthetic stream: env slot i runs episodes of length lengths[i]; obs encodes (slot, global step)."""
    t = np.arange(t0, t0 + steps)[:, None] + np.zeros((1, num_envs), dtype=np.int64)
    slot = np.zeros((steps, 1), dtype=np.int64) + np.arange(num_envs)[None]
    length = np.asarray(lengths)[None]
    step = t % length
    ep = slot + num_envs * (t // length)
    obs = np.stack([slot, t, step, 100 + slot, 200 + t], -1).astype(np.float32)
    next_obs = np.stack([slot, t + 1, step + 1, 100 + slot, 200 + t + 1], -1).astype(np.float32)
    end = step == length - 1
    z = np.zeros((steps, num_envs), np.float32)
    return Transition(
        obs=obs, action=np.stack([t, slot], -1).astype(np.float32), reward=z, terminal=z.astype(bool),
        truncation=end, success=z.astype(bool), next_obs=next_obs, qpos=obs[..., :NQ], qvel=obs[..., :NQ],
        next_qpos=next_obs[..., :NQ], next_qvel=next_obs[..., :NQ], episode_id=ep, step=step,
    )


def test_episodes_span_blocks_and_keep_final_state() -> None:
    asm = EpisodeAssembler(num_envs=2, state_size=STATE, goal_indices=(0, 1))
    out1 = asm.add(_block(0, 4, 2, [3, 5]))  # slot 0 finishes one episode (steps 0..2)
    assert out1 is not None and len(out1["episode_offsets"]) == 2
    assert out1["observation"].shape == (3, STATE) and out1["desired_goal"].shape == (3, GOAL)
    out2 = asm.add(_block(4, 4, 2, [3, 5]))  # slot 0 ends at t=5, slot 1 at t=4
    lengths = np.diff(out2["episode_offsets"])
    assert sorted(lengths.tolist()) == [3, 5]
    for e in range(len(lengths)):
        rows = slice(out2["episode_offsets"][e], out2["episode_offsets"][e + 1])
        assert len(set(out2["episode_id"][rows].tolist())) == 1
        np.testing.assert_array_equal(out2["step"][rows], np.arange(lengths[e]))
        # the final state is the step after the last transition, of the same slot
        last_t = out2["observation"][rows][-1, 1]
        assert out2["final_observation"][e, 1] == last_t + 1
        assert out2["final_observation"][e, 0] == out2["observation"][rows][0, 0]
    assert asm.pending_transitions() == 2 + 3  # slot 0: t=6,7; slot 1: t=5,6,7


def test_state_dict_round_trip_continues_identically() -> None:
    a = EpisodeAssembler(2, STATE, (0, 1))
    a.add(_block(0, 4, 2, [3, 5]))
    b = EpisodeAssembler(2, STATE, (0, 1))
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    nxt = _block(4, 6, 2, [3, 5])
    out_a, out_b = a.add(nxt), b.add(nxt)
    assert out_a.keys() == out_b.keys()
    for k in out_a:
        np.testing.assert_array_equal(out_a[k], out_b[k])


def test_last_block_cuts_running_episodes_as_truncated() -> None:
    asm = EpisodeAssembler(2, STATE, (0, 1))
    first = asm.add(_block(0, 4, 2, [3, 5]))
    out = asm.add(_block(4, 4, 2, [3, 5]), last=True)
    assert asm.pending_transitions() == 0
    assert len(first["step"]) + len(out["step"]) == 2 * 8  # every step of both slots is recorded
    assert (asm.cut_episodes, asm.cut_transitions) == (2, 2 + 3)
    offsets = out["episode_offsets"]
    for e in range(len(offsets) - 1):
        rows = slice(offsets[e], offsets[e + 1])
        assert out["truncation"][rows][-1] and not out["truncation"][rows][:-1].any()
        assert not out["terminal"][rows].any()
        np.testing.assert_array_equal(out["step"][rows], np.arange(offsets[e + 1] - offsets[e]))
        assert out["final_observation"][e, 1] == out["observation"][rows][-1, 1] + 1  # the step after the cut
    # the cut tails end at the block's last step (t=7) and start where their slot's last episode ended
    cut = [e for e in range(len(offsets) - 1) if out["observation"][offsets[e + 1] - 1, 1] == 7]
    assert sorted(int(offsets[e + 1] - offsets[e]) for e in cut) == [2, 3]
