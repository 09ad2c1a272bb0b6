"""The collector: roll out a collector of a chosen depth (or a fixed policy) and record every transition.

Every env step is recorded: the budget is rounded up to whole epochs (num_envs x unroll_length steps per worker),
and the episodes still running when it is spent are recorded too, cut there and marked as truncated, so a
dataset's transitions equal the env steps collected.

One worker = one source (a CRL agent training online, or a fixed policy) + one ShardWriter, run by the driver every
learner run uses (crl.loop.drive) as a `CollectRunner`: the driver dispatches jitted epochs, and the runner's
per-epoch hook hands each epoch's transitions to a sink thread (crl.pipelines.sink) that assembles whole episodes
and appends them to the writer, so device compute, device-to-host copies, episode assembly and shard I/O overlap.
Checkpoints, resume and divergence are the driver's; see `CollectRunner` for what a collector adds to them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from crl.errors import ConfigError
from crl.pipelines.collector_checkpoints import PLACES, BucketCheckpoints, checkpoint_root, remote_rel
from crl.pipelines.episodes import EpisodeAssembler
from crl.pipelines.sink import EpisodeSink
from crl.pipelines.sources import CrlSource, PolicySource, PolicySpec


@dataclass(frozen=True)
class CollectConfig:
    """One collection run (all workers together)."""

    env: str = "point_u_maze"
    """Environment name (`crl.envs.make`)."""
    dataset: str = "local/point-u"
    """Target dataset `namespace/name`; the run creates its next version."""
    collector_depth: int = 4
    """Depth of the collector's CRL networks (policy 'crl'); recorded as `collector_depth`."""
    width: int | None = None
    """Width of the collector's networks (None = the training preset's)."""
    policy: str = "crl"
    """'crl' (train online, record everything), 'random', 'oracle' (point mazes), or 'checkpoint:PATH'."""
    deterministic: bool = False
    """Frozen checkpoint policies: act with the mean action instead of sampling."""
    action_noise: float = 0.0
    """Std of Gaussian noise added to fixed-policy actions (OGBench's noisy expert uses 0.2-ish)."""
    goal_schedule: str = "episode"
    """'episode': one goal per episode; 'navigate': a new goal whenever the current one is reached."""
    env_steps: int = 100_000
    """Env steps to collect, all envs and workers together (each worker rounds its share up to whole epochs)."""
    num_envs: int | None = None
    """Parallel envs per worker (None = 64 for the cpu preset, the training preset's otherwise)."""
    unroll_length: int | None = None
    """Steps per env per epoch (None = 50 for the cpu preset, the training preset's otherwise)."""
    episode_length: int | None = None
    """Episode length (None = the training preset's: 250 for 'cpu', 1000 for 'paper')."""
    seed: int = 0
    """Seed of worker 0; worker i uses seed + i."""
    preset: str = "cpu"
    """Training preset for policy 'crl' ('cpu' or 'paper')."""
    train_overrides: dict[str, Any] = field(default_factory=dict)
    """Further TrainConfig overrides for policy 'crl' (e.g. batch_size, sgd_steps)."""
    shard_rows: int = 262_144
    """Rows per shard (shards hold whole episodes, so a shard may be a little shorter)."""
    checkpoint_every: int = 50
    """Epochs between collector checkpoints (resume points)."""
    eval_every: int = 10
    """Epochs between evaluations of a training collector (0 = never)."""
    workers: int = 1
    """Collectors running at once on a Dask cluster (each its own seed and shards)."""
    checkpoints: str = "scratch"
    """Root on object storage: keep resume checkpoints in the local scratch folder only ('scratch'), or also upload
    each one into the staging version ('bucket': a resume on any host continues from it). Where they are kept
    changes nothing recorded."""

    def validate(self) -> CollectConfig:
        PolicySpec.parse(self.policy)
        if self.goal_schedule not in ("episode", "navigate"):
            raise ConfigError(f"--goal-schedule {self.goal_schedule!r} unknown; use 'episode' or 'navigate'")
        for name in ("env_steps", "shard_rows", "checkpoint_every", "workers", "collector_depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')}={getattr(self, name)} must be >= 1")
        if self.checkpoints not in PLACES:
            raise ConfigError(f"--checkpoints {self.checkpoints!r} unknown; use {' or '.join(PLACES)}")
        if self.action_noise < 0:
            raise ConfigError(f"--action-noise {self.action_noise} must be >= 0")
        kind = PolicySpec.parse(self.policy).kind
        if kind != "crl" and (self.train_overrides or self.width is not None):
            given = sorted([*self.train_overrides, *(["width"] if self.width is not None else [])])
            raise ConfigError(f"{', '.join('--' + g.replace('_', '-') for g in given)} set(s) the training "
                              f"collector's networks or SGD; --policy {self.policy} does not train: drop it")
        if kind == "crl" and (self.deterministic or self.action_noise):
            raise ConfigError("--deterministic and --action-noise apply to fixed policies (random, oracle, "
                              "checkpoint:PATH); a 'crl' collector records its own stochastic policy: drop them")
        if self.deterministic and kind != "checkpoint":
            raise ConfigError(f"--deterministic applies to checkpoint policies; --policy {self.policy} has no mean "
                              f"action: drop it")
        return self

    def env_overrides(self) -> dict[str, Any]:
        """Keyword overrides for `crl.envs.make` (episode length, goal schedule)."""
        from crl.config import TrainConfig

        kw: dict[str, Any] = {}
        length = self.episode_length or TrainConfig.preset(self.preset).episode_length
        if length is not None:
            kw["episode_length"] = length
        if self.goal_schedule == "navigate":
            kw["new_goal_on_success"] = True
        return kw


