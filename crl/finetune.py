"""Online fine-tuning of any run's learner (offline, online, fine-tune, or a collector's), optionally mixing a dataset
into every batch (RLPD's symmetric sampling: a fraction `offline_ratio` of each batch from the dataset, the rest from
the online replay).

It is the online trainer with three hooks changed: the learner comes from the source run (networks, optimiser
states, evaluated actor), `sgd_data` adds the current dataset window, `sample_batch` splits the batch between the
two sources, and the BC weight may decay to 0 over `bc_decay_steps` SGD steps. The replay starts empty.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from crl.buffer import sample
from crl.config import TrainConfig
from crl.errors import ConfigError
from crl.learner import LearnerState
from crl.loop import eval_key
from crl.policies import check_fits
from crl.relabel import Batch
from crl.train import OnlineRunner, Trainer, TrainState

SOURCE_FIELDS = ("depth", "actor_depth", "width", "repr_dim", "layer_norm", "residual", "activation", "energy",
                 "scan_blocks")
"""AgentConfig fields a fine-tune takes from its source run: they fix the networks' shapes and what the critic
computes. The other agent fields (learning rates, loss coefficients, ...) are the fine-tune config's own."""


@dataclass(frozen=True)
class FinetuneConfig(TrainConfig):
    """Online training that starts from another run's learner; the online fields mean what they mean online."""

    init_from: str = ""
    """The source run folder (any kind of run, or a collector's dataset version folder)."""
    dataset: str = ""
    """Dataset (or split) mixed into every SGD batch ('' = online replay only)."""
    offline_ratio: float = -1.0
    """Fraction of each batch from `dataset` (RLPD: 0.5, the default when a dataset is given; -1 = that default)."""
    bc_decay_steps: int = 0
    """Decay bc_alpha linearly to 0 over this many SGD steps of the fine-tune (0 = constant)."""
    window: int = 0
    """Device window of the dataset in transitions (0 = the whole dataset)."""

    @property
    def resolved_offline_ratio(self) -> float:
        """The fraction of each batch drawn from the dataset."""
        if not self.dataset:
            return 0.0
        return 0.5 if self.offline_ratio < 0 else self.offline_ratio

    def validate(self, episode_length: int | None = None) -> FinetuneConfig:
        """TrainConfig's checks plus the fine-tune fields'; returns self."""
        super().validate(episode_length)
        if not self.init_from:
            raise ConfigError("no source run: pass --from RUN_DIR (an offline, online or finetune run folder)")
        r = self.resolved_offline_ratio
        if self.dataset and not 0.0 <= r <= 1.0:
            raise ConfigError(f"offline_ratio={self.offline_ratio} must be in [0, 1] (RLPD: 0.5)")
        if self.offline_ratio >= 0 and not self.dataset:
            raise ConfigError("--offline-ratio needs --dataset (the data to mix in)")
        if self.bc_decay_steps < 0:
            raise ConfigError(f"bc_decay_steps={self.bc_decay_steps} must be >= 0")
        return self


class FinetuneTrainer(Trainer):
    """The online Trainer over a source learner, with dataset batches mixed in."""

    def __init__(self, config: FinetuneConfig, env: Any, source: LearnerState, sampler: Any = None) -> None:
        super().__init__(config, env)
        self.source = source
        self.window_sample = sampler
        b = config.learner.batch_size
        self.n_offline = int(round(config.resolved_offline_ratio * b)) if sampler is not None else 0
        if sampler is not None and not 0 < self.n_offline < b and config.resolved_offline_ratio not in (0.0, 1.0):
            raise ConfigError(f"offline_ratio {config.resolved_offline_ratio} of batch {b} leaves a source empty")

    def init(self, key: jax.Array, learner: LearnerState | None = None) -> TrainState:
        """The source learner (its key replaced by one from this run's seed), an empty replay, reset envs."""
        src = self.source.replace(key=jax.random.fold_in(key, 7), sgd_steps=jnp.zeros((), jnp.int32))
        return super().init(key, src)

    def sgd_data(self, buffer: Any, extra: Any) -> Any:
        return buffer if extra is None else (buffer, extra)

    def sample_batch(self, data: Any, key: jax.Array) -> Batch:
        """`n_offline` rows from the dataset window, the rest from the replay (one batch: shared negatives)."""
        if not isinstance(data, tuple):
            return super().sample_batch(data, key)
        buffer, window = data
        lc = self.config.learner
        if self.n_offline >= lc.batch_size:
            return self.window_sample(window, key, lc.batch_size)
        k_on, k_off = jax.random.split(key)
        if self.n_offline == 0:
            return super().sample_batch(buffer, k_on)
        online = sample(buffer, k_on, lc.batch_size - self.n_offline, lc.discount, self.learner.critic_goals,
                        self.learner.actor_goals, self.env.goal_indices)
        offline = self.window_sample(window, k_off, self.n_offline)
        return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), offline, online)

    def bc_alpha(self, ts: TrainState) -> jax.Array | None:
        c = self.config
        if c.learner.bc_alpha <= 0 or c.bc_decay_steps == 0:
            return None
        frac = jnp.clip(1.0 - ts.learner.sgd_steps.astype(jnp.float32) / c.bc_decay_steps, 0.0, 1.0)
        return jnp.float32(c.learner.bc_alpha) * frac


