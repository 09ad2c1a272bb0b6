"""Online CRL training: `Trainer` (init / epoch / evaluate / policy, all jitted) and `run` (the loop the CLI uses).

One epoch is ONE jitted function: unroll `unroll_length` steps of `num_envs` auto-reset envs with the stochastic
policy (lax.scan), insert into the on-device replay, then `sgd_steps` updates in a lax.scan (skipped with
`lax.cond` while the replay holds fewer than `min_replay_size` transitions: prefill epochs are ordinary epochs
without SGD, so every transition from the first step is returned). The unroll's transitions [unroll_length,
num_envs] are returned too, so a collector can record them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from crl.agent import AgentParams, AgentState, CRLAgent, cpu_compiler_options
from crl.buffer import BufferState, init_buffer, insert, sample
from crl.config import TrainConfig
from crl.envs.base import State
from crl.errors import ConfigError, TrainingDivergedError
from crl.transition import Transition, make_transition


@struct.dataclass
class TrainState:
    """Everything a run carries from epoch to epoch (a pytree: jits, checkpoints)."""

    agent: AgentState
    actor_ema: Any
    """Polyak average of the actor's params (per epoch, coefficient TrainConfig.actor_ema); what evaluates."""
    buffer: BufferState
    env_state: State
    key: jax.Array
    epoch: jax.Array
    env_steps: jax.Array
    sgd_steps: jax.Array


def _finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves))


