"""Online CRL training: `Trainer` (init / epoch / evaluate / policy, all jitted) and `run` (the loop the CLI uses).

One epoch is ONE jitted function: unroll `unroll_length` steps of `num_envs` auto-reset envs with the stochastic
policy (lax.scan), insert into the on-device replay, then `sgd_steps` updates in a lax.scan (skipped with
`lax.cond` while the replay holds fewer than `min_replay_size` transitions: prefill epochs are ordinary epochs
without SGD, so every transition from the first step is returned). The unroll's transitions [unroll_length,
num_envs] are returned too, so a collector can record them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from crl.agent import AgentParams, AgentState
from crl.backend import cpu_compiler_options
from crl.buffer import BufferState, init_buffer, insert, sample
from crl.config import TrainConfig
from crl.envs.base import State
from crl.errors import ConfigError
from crl.goal_rollouts import evaluate_goals, goal_means
from crl.learner import Learner, LearnerState, finite
from crl.relabel import Batch
from crl.transition import Transition, make_transition


@struct.dataclass
class TrainState:
    """Everything an online run carries from epoch to epoch: the learner and what feeds it (a pytree)."""

    learner: LearnerState
    buffer: BufferState
    env_state: State
    epoch: jax.Array
    env_steps: jax.Array

    @property
    def agent(self) -> AgentState:
        """The learner's agent state."""
        return self.learner.agent

    @property
    def sgd_steps(self) -> jax.Array:
        """SGD steps taken so far."""
        return self.learner.sgd_steps


class Trainer:
    """Jitted online-training functions for one config and env (static; all values live in TrainState).

    An epoch = unroll the training envs, insert into the replay, then the learner's SGD scan on batches from
    `sample_batch(data, key)`: the replay alone here; crl.finetune mixes in a dataset window through the same hook.
    """

    def __init__(self, config: TrainConfig, env: Any | None = None) -> None:
        from crl.envs import make
        from crl.envs.wrappers import AutoReset

        self.env = env if env is not None else make(config.env, **config.env_kwargs())
        self.config = config.validate(self.env.episode_length)
        train_env = self.env
        if config.train_env_overrides:
            if not hasattr(self.env, "with_config"):
                raise ConfigError(f"train_env_overrides={config.train_env_overrides} need an env with with_config(); "
                                  f"{type(self.env).__name__} has none: use train_env_overrides={{}}")
            train_env = self.env.with_config(**config.train_env_overrides)
        self.train_env = AutoReset(train_env, config.num_envs)
        self.learner = Learner(config.learner, self.env.state_size, self.env.action_size, self.env.goal_size)
        self.agent = self.learner.agent
        self.epoch = jax.jit(self._epoch, compiler_options=cpu_compiler_options())  # see crl.agent
        # jitted: run eagerly, init steps MJX op by op (slow), and its outputs' types differ from the epoch's
        # outputs, which compiles the epoch twice
        self.init = jax.jit(self.init)
        self.evaluate = jax.jit(self._evaluate)
        self.policy = jax.jit(self.agent.policy, static_argnames="deterministic")

    def init(self, key: jax.Array, learner: LearnerState | None = None) -> TrainState:
        """Fresh (or given) learner, empty replay, reset training envs."""
        k_agent, k_env, k_run = jax.random.split(key, 3)
        e, c = self.env, self.config
        if learner is None:
            learner = self.learner.init(k_agent)
            learner = learner.replace(key=k_run)
        return TrainState(
            learner=learner,
            buffer=init_buffer(c.replay_rows, c.num_envs, e.state_size, e.action_size, e.goal_size),
            env_state=self.train_env.reset(k_env),
            epoch=jnp.zeros((), jnp.int32),
            env_steps=jnp.zeros((), jnp.int32),
        )

    def metric_names(self) -> list[str]:
        """Keys of the dict `epoch` returns."""
        ts = jax.eval_shape(self.init, jax.random.PRNGKey(0))
        return sorted(jax.eval_shape(self._epoch, ts)[1])

    def unroll(
        self, params: AgentParams, env_state: State, key: jax.Array
    ) -> tuple[State, Transition]:
        """`unroll_length` steps of the stochastic policy in the training envs -> transitions [U, num_envs]."""

        def step(state: State, k: jax.Array) -> tuple[State, Transition]:
            action = self.agent.policy(params, state.obs, k, deterministic=False)
            nxt = self.train_env.step(state, action)
            return nxt, make_transition(state, action, nxt)

        return jax.lax.scan(step, env_state, jax.random.split(key, self.config.unroll_length))

    def sample_batch(self, data: Any, key: jax.Array) -> Batch:
        """An SGD batch from the online replay (`data` = the BufferState), relabelled by the shared law."""
        lc = self.config.learner
        return sample(data, key, lc.batch_size, lc.discount, self.learner.critic_goals, self.learner.actor_goals,
                      self.env.goal_indices)

    def sgd_data(self, buffer: BufferState, extra: Any) -> Any:
        """What `sample_batch` draws from (the replay; fine-tuning adds its dataset window)."""
        return buffer

    def bc_alpha(self, ts: TrainState) -> jax.Array | None:
        """The BC weight of this epoch's updates (None = the learner config's)."""
        return None

    def _epoch(self, ts: TrainState, extra: Any = None) -> tuple[TrainState, dict[str, jax.Array], Transition]:
        c, e = self.config, self.env
        key, k_unroll, k_sgd = jax.random.split(ts.learner.key, 3)
        env_state, tr = self.unroll(ts.learner.agent.params, ts.env_state, k_unroll)
        buffer = insert(ts.buffer, tr, e.state_size, e.goal_indices)
        ready = buffer.num_transitions >= c.min_replay_size
        data = self.sgd_data(buffer, extra)
        bc = self.bc_alpha(ts)

        def train(agent: AgentState, data: Any, k: jax.Array) -> tuple[AgentState, dict]:
            return self.learner.sgd(agent, data, self.sample_batch, k, c.learner.sgd_steps, bc)

        zeros = jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(train, ts.learner.agent, data, k_sgd)[1])
        agent, metrics = jax.lax.cond(ready, train, lambda a, d, k: (a, zeros), ts.learner.agent, data, k_sgd)
        n_done = jnp.sum(tr.terminal + tr.truncation)
        metrics = {
            **metrics,
            "train/success": jnp.mean(tr.success),
            "train/episodes": n_done,
            "train/sgd": ready.astype(jnp.float32),
            "params/finite": finite(agent.params).astype(jnp.float32),
        }
        ts = TrainState(
            learner=self.learner.after_epoch(ts.learner, agent, key, ready), buffer=buffer, env_state=env_state,
            epoch=ts.epoch + 1, env_steps=ts.env_steps + c.env_steps_per_epoch,
        )
        return ts, metrics, tr

    @staticmethod
    def eval_params(ts: TrainState) -> AgentParams:
        """The agent params that evaluate and are exported: the live critic with the Polyak-averaged actor."""
        return Learner.eval_params(ts.learner)

    def _evaluate(self, ts: TrainState, key: jax.Array) -> dict[str, jax.Array]:
        """The env's own task with the deterministic evaluated actor (crl.goal_rollouts.evaluate_goals)."""
        return goal_means(evaluate_goals(self.env, self.learner.act(ts.learner), key, self.config.num_eval_envs))