COLLECT_EPOCH_SHAPE: dict[str, tuple[int, int]] = {"cpu": (64, 50)}
"""A collector's default (num_envs, unroll_length) where it differs from the online preset's. The online cpu preset
steps 256 envs per epoch (more data per SGD step, README ## Training); a collector keeps 64 x 50 so that budgets
round up to 3,200-step epochs and its CRL learner keeps 192 SGD steps per 3,200 env steps."""


def epoch_shape(config: CollectConfig) -> tuple[int, int]:
    """(num_envs, unroll_length) of each worker: one epoch records num_envs x unroll_length env steps."""
    from crl.config import TrainConfig

    base = TrainConfig.preset(config.preset)
    num_envs, unroll = COLLECT_EPOCH_SHAPE.get(config.preset, (base.num_envs, base.unroll_length))
    return config.num_envs or num_envs, config.unroll_length or unroll


def worker_budget(config: CollectConfig, env_steps: int) -> int:
    """Env steps one worker with share `env_steps` collects (and records): its share rounded up to whole epochs."""
    num_envs, unroll = epoch_shape(config)
    return -(-env_steps // (num_envs * unroll)) * num_envs * unroll


def build_source(config: CollectConfig, env: Any, seed: int, env_steps: int) -> CrlSource | PolicySource:
    """The transition source of one worker."""
    from crl.config import TrainConfig

    policy = PolicySpec.parse(config.policy)
    base = TrainConfig.preset(config.preset)
    num_envs, unroll = epoch_shape(config)
    if policy.kind != "crl":
        return PolicySource(policy, env, num_envs, unroll, config.action_noise, config.deterministic)
    overrides: dict[str, Any] = dict(config.train_overrides)
    overrides.update(env=env.spec.name, num_envs=num_envs, unroll_length=unroll, total_env_steps=env_steps,
                     seed=seed, depth=config.collector_depth, checkpoint_every=config.checkpoint_every,
                     eval_every=max(config.eval_every, 1), stop_when_solved=0,
                     # the dataset records the training envs: they start where its env spec says, not anywhere
                     train_env_overrides={})
    if config.width is not None:
        overrides["width"] = config.width
    # no need for a replay larger than what this worker collects (the cpu preset keeps a whole run)
    overrides.setdefault("replay_size", min(base.replay_size, max(env_steps, 200_000)))
    train_config = base.replace(**overrides)
    per_epoch = num_envs * unroll
    if "min_replay_size" not in config.train_overrides and train_config.min_replay_size >= env_steps:
        # a short collection still trains: start SGD once a quarter of the budget (>= one batch) is in the replay
        want = max(train_config.learner.batch_size, per_epoch * max(1, (env_steps // per_epoch) // 4))
        train_config = train_config.replace(min_replay_size=want)
    return CrlSource(train_config, env)


def worker_name(index: int) -> str:
    return f"w{index}"


def discard_worker_shards(staging: Any, worker: str, keep_below_seq: int) -> list[str]:
    """Delete a worker's shards with sequence >= keep_below_seq and its incomplete ones (before it restarts)."""
    gone = []
    shards = f"{staging.rel}/shards"
    for name in staging.loc.listdir(shards):
        stem, _, ext = name.rpartition(".")
        if not stem.startswith(f"{worker}-") or ext not in ("zarr", "json"):
            continue
        if int(stem.rsplit("-", 1)[1]) >= keep_below_seq or not staging.loc.exists(f"{shards}/{stem}.json"):
            (staging.loc.remove_tree if ext == "zarr" else staging.loc.remove_file)(f"{shards}/{name}")
            gone.append(name)
    return gone


@dataclass(frozen=True)
class PolicyRunConfig:
    """The run config of a fixed-policy collector (what crl.loop.drive records and checks on resume)."""

    source: dict[str, Any]
    """The source's description (PolicySource.config_dict)."""
    seed: int
    checkpoint_every: int
    eval_every: int = 1
    """Fixed policies are never evaluated (CollectRunner.evaluate returns None)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.source)


class CollectRunner:
    """One collector worker as a run of crl.loop.drive: epochs of its source (a CRL agent training online, or a
    fixed policy), whose per-epoch hook `record` hands every epoch's transitions to the sink (whole episodes into
    the worker's ShardWriter).

    Its checkpoints are a run's checkpoints (kind 'collector': the source's state, its config and env spec) plus the
    named item `pending` (unfinished episodes) and the writer's position in the metadata; before each one the sink
    is drained and the writer flushed, so all finished episodes are in complete shards. A resumed worker deletes
    its shards written after that checkpoint and continues from it; everything is deterministic given the seed, so
    nothing is lost or duplicated."""

    kind = "collector"
    rate_name, x_axis = "env_steps_per_s", "env_steps"
    resumable_changes = ("eval_every",)
    item_names = ("pending",)

    def __init__(self, config: CollectConfig, staging: Any, index: int, env_steps: int,
                 run_dir: str | Path | None = None, progress_every_s: float = 1.0) -> None:
        """Worker `index` with share `env_steps`; `run_dir`: its run folder (default: `checkpoint_root`)."""
        from crl.envs import make

        self.collect = config.validate()
        self.staging, self.index, self.worker = staging, index, worker_name(index)
        self.run_dir = Path(run_dir) if run_dir is not None else checkpoint_root(staging, self.worker)
        env = make(config.env, **config.env_overrides())
        self.source = build_source(config, env, config.seed + index, env_steps)
        self.env_spec = env.spec.to_dict()
        self.rate_units = self.per_epoch = self.source.num_envs * self.source.unroll_length
        self.num_epochs = -(-env_steps // self.per_epoch)
        if self.source.trains:
            self.config: Any = self.source.config
        else:
            self.config = PolicyRunConfig(self.source.config_dict(), config.seed + index, config.checkpoint_every)
        self.mirror = (BucketCheckpoints(staging.loc, remote_rel(staging, self.worker), self.run_dir)
                       if config.checkpoints == "bucket" and not staging.loc.local else None)
        self.assembler = EpisodeAssembler(self.source.num_envs, env.state_size, env.goal_indices)
        self.sink: EpisodeSink | None = None
        self.writer: Any = None
        self.epochs_done = 0
        self.last_eval: dict[str, float] = {}
        self.progress_every_s = progress_every_s
        self._t_start = self._t_report = 0.0
        self._start_epoch = 0

    # ---- Runner
    def init_state(self) -> Any:
        discard_worker_shards(self.staging, self.worker, 0)
        self._open(next_index=0)
        return self.source.init(jax.random.PRNGKey(self.collect.seed + self.index))

    def abstract_state(self) -> Any:
        return jax.eval_shape(self.source.init, jax.random.PRNGKey(0))

    def epoch(self, state: Any, index: int) -> tuple[Any, dict[str, jax.Array], Any]:
        if self.mirror is not None:  # the checkpoint saved after the previous epoch goes to the bucket
            self.mirror.push()
        out = self.source.step(state)
        self.epochs_done = index + 1
        return out

    def evaluate(self, state: Any, key: jax.Array) -> dict[str, Any] | None:
        if not self.source.trains or not self.collect.eval_every:
            return None
        self.last_eval = {k: float(v) for k, v in self.source.evaluate(state, key).items()}
        return self.last_eval

    def counters(self, state: Any) -> dict[str, int]:
        steps = {"env_steps": self.epochs_done * self.per_epoch}
        return {**steps, "sgd_steps": int(state.sgd_steps)} if self.source.trains else steps

    def extra_config(self) -> dict[str, Any]:
        return {"worker": self.worker, "collect": asdict(self.collect)}

    # ---- CheckpointItems
    def checkpoint_items(self, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        assert self.sink is not None
        self.sink.drain()
        self.writer.flush()
        # orbax refuses zero-size arrays: every array gets one leading pad row, dropped on restore
        pending = {k: np.concatenate([np.zeros((1,) + v.shape[1:], v.dtype), v])
                   for k, v in self.assembler.state_dict().items()}
        return {"pending": pending}, {
            "next_seq": self.writer.next_seq, "next_episode_index": self.sink.next_index, "worker": self.worker,
            "cut_episodes": self.assembler.cut_episodes, "cut_transitions": self.assembler.cut_transitions,
            "eval": self.last_eval}

    def resume_items(self, meta: dict[str, Any], items: dict[str, Any]) -> None:
        self.assembler.load_state_dict({k: np.asarray(v)[1:] for k, v in items["pending"].items()})
        # non-zero only when resuming after the final checkpoint (the cut happens with the last epoch)
        self.assembler.cut_episodes = meta.get("cut_episodes", 0)
        self.assembler.cut_transitions = meta.get("cut_transitions", 0)
        self.epochs_done = self._start_epoch = int(meta["epoch"])
        self.last_eval = dict(meta.get("eval", {}))
        discard_worker_shards(self.staging, self.worker, int(meta["next_seq"]))
        self._open(next_index=int(meta["next_episode_index"]))

    # ---- recording
    def _open(self, next_index: int) -> None:
        self.writer = self.staging.writer(self.worker, shard_rows=self.collect.shard_rows)
        self.sink = EpisodeSink(self.assembler, self.writer, self.collect.workers, self.index, next_index)
        self._t_start = time.perf_counter()

    def record(self, index: int, state: Any, metrics: dict[str, jax.Array], transitions: Any) -> None:
        """The per-epoch hook: hand epoch `index`'s transitions to the sink (the last epoch cuts running
        episodes), and write the progress record now and then."""
        assert self.sink is not None
        done = index + 1
        self.sink.put(transitions, last=done == self.num_epochs)
        now = time.perf_counter()
        if now - self._t_report >= self.progress_every_s:
            self._t_report = now
            self.write_progress(done)

    def write_progress(self, done: int) -> None:
        """The worker's progress record (read by the collection's progress bar)."""
        assert self.sink is not None
        elapsed = max(time.perf_counter() - self._t_start, 1e-9)
        _write_progress(self.run_dir / "progress.json", {
            "worker": self.worker, "env_steps": done * self.per_epoch, "target": self.num_epochs * self.per_epoch,
            "episodes": self.sink.episodes, "successes": self.sink.successes, "shards": self.writer.next_seq,
            "steps_per_s": (done - self._start_epoch) * self.per_epoch / elapsed, "eval": self.last_eval})

    def summary(self) -> dict[str, Any]:
        """What a worker returns: env steps, episodes, cut episodes, shards, its run folder, last eval, source."""
        assert self.sink is not None
        return {"worker": self.worker, "env_steps": self.num_epochs * self.per_epoch,
                "episodes": self.sink.next_index, "cut_episodes": self.assembler.cut_episodes,
                "cut_transitions": self.assembler.cut_transitions, "shards": self.writer.next_seq,
                "checkpoint": str(self.run_dir), "eval": self.last_eval, "source": self.source.config_dict()}


def collect_worker(config: CollectConfig, staging: Any, index: int, env_steps: int,
                   progress_every_s: float = 1.0, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Run worker `index` of a collection into `staging` through crl.loop.drive; resumes from its own checkpoint
    when one exists.

    `run_dir` holds the worker's run records (config.json, metrics.jsonl, checkpoints/, progress.json); by default
    `checkpoint_root(staging, worker)`, inside the staging folder, so they ship with the version. Returns a summary
    (env steps, episodes, successes, shards, run folder, eval). Safe to call again after a crash or as a Dask
    retry: it continues from its last checkpoint and rewrites nothing twice."""
    from crl.loop import drive

    runner = CollectRunner(config, staging, index, env_steps, run_dir, progress_every_s)
    runner.run_dir.mkdir(parents=True, exist_ok=True)
    if runner.mirror is not None:
        runner.mirror.pull()  # a resume on a host whose scratch folder lacks the bucket's latest checkpoint
    try:
        drive(runner, runner.run_dir, resume=True, on_epoch=runner.record, progress=False)
        assert runner.sink is not None
        runner.sink.close()
        runner.writer.close()
        runner.write_progress(runner.num_epochs)
        if runner.mirror is not None:  # resume.json names the final checkpoint too
            runner.mirror.push()
        if not staging.loc.local:  # the version carries its collector checkpoints, as on a local root
            staging.loc.upload_tree(str(runner.run_dir), remote_rel(staging, runner.worker))
    except BaseException:
        if runner.writer is not None:
            runner.writer.__exit__(RuntimeError, None, None)
        raise
    return runner.summary()


def _write_progress(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(".progress.json.tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)


def read_progress(staging: Any, workers: int) -> list[dict[str, Any]]:
    """Each worker's latest progress record (missing ones are skipped)."""
    out = []
    for i in range(workers):
        p = checkpoint_root(staging, worker_name(i)) / "progress.json"
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            continue
    return out


def provenance(config: CollectConfig, env: Any) -> dict[str, Any]:
    """The manifest's collector block (filled further at commit)."""
    from crl import code_version

    return {"producer": "crl-data collect", "collector": {
        **asdict(config), "collector_depth": config.collector_depth, "env": env.spec.name,
        "layout": env.spec.layout, "code_version": code_version()}}