class Trainer:
    """Jitted online-training functions for one config and env (static; all values live in TrainState)."""

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
        self.agent = CRLAgent(config.agent, self.env.state_size, self.env.action_size, self.env.goal_size)
        self.epoch = jax.jit(self._epoch, compiler_options=cpu_compiler_options())  # see crl.agent
        # jitted: run eagerly, init steps MJX op by op (slow), and its outputs' types differ from the epoch's
        # outputs, which compiles the epoch twice
        self.init = jax.jit(self.init)
        self.evaluate = jax.jit(self._evaluate)
        self.policy = jax.jit(self.agent.policy, static_argnames="deterministic")

    def init(self, key: jax.Array) -> TrainState:
        """Fresh agent, empty replay, reset training envs."""
        k_agent, k_env, k_run = jax.random.split(key, 3)
        e, c = self.env, self.config
        agent = self.agent.init(k_agent)
        return TrainState(
            agent=agent,
            actor_ema=agent.params.actor,
            buffer=init_buffer(c.replay_rows, c.num_envs, e.state_size, e.action_size, e.goal_size),
            env_state=self.train_env.reset(k_env),
            key=k_run,
            epoch=jnp.zeros((), jnp.int32),
            env_steps=jnp.zeros((), jnp.int32),
            sgd_steps=jnp.zeros((), jnp.int32),
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

    def _sgd(self, agent: AgentState, buffer: BufferState, key: jax.Array) -> tuple[AgentState, dict]:
        c = self.config

        def body(st: AgentState, k: jax.Array) -> tuple[AgentState, dict]:
            k_batch, k_update = jax.random.split(k)
            return self.agent.update(st, sample(buffer, k_batch, c.batch_size, c.discount), k_update)

        agent, metrics = jax.lax.scan(body, agent, jax.random.split(key, c.sgd_steps))
        return agent, jax.tree.map(jnp.mean, metrics)

    def _epoch(self, ts: TrainState) -> tuple[TrainState, dict[str, jax.Array], Transition]:
        c, e = self.config, self.env
        key, k_unroll, k_sgd = jax.random.split(ts.key, 3)
        env_state, tr = self.unroll(ts.agent.params, ts.env_state, k_unroll)
        buffer = insert(ts.buffer, tr, e.state_size, e.goal_indices)
        ready = buffer.num_transitions >= c.min_replay_size
        zeros = jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(self._sgd, ts.agent, buffer, k_sgd)[1])
        agent, metrics = jax.lax.cond(
            ready, self._sgd, lambda a, b, k: (a, zeros), ts.agent, buffer, k_sgd)
        n_done = jnp.sum(tr.terminal + tr.truncation)
        metrics = {
            **metrics,
            "train/success": jnp.mean(tr.success),
            "train/episodes": n_done,
            "train/sgd": ready.astype(jnp.float32),
            "params/finite": _finite(agent.params).astype(jnp.float32),
        }
        if c.actor_ema > 0:
            tau = c.actor_ema * ready.astype(jnp.float32)
            actor_ema = jax.tree.map(lambda e, a: e + tau * (a - e), ts.actor_ema, agent.params.actor)
        else:
            actor_ema = agent.params.actor
        ts = TrainState(
            agent=agent, actor_ema=actor_ema, buffer=buffer, env_state=env_state, key=key, epoch=ts.epoch + 1,
            env_steps=ts.env_steps + c.env_steps_per_epoch,
            sgd_steps=ts.sgd_steps + ready.astype(jnp.int32) * c.sgd_steps,
        )
        return ts, metrics, tr

    @staticmethod
    def eval_params(ts: TrainState) -> AgentParams:
        """The agent params that evaluate and are exported: the live critic with the Polyak-averaged actor."""
        return ts.agent.params.replace(actor=ts.actor_ema)

    def _evaluate(self, ts: TrainState, key: jax.Array) -> dict[str, jax.Array]:
        """One episode per eval env with the deterministic policy; success = reached the goal at any step.

        Goals cycle through the layout's goal cells (env i gets goal cell i mod their number), so every goal cell
        is weighted equally and the estimate does not carry the noise of random goal draws."""
        env, n = self.env, self.config.num_eval_envs
        params = self.eval_params(ts)
        k_reset, k_run = jax.random.split(key)
        keys = jax.random.split(k_reset, n)
        if hasattr(env, "reset_to_goal_cell"):
            state = jax.vmap(env.reset_to_goal_cell)(keys, jnp.arange(n))
        else:  # an env without goal cells: its own goal distribution
            state = jax.vmap(env.reset)(keys)

        def step(carry, k):
            s, alive, last_dist = carry
            a = self.agent.policy(params, s.obs, k, deterministic=True)
            s2 = jax.vmap(env.step)(s, a)
            at_goal = s2.metrics["success"] * alive
            last_dist = jnp.where(alive > 0, s2.metrics["dist"], last_dist)
            return (s2, alive * (1.0 - s2.done), last_dist), at_goal

        init = (state, jnp.ones((n,), jnp.float32), state.metrics["dist"])
        (_, _, final_dist), at_goal = jax.lax.scan(step, init, jax.random.split(k_run, env.episode_length))
        return {
            "eval/success": jnp.mean(jnp.max(at_goal, axis=0)),
            "eval/time_at_goal": jnp.mean(jnp.sum(at_goal, axis=0)),
            "eval/final_dist": jnp.mean(final_dist),
        }


# ---- the online loop ------------------------------------------------------------------------------------------------
EpochHook = Callable[[int, TrainState, dict[str, jax.Array], Transition], None]
# Fields that may change when a run is resumed (they do not change what was learned so far).
RESUMABLE_CHANGES = ("total_env_steps", "eval_every", "checkpoint_every", "num_eval_envs")


