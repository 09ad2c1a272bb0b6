"""Offline deep CRL: the learner trained on relabelled batches from a dataset (or a stitching split), no env steps.

An epoch = `sgd_steps` SGD steps in one jitted scan, each batch drawn on the device from the current dataset
window (crl.datasets.loader); the next window (datasets larger than `window` transitions) is read from Zarr on a
background thread meanwhile. Evaluation runs in the dataset's env rebuilt from its manifest (layout text included)
on the env's own task and, for a split, on the split's stitching tasks per BFS distance.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from crl.agent import cpu_compiler_options
from crl.config import LearnerConfig, NestedConfig
from crl.errors import ConfigError
from crl.learner import Learner, LearnerState, finite

BC_PRESETS = {"pointmaze": 0.03, "antmaze": 0.1}
"""OGBench's CRL actor BC weights (impls/hyperparameters.sh: pointmaze alpha 0.03, antmaze 0.1)."""


@dataclass(frozen=True)
class OfflineConfig(NestedConfig):
    """One offline training run: a learner on one dataset version. An epoch = `learner.sgd_steps` SGD steps."""

    dataset: str = ""
    """Dataset (or split) id `namespace/name-vN` in the dataset root."""
    total_sgd_steps: int = 10_000
    """Training budget in SGD steps (rounded up to whole epochs)."""
    window: int = 0
    """Device window in transitions (0 = the whole dataset, loaded once); larger datasets stream window by window."""
    eval_env: str = ""
    """Env to evaluate in ('' = the dataset's own env, rebuilt from its manifest; 'none' = no evaluation)."""
    episode_length: int | None = None
    """Evaluation episode length (None = the dataset env's)."""
    eval_every: int = 5
    """Evaluate every this many epochs (and at the end)."""
    num_eval_envs: int = 64
    """Evaluation episodes per evaluation (the env's own task; goals cycle through the goal cells)."""
    ogbench_episodes: int = 10
    """On an OGBench dataset (generated or imported): episodes per task of OGBench's 5-task protocol at each
    evaluation (crl.ogbench_tasks; OGBench's tables use 50, its default is 20; `crl-eval goals` runs the final one)."""
    split_episodes_per_pair: int = 1
    """On a split: episodes per (start cell, goal cell) task in the per-distance evaluation (0 = skip it)."""
    checkpoint_every: int = 10
    """Save a checkpoint every this many epochs (and at the end)."""
    seed: int = 0
    """Seed for everything (networks, batches, window order, evaluation)."""
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(sgd_steps=500, batch_size=256,
                                                                         bc_alpha=BC_PRESETS["pointmaze"]))
    """The learner (same networks and critic loss as online). Its actor is DDPG+BC with OGBench's pointmaze weight
    by default: with the online objective (bc_alpha 0) the actor exploits the critic on actions the data never took
    (docs/design.md has the measurement)."""

    @property
    def num_epochs(self) -> int:
        """Epochs needed to reach total_sgd_steps (rounded up)."""
        return -(-self.total_sgd_steps // self.learner.sgd_steps)

    def validate(self) -> OfflineConfig:
        """Raise ConfigError for inconsistent values; returns self."""
        self.learner.validate()
        if not self.dataset:
            raise ConfigError("no dataset: pass --dataset NAMESPACE/NAME-vN (see `crl-data list`)")
        for name in ("total_sgd_steps", "eval_every", "checkpoint_every", "num_eval_envs", "ogbench_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if self.window < 0 or self.split_episodes_per_pair < 0:
            raise ConfigError("window and split_episodes_per_pair must be >= 0")
        return self


class WindowCursor:
    """Epoch i trains on the i-th window of a WindowStream's seeded schedule (whole dataset: the same window every
    epoch); a resumed run picks up at its epoch, so resume reproduces the uninterrupted run's data order."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._windows: Any = None
        self._next = -1

    def window_for(self, index: int) -> Any:
        """The window of epoch `index` (sequential calls stream; a jump restarts the schedule at `index`)."""
        if self._windows is None or index != self._next:
            self._windows = itertools.islice(self.stream.windows(), index, None)
        self._next = index + 1
        return next(self._windows)[0]


@struct.dataclass
class OfflineState:
    """An offline run's state: the learner alone (the data is re-read deterministically from the seed)."""

    learner: LearnerState
    epoch: jax.Array


class OfflineRunner:
    """An offline run for crl.loop.drive: epochs of SGD on dataset windows, counted in SGD steps."""

    kind = "offline"
    resumable_changes = ("total_sgd_steps", "eval_every", "checkpoint_every", "num_eval_envs", "ogbench_episodes")
    rate_name, x_axis = "sgd_steps_per_s", "sgd_steps"

    def __init__(self, config: OfflineConfig, store: Any = None, env: Any | None = None) -> None:
        from crl.datasets import DatasetStore
        from crl.datasets.loader import WindowStream, window_sampler

        self.config = config.validate()
        self.store = store if store is not None else DatasetStore()
        self.reader = self.store.open(config.dataset)
        self.manifest = self.store.manifest(config.dataset)
        spec = self.reader.env_spec
        self.sizes = (int(spec["state_size"]), int(spec["action_size"]), int(spec["goal_size"]))
        self.ogbench = self._ogbench_tasks(spec) if env is None else None
        self.env = env if env is not None or self.ogbench is not None else self._eval_env(spec)
        self.env_spec = self.env.spec.to_dict() if self.env is not None else dict(spec)
        self.learner = Learner(config.learner, *self.sizes)
        lc = config.learner
        total = int(self.reader.num_transitions)
        if lc.batch_size > total:
            raise ConfigError(f"batch_size={lc.batch_size} is larger than the dataset ({total} transitions); use "
                              f"--batch-size <= {total}")
        self.stream = WindowStream(self.reader, window_rows=config.window or None, seed=config.seed,
                                   batch_size=lc.batch_size)
        self.sample = window_sampler(lc.batch_size, lc.discount, self.learner.critic_goals, self.learner.actor_goals,
                                     transitions=lc.agent.critic_loss != "mc")
        self.num_epochs = config.num_epochs
        self.rate_units = lc.sgd_steps
        self.cursor = WindowCursor(self.stream)
        self.tasks = self._split_tasks()
        self._epoch = jax.jit(self._epoch_fn, compiler_options=cpu_compiler_options())
        self._evaluate = jax.jit(self._evaluate_fn) if self.env is not None else None
        self._policy = jax.jit(lambda params, obs: self.learner.agent.policy(
            params, obs, jax.random.PRNGKey(0), deterministic=True))

    # ---- env and tasks -----------------------------------------------------------------------------------------
    def _eval_env(self, spec: dict[str, Any]) -> Any:
        from crl.envs import make, task_env_from_spec

        c = self.config
        overrides = {} if c.episode_length is None else {"episode_length": c.episode_length}
        if c.eval_env == "none":
            return None
        if c.eval_env:
            env = make(c.eval_env, **overrides)
            have = (env.state_size, env.action_size, env.goal_size)
            if have != self.sizes:
                raise ConfigError(f"--eval-env {c.eval_env} has state/action/goal sizes {have}, the dataset "
                                  f"{c.dataset} {self.sizes}; choose an env of the dataset's sizes")
            return env
        try:
            return task_env_from_spec(spec, **overrides)  # one goal per episode, whatever the data's schedule
        except ConfigError as e:
            import warnings

            warnings.warn(f"{c.dataset}: training without evaluation ({e})", stacklevel=2)
            return None

    def _ogbench_tasks(self, spec: dict[str, Any]) -> Any:
        """OGBench's 5-task evaluator when the data come from OGBench (generated or imported) and no other env is
        asked for; None otherwise. Without the `ogbench` extra: a warning and no evaluation."""
        c = self.config
        if c.eval_env or spec.get("family") != "ogbench":
            return None
        from crl.errors import CrlError
        from crl.ogbench_tasks import TaskEvaluator

        try:
            return TaskEvaluator(str(spec["name"]), list(spec.get("goal_indices") or [0, 1]), c.ogbench_episodes)
        except CrlError as e:
            import warnings

            warnings.warn(f"{c.dataset}: training without OGBench's evaluation ({e})", stacklevel=2)
            return None

    def _split_tasks(self) -> dict[str, Any] | None:
        if self.manifest.get("kind") != "split" or self.env is None or self.config.split_episodes_per_pair == 0:
            return None
        from crl.datasets.stitch_split import load_tasks

        return load_tasks(self.store, self.config.dataset)

    # ---- the runner protocol -----------------------------------------------------------------------------------
    def init_state(self) -> OfflineState:
        return OfflineState(self.learner.init(jax.random.PRNGKey(self.config.seed)), jnp.zeros((), jnp.int32))

    def abstract_state(self) -> Any:
        return jax.eval_shape(self.init_state)

    def _epoch_fn(self, state: OfflineState, window: Any) -> tuple[OfflineState, dict[str, jax.Array]]:
        ls = state.learner
        key, k_sgd = jax.random.split(ls.key)
        agent, metrics = self.learner.sgd(ls.agent, window, self.sample, k_sgd, self.config.learner.sgd_steps)
        metrics = {**metrics, "params/finite": finite(agent.params).astype(jnp.float32)}
        ls = self.learner.after_epoch(ls, agent, key, jnp.ones((), bool))
        return OfflineState(ls, state.epoch + 1), metrics

    def epoch(self, state: OfflineState, index: int) -> tuple[OfflineState, dict[str, jax.Array], None]:
        new_state, metrics = self._epoch(state, self.cursor.window_for(index))
        return new_state, metrics, None

    def _evaluate_fn(self, state: OfflineState, key: jax.Array) -> dict[str, jax.Array]:
        from crl.goal_rollouts import evaluate_goals, goal_means

        return goal_means(evaluate_goals(self.env, self.learner.act(state.learner), key, self.config.num_eval_envs))

    def evaluate(self, state: OfflineState, key: jax.Array) -> dict[str, Any] | None:
        if self.ogbench is not None:  # OGBench's protocol in its own gym env (host-side, lockstep copies)
            params = Learner.eval_params(state.learner)
            seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
            return self.ogbench(lambda x: self._policy(params, x), seed)
        if self._evaluate is None:
            return None
        out = dict(self._evaluate(state, key))
        if self.tasks is not None:
            out.update(self.evaluate_split(state, jax.random.fold_in(key, 1)))
        return out

    def evaluate_split(self, state: OfflineState, key: jax.Array) -> dict[str, float]:
        """Success per BFS distance on the split's tasks: eval/success_d<d>, and in-/out-of-distribution means."""
        from crl.goal_rollouts import evaluate_pairs

        t, maze = self.tasks, self.env.maze
        start = np.asarray([maze.cell_to_xy(c) for c in t["start_cell"]], np.float32)
        goal = np.asarray([maze.cell_to_xy(c) for c in t["goal_cell"]], np.float32)
        res = evaluate_pairs(self.env, self.learner.act(state.learner), key, start, goal,
                             self.config.split_episodes_per_pair)
        success = np.asarray(res["success"]).mean(axis=1)
        out = {f"eval/success_d{d}": float(success[t["distance"] == d].mean()) for d in np.unique(t["distance"])}
        for name, mask in (("in", t["in_distribution"]), ("out", ~t["in_distribution"])):
            if mask.any():
                out[f"eval/success_{name}_dist"] = float(success[mask].mean())
        return out

    def counters(self, state: OfflineState) -> dict[str, int]:
        return {"sgd_steps": int(state.learner.sgd_steps)}

    def extra_config(self) -> dict[str, Any]:
        return {"dataset": {"id": self.config.dataset, "content_hash": self.manifest.get("content_hash"),
                            "kind": self.manifest.get("kind", "dataset")}}


def run_offline(
    config: OfflineConfig, out_dir: str | Path, resume: bool = False, progress: bool = True, store: Any = None,
) -> dict[str, float]:
    """Train offline into `out_dir` (config.json with the dataset id and hash, metrics.jsonl, checkpoints/,
    learning_curve.png) with the shared driver (crl.loop.drive)."""
    from crl.loop import drive

    runner = OfflineRunner(config, store)
    return drive(runner, out_dir, resume, progress=progress,
                 title=f"offline {config.dataset} depth {config.agent.depth}")


def learner_grid(config: OfflineConfig, depths: list[int], seeds: list[int]) -> list[tuple[str, OfflineConfig]]:
    """(run folder name, config) for every depth x seed: `d<depth>-s<seed>` (one learner per folder)."""
    return [(f"d{d}-s{s}", dataclasses.replace(config.replace(depth=d), seed=s)) for d in depths for s in seeds]