class FinetuneRunner(OnlineRunner):
    """A fine-tune run for crl.loop.drive: online epochs of the FinetuneTrainer, with a dataset window each."""

    kind = "finetune"

    def __init__(self, config: FinetuneConfig, store: Any = None) -> None:
        from crl.checkpoint import load_agent
        from crl.envs import task_env_from_spec

        src = load_agent(config.init_from)
        networks = {name: getattr(src.agent.config, name) for name in SOURCE_FIELDS}
        lc = dataclasses.replace(config.learner, agent=dataclasses.replace(config.agent, **networks))
        overrides = config.env_kwargs()
        env = task_env_from_spec(src.env_spec, **overrides) if not config.env else None
        config = dataclasses.replace(config, learner=lc, env=config.env or src.env_spec["name"])
        self.source = src
        self.cursor = None
        sampler = None
        if config.dataset:
            from crl.datasets import DatasetStore
            from crl.datasets.loader import WindowStream, sample_window
            from crl.offline import WindowCursor

            store = store if store is not None else DatasetStore()
            reader = store.open(config.dataset)
            check_fits(f"dataset {config.dataset}", reader.env_spec, src.env_spec,
                       "mix in a dataset of the run's env")
            self.dataset_hash = store.manifest(config.dataset).get("content_hash")
            stream = WindowStream(reader, window_rows=config.window or None, seed=config.seed)
            self.cursor = WindowCursor(stream)
            lcfg = config.learner
            critic_goals, actor_goals = lcfg.critic_mixture(), lcfg.actor_mixture()

            def sampler(window: Any, key: jax.Array, n: int) -> Batch:
                return sample_window(window, key, n, lcfg.discount, critic_goals, actor_goals)

        trainer = FinetuneTrainer(config, env, src.learner_state, sampler)
        super().__init__(config, trainer=trainer)

    def epoch(self, state: TrainState, index: int) -> tuple[TrainState, dict[str, jax.Array], Any]:
        window = self.cursor.window_for(index) if self.cursor is not None else None
        return self.trainer.epoch(state, window)

    def initial_eval_key(self) -> jax.Array:
        """The key of the source run's final evaluation (the driver's scheme: fold_in(PRNGKey(seed + 1), epoch)),
        so that the evaluation before any update reproduces it."""
        src_seed = int(self.source.config.get("seed", 0))
        return eval_key(src_seed, self.source.step)

    def extra_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"init_from": {"run": str(self.source.run_dir), "kind": self.source.kind,
                                             "step": self.source.step}}
        if self.config.dataset:
            out["dataset"] = {"id": self.config.dataset, "content_hash": self.dataset_hash}
        return out


def run_finetune(config: FinetuneConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
                 store: Any = None) -> dict[str, float]:
    """Fine-tune into `out_dir` with the shared driver; the first record (epoch 0) is the evaluation before any
    update."""
    from crl.loop import drive

    runner = FinetuneRunner(config, store)
    return drive(runner, out_dir, resume, progress=progress,
                 title=f"finetune {runner.config.env} depth {runner.config.agent.depth}")