def run(
    config: TrainConfig,
    env: Any | None,
    out_dir: str | Path,
    resume: bool = False,
    on_epoch: EpochHook | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Train online into `out_dir` (config.json, metrics.jsonl, checkpoints/, learning_curve.png).

    `on_epoch(epoch_index, train_state, metrics, transitions)` is called after every epoch with device values
    (nothing is copied to host for it). Returns the last log record. Raises TrainingDivergedError on NaN/Inf
    (the last good checkpoint stays), ConfigError for an occupied `out_dir` without `resume` or a resume with a
    different config.
    """
    from crl import checkpoint, code_version
    from crl.metrics import all_finite, append_jsonl, plot_learning_curve, read_jsonl, to_host

    out = Path(out_dir)
    trainer = Trainer(config, env)
    config = trainer.config
    mngr = checkpoint.manager(out)
    metrics_path = out / "metrics.jsonl"
    if resume and mngr.latest_step() is not None:
        _check_resumable(checkpoint.read_config(mngr), config)
        ts = checkpoint.restore(mngr, trainer)
        start = int(ts.epoch)
        kept = [r for r in read_jsonl(metrics_path) if r["epoch"] <= start]
        metrics_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    elif mngr.latest_step() is not None or (metrics_path.exists() and not resume):
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    else:
        ts, start = trainer.init(jax.random.PRNGKey(config.seed)), 0
        metrics_path.write_text("")
    (out / "config.json").write_text(json.dumps(
        {"train": config.to_dict(), "env": trainer.env.spec.to_dict(), "code_version": code_version()}, indent=2))

    eval_key = jax.random.PRNGKey(config.seed + 1)
    last: dict[str, float] = {}
    latest_eval: dict[str, float] = {}
    with _progress(progress, config.num_epochs, start) as bar:
        t_prev = time.perf_counter()
        for epoch in range(start, config.num_epochs):
            new_ts, metrics, transitions = trainer.epoch(ts)
            if on_epoch is not None:
                on_epoch(epoch, new_ts, metrics, transitions)
            host = to_host(metrics)
            if not all_finite(host):
                bad = sorted(k for k, v in host.items() if not math.isfinite(v)) or ["parameters"]
                raise TrainingDivergedError(
                    f"NaN/Inf in {', '.join(bad)} at epoch {epoch + 1}; stopped. Last good checkpoint: "
                    f"epoch {mngr.latest_step()} in {checkpoint.checkpoint_dir(out)} (try lower learning rates)")
            ts = new_ts
            done = epoch + 1
            now = time.perf_counter()
            record = {"epoch": done, "env_steps": int(ts.env_steps), "sgd_steps": int(ts.sgd_steps),
                      "env_steps_per_s": config.env_steps_per_epoch / (now - t_prev), **host}
            t_prev = now
            if done % config.eval_every == 0 or done == config.num_epochs:
                latest_eval = to_host(trainer.evaluate(ts, jax.random.fold_in(eval_key, done)))
                record.update(latest_eval)
                t_prev = time.perf_counter()
            append_jsonl(metrics_path, record)
            last = record
            if done % config.checkpoint_every == 0 or done == config.num_epochs:
                checkpoint.save(mngr, done, ts, config)
                t_prev = time.perf_counter()
            if "eval/success" in record:
                plot_learning_curve(read_jsonl(metrics_path), out / "learning_curve.png",
                                    f"{config.env} depth {config.agent.depth}")
            bar.update(done, record, latest_eval)
    return last


def _check_resumable(stored: TrainConfig, given: TrainConfig) -> None:
    a, b = stored.to_dict(), given.to_dict()
    diff = sorted(k for k in a if k not in RESUMABLE_CHANGES and a[k] != b[k])
    if diff:
        raise ConfigError(
            f"cannot resume with a different config: {', '.join(f'{k}={b[k]!r} (run has {a[k]!r})' for k in diff)};"
            f" only {', '.join(RESUMABLE_CHANGES)} may change")


class _progress:
    """A rich progress bar (env steps/s, latest eval) or nothing."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self.enabled, self.total, self.start = enabled, total, start

    def __enter__(self) -> _progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.p = Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TimeRemainingColumn(),
                              TextColumn("{task.fields[info]}"))
            self.p.__enter__()
            self.task = self.p.add_task("train", total=self.total, completed=self.start, info="compiling...")
        return self

    def update(self, done: int, record: dict[str, float], latest_eval: dict[str, float]) -> None:
        if not self.enabled:
            return
        info = f"{record['env_steps']:,} steps  {record['env_steps_per_s']:,.0f} steps/s"
        if latest_eval:
            info += (f"  eval success {latest_eval['eval/success']:.2f}"
                     f"  time@goal {latest_eval['eval/time_at_goal']:.0f}")
        self.p.update(self.task, completed=done, info=info)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.p.__exit__(*exc)
