"""Wrappers that keep the functional env contract: `AutoReset` for batched rollouts."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from crl.envs.base import State
from crl.envs.maze_env import MazeEnv


class AutoReset:
    """`num_envs` copies of `env`, with finished slots reset inside `step`.

    `reset(key)` returns a State with a leading [num_envs] axis; slot i starts episode id i, and every reset of a
    slot adds num_envs (i, i + num_envs, i + 2 num_envs, ...), so ids never repeat. `step(state, actions)` steps
    every slot; where `done`, the slot is reset with a key split from its `state.rng`: the returned state keeps
    that step's reward / done / truncation / metrics but carries the new episode's obs, goal and physics, and
    `info['final_obs' | 'final_qpos' | 'final_qvel']` hold the pre-reset s_{t+1} (equal to the state's own when
    not done).
    """

    def __init__(self, env: MazeEnv, num_envs: int):
        self.env = env
        self.num_envs = int(num_envs)
        self.spec = env.spec
        for attr in ("observation_size", "state_size", "goal_size", "action_size", "goal_indices", "episode_length"):
            setattr(self, attr, getattr(env, attr))

    def __getattr__(self, name: str):
        """Everything else (maze, family, config, mj_model, reset_to, ...) comes from the wrapped env."""
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self, key: jax.Array) -> State:
        """Batched reset; episode ids 0..num_envs-1."""
        state = jax.vmap(self.env.reset)(jax.random.split(key, self.num_envs))
        return state.replace(
            episode_id=jnp.arange(self.num_envs, dtype=jnp.int32),
            info=self._final_info(state),
        )

    @staticmethod
    def _final_info(state: State) -> dict[str, jax.Array]:
        return {"final_obs": state.obs, "final_qpos": state.data.qpos, "final_qvel": state.data.qvel}

    def step(self, state: State, actions: jax.Array) -> State:
        """Step all slots, resetting the finished ones (see class docstring)."""
        inner = state.replace(info={})
        after = jax.vmap(self.env.step)(inner, actions)
        keys = jax.vmap(jax.random.split)(after.rng)  # [n, 2, key]
        fresh = jax.vmap(self.env.reset)(keys[:, 0])
        done = after.done > 0

        def pick(new: jax.Array, old: jax.Array) -> jax.Array:
            mask = done.reshape(done.shape + (1,) * (old.ndim - 1))
            return jnp.where(mask, new, old)

        merged_data = jax.tree.map(pick, fresh.data, after.data)
        return after.replace(
            data=merged_data,
            obs=pick(fresh.obs, after.obs),
            goal=pick(fresh.goal, after.goal),
            step=jnp.where(done, 0, after.step),
            episode_id=jnp.where(done, after.episode_id + self.num_envs, after.episode_id),
            rng=pick(keys[:, 1], after.rng),
            info=self._final_info(after),
        )