# ---- the online run ---------------------------------------------------------------------------------------------
EpochHook = Callable[[int, TrainState, dict[str, jax.Array], Transition], None]
# Fields that may change when a run is resumed (they do not change what was learned so far).
RESUMABLE_CHANGES = ("total_env_steps", "eval_every", "checkpoint_every", "num_eval_envs", "stop_when_solved")
# Fields only the driver reads (never a compiled program): runs that differ only in these can share one Trainer, and
# with it its traced and compiled programs (a seed sweep in one process compiles once).
RUN_ONLY_FIELDS = ("seed", "total_env_steps", "eval_every", "checkpoint_every", "stop_when_solved")


class OnlineRunner:
    """An online run for crl.loop.drive: epochs of the Trainer, counted in env steps."""

    kind = "online"
    resumable_changes = RESUMABLE_CHANGES
    rate_name, x_axis = "env_steps_per_s", "env_steps"

    def __init__(self, config: TrainConfig, env: Any | None = None, trainer: Trainer | None = None) -> None:
        """A run of `config`, on `trainer` when given: it may differ from the trainer's config in RUN_ONLY_FIELDS
        only (ConfigError otherwise), so several runs reuse one trainer's compiled programs."""
        if trainer is None:
            trainer = Trainer(config, env)
            config = trainer.config
        elif config is not trainer.config:
            run_fields = {name: getattr(config, name) for name in RUN_ONLY_FIELDS}
            if trainer.config.replace(**run_fields) != config:
                raise ConfigError(f"a run on an existing trainer may change only {', '.join(RUN_ONLY_FIELDS)}; "
                                  "build a new trainer for other settings")
            config = config.validate(trainer.env.episode_length)
        self.trainer = trainer
        self.config = config
        self.env_spec = self.trainer.env.spec.to_dict() if hasattr(self.trainer.env, "spec") else None
        self.num_epochs = self.config.num_epochs
        self.rate_units = self.config.env_steps_per_epoch

    def init_state(self) -> TrainState:
        return self.trainer.init(jax.random.PRNGKey(self.config.seed))

    def abstract_state(self) -> Any:
        return jax.eval_shape(self.trainer.init, jax.random.PRNGKey(0))

    def epoch(self, state: TrainState, index: int) -> tuple[TrainState, dict[str, jax.Array], Transition]:
        return self.trainer.epoch(state)

    def evaluate(self, state: TrainState, key: jax.Array) -> dict[str, jax.Array]:
        return self.trainer.evaluate(state, key)

    def counters(self, state: TrainState) -> dict[str, int]:
        return {"env_steps": int(state.env_steps), "sgd_steps": int(state.sgd_steps)}

    def extra_config(self) -> dict[str, Any]:
        return {}


def run(
    config: TrainConfig,
    env: Any | None,
    out_dir: str | Path,
    resume: bool = False,
    on_epoch: EpochHook | None = None,
    progress: bool = True,
    trainer: Trainer | None = None,
) -> dict[str, float]:
    """Train online into `out_dir` (config.json, metrics.jsonl, checkpoints/, learning_curve.png) with the shared
    driver (crl.loop.drive): see there for resume, divergence and early-stop behaviour. `trainer`: an existing
    Trainer to run on (its compiled programs are reused; `config` may differ from its config in RUN_ONLY_FIELDS)."""
    from crl.loop import drive

    runner = OnlineRunner(config, env, trainer)
    return drive(runner, out_dir, resume, on_epoch, progress,
                 title=f"{runner.config.env} depth {runner.config.agent.depth}")
