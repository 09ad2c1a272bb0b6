"""Where a collector's transitions come from: a CRL agent learning online, or a fixed policy.

A source produces one block of transitions ([unroll_length, num_envs] on the device) per call to `step()`, and
can save / restore everything it needs to continue exactly (a pytree for orbax plus a JSON-able config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax

from crl.policies import PolicySpec, policy_fn
from crl.rollout import make_unroll, with_gaussian_noise
from crl.transition import Transition


class CrlSource:
    """A CRL agent of the collector's depth training online; every transition of every env is a block row."""

    trains = True

    def __init__(self, train_config: Any, env: Any):
        from crl.train import Trainer

        self.trainer = Trainer(train_config, env)
        self.config = self.trainer.config
        self.num_envs = self.config.num_envs
        self.unroll_length = self.config.unroll_length
        self.init = self.trainer.init  # jitted by the Trainer

    def step(self, state: Any) -> tuple[Any, dict[str, jax.Array], Transition]:
        return self.trainer.epoch(state)

    def evaluate(self, state: Any, key: jax.Array) -> dict[str, jax.Array]:
        return self.trainer.evaluate(state, key)

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()


@jax.tree_util.register_dataclass
@dataclass
class RolloutState:
    """Carry of a fixed-policy rollout: the batched env state and the PRNG key."""

    env_state: Any
    key: jax.Array


class PolicySource:
    """A fixed policy (random, oracle, or a frozen checkpoint) rolled out in auto-reset envs."""

    trains = False

    def __init__(self, policy: PolicySpec, env: Any, num_envs: int, unroll_length: int, action_noise: float,
                 deterministic: bool):
        from crl.envs.wrappers import AutoReset

        self.num_envs, self.unroll_length = num_envs, unroll_length
        self.vec_env = AutoReset(env, num_envs)
        self.policy_spec, self.action_noise, self.deterministic = policy, action_noise, deterministic
        fn, _ = policy_fn(policy, env, deterministic)
        self._unroll = make_unroll(self.vec_env, with_gaussian_noise(fn, action_noise), unroll_length)
        self.step = jax.jit(self._step)
        self.init = jax.jit(self._init)

    def _init(self, key: jax.Array) -> RolloutState:
        k_env, k_run = jax.random.split(key)
        return RolloutState(self.vec_env.reset(k_env), k_run)

    def _step(self, state: RolloutState) -> tuple[RolloutState, dict[str, jax.Array], Transition]:
        key, k_unroll = jax.random.split(state.key)
        env_state, tr = self._unroll(state.env_state, k_unroll)
        return RolloutState(env_state, key), {}, tr

    def evaluate(self, state: Any, key: jax.Array) -> dict[str, jax.Array]:
        return {}

    def config_dict(self) -> dict[str, Any]:
        return {"policy": str(self.policy_spec), "action_noise": self.action_noise,
                "deterministic": self.deterministic, "num_envs": self.num_envs, "unroll_length": self.unroll_length}
