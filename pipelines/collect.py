"""The collector: roll out a collector of a chosen depth (or a fixed policy) and record every transition.

Every env step is recorded: the budget is rounded up to whole epochs (num_envs x unroll_length steps per worker),
and the episodes still running when it is spent are recorded too, cut there and marked as truncated, so a
dataset's transitions equal the env steps collected.

One worker = one source (a CRL agent training online, or a fixed policy) + one ShardWriter. The loop dispatches
jitted epochs; each epoch's transitions are copied to the host asynchronously and handed to a sink thread that
assembles whole episodes and appends them to the writer (which encodes and writes shards on its own thread), so
device compute, device-to-host copies, episode assembly and shard I/O overlap, with bounded queues between them.

Resume protocol: every `checkpoint_every` epochs the worker drains the sink, flushes the writer (all finished
episodes are in complete shards), then saves ONE orbax checkpoint holding the source state, the unfinished episodes,
and the shard sequence number reached. A resumed worker deletes its shards written after that checkpoint and
continues from it; since everything is deterministic given the seed, nothing is lost or duplicated.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from crl.errors import ConfigError, CrlError, DatasetError
from crl.pipelines.episodes import EpisodeAssembler
from crl.pipelines.sources import CrlSource, PolicySource, PolicySpec

CHECKPOINTS = "collector"


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

    def validate(self) -> CollectConfig:
        PolicySpec.parse(self.policy)
        if self.goal_schedule not in ("episode", "navigate"):
            raise ConfigError(f"--goal-schedule {self.goal_schedule!r} unknown; use 'episode' or 'navigate'")
        for name in ("env_steps", "shard_rows", "checkpoint_every", "workers", "collector_depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')}={getattr(self, name)} must be >= 1")
        if self.action_noise < 0:
            raise ConfigError(f"--action-noise {self.action_noise} must be >= 0")
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
                     eval_every=max(config.eval_every, 1),
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


def _episode_success(batch: dict[str, np.ndarray]) -> np.ndarray:
    """Per episode: did any transition reach the goal."""
    offsets = batch["episode_offsets"]
    return np.maximum.reduceat(batch["success"].astype(np.int8), offsets[:-1]) > 0


class _Sink:
    """A thread turning device transition blocks into episodes appended to a ShardWriter (bounded queue)."""

    def __init__(self, assembler: EpisodeAssembler, writer: Any, id_stride: int, id_offset: int, next_index: int):
        self.assembler, self.writer = assembler, writer
        self.id_stride, self.id_offset, self.next_index = id_stride, id_offset, next_index
        self.episodes = self.successes = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="crl-collect-sink", daemon=True)
        self._thread.start()

    def put(self, transitions: Any, last: bool = False) -> None:
        """Queue one epoch's block; `last`: it ends the collection (running episodes are cut and recorded)."""
        for leaf in jax.tree.leaves(transitions):
            leaf.copy_to_host_async()
        self._check()
        self._queue.put((transitions, last))

    def drain(self) -> None:
        self._queue.join()
        self._check()

    def close(self) -> None:
        self.drain()
        self._queue.put(None)
        self._thread.join()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    self._consume(jax.device_get(item[0]), item[1])
            except BaseException as e:  # noqa: BLE001 - re-raised on the producer thread
                self._error = e
            finally:
                self._queue.task_done()

    def _consume(self, transitions: Any, last: bool) -> None:
        batch = self.assembler.add(transitions, last=last)
        if batch is None:
            return
        n_eps = len(batch["episode_offsets"]) - 1
        # dataset episode ids: unique across workers, increasing within a worker, in order of completion
        ids = self.id_offset + self.id_stride * np.arange(self.next_index, self.next_index + n_eps, dtype=np.int64)
        batch["episode_id"] = np.repeat(ids, np.diff(batch["episode_offsets"]))
        self.next_index += n_eps
        self.episodes += n_eps
        self.successes += int(_episode_success(batch).sum())
        self.writer.append(batch)


def worker_name(index: int) -> str:
    return f"w{index}"


def checkpoint_root(staging: Any, worker: str) -> Path:
    """Where a worker keeps its resume checkpoints: inside the staging folder (so they ship with the version)."""
    if not staging.loc.local:
        raise DatasetError("collection needs a local dataset root for its resume checkpoints; collect locally "
                           "and copy the committed version to object storage")
    return Path(staging.loc.path(staging.rel)) / CHECKPOINTS / worker


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


def collect_worker(config: CollectConfig, staging: Any, index: int, env_steps: int,
                   progress_every_s: float = 1.0) -> dict[str, Any]:
    """Run worker `index` of a collection into `staging`; resumes from its own checkpoint when one exists.

    Returns a summary (env steps, episodes, successes, shards, final checkpoint path, eval). Safe to call again
    after a crash or as a Dask retry: it continues from its last checkpoint and rewrites nothing twice.
    """
    import orbax.checkpoint as ocp

    from crl.checkpoint import manager, pack_state, unpack_state
    from crl.envs import make

    config = config.validate()
    worker = worker_name(index)
    env = make(config.env, **config.env_overrides())
    source = build_source(config, env, config.seed + index, env_steps)
    per_epoch = source.num_envs * source.unroll_length
    epochs = -(-env_steps // per_epoch)
    assembler = EpisodeAssembler(source.num_envs, env.state_size, env.goal_indices)
    ckpt_dir = checkpoint_root(staging, worker)
    mngr = manager(ckpt_dir, max_to_keep=2)
    abstract = jax.eval_shape(source.init, jax.random.PRNGKey(0))

    start, next_index = 0, 0
    if mngr.latest_step() is not None:
        step = mngr.latest_step()
        meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        restored = mngr.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(pack_state(abstract)), pending=ocp.args.StandardRestore()))
        state = unpack_state(restored["state"], abstract)
        assembler.load_state_dict({k: np.asarray(v)[1:] for k, v in restored["pending"].items()})
        start, next_index = int(meta["epoch"]), int(meta["next_episode_index"])
        # non-zero only when resuming after the final checkpoint (the cut happens with the last epoch)
        assembler.cut_episodes, assembler.cut_transitions = meta.get("cut_episodes", 0), meta.get("cut_transitions", 0)
        discard_worker_shards(staging, worker, int(meta["next_seq"]))
    else:
        discard_worker_shards(staging, worker, 0)
        state = source.init(jax.random.PRNGKey(config.seed + index))

    writer = staging.writer(worker, shard_rows=config.shard_rows)
    sink = _Sink(assembler, writer, config.workers, index, next_index)
    progress_file = ckpt_dir / "progress.json"
    eval_key = jax.random.PRNGKey(config.seed + index + 10_000)
    last_eval: dict[str, float] = {}
    t_start, t_report = time.perf_counter(), 0.0

    def save(epoch: int) -> None:
        sink.drain()
        writer.flush()
        meta = {"epoch": epoch, "next_seq": writer.next_seq, "next_episode_index": sink.next_index,
                "env_steps": epoch * per_epoch, "worker": worker, "source": source.config_dict(),
                "cut_episodes": assembler.cut_episodes, "cut_transitions": assembler.cut_transitions}
        # orbax refuses zero-size arrays: every array gets one leading pad row, dropped on restore
        pending = {k: np.concatenate([np.zeros((1,) + v.shape[1:], v.dtype), v])
                   for k, v in assembler.state_dict().items()}
        items = {"state": ocp.args.StandardSave(pack_state(state)), "pending": ocp.args.StandardSave(pending),
                 "meta": ocp.args.JsonSave(meta)}
        if source.trains:
            items["config"] = ocp.args.JsonSave(source.config_dict())
        mngr.save(epoch, args=ocp.args.Composite(**items), force=True)
        mngr.wait_until_finished()

    try:
        for epoch in range(start, epochs):
            state, metrics, transitions = source.step(state)
            done = epoch + 1
            sink.put(transitions, last=done == epochs)
            if source.trains and config.eval_every and done % config.eval_every == 0:
                last_eval = {k: float(v) for k, v in source.evaluate(state, jax.random.fold_in(eval_key, done)).items()}
                if not all(np.isfinite(list(last_eval.values()))):
                    raise CrlError(f"worker {worker}: collector diverged (NaN/Inf in evaluation) at epoch {done}")
            if done % config.checkpoint_every == 0 or done == epochs:
                save(done)
            now = time.perf_counter()
            if now - t_report >= progress_every_s or done == epochs:
                t_report = now
                _write_progress(progress_file, {
                    "worker": worker, "env_steps": done * per_epoch, "target": epochs * per_epoch,
                    "episodes": sink.episodes, "successes": sink.successes, "shards": writer.next_seq,
                    "steps_per_s": (done - start) * per_epoch / max(now - t_start, 1e-9), "eval": last_eval})
        sink.close()
        writer.close()
    except BaseException:
        writer.__exit__(RuntimeError, None, None)
        raise
    return {"worker": worker, "env_steps": epochs * per_epoch, "episodes": sink.next_index,
            "cut_episodes": assembler.cut_episodes, "cut_transitions": assembler.cut_transitions,
            "shards": writer.next_seq,
            "checkpoint": str(ckpt_dir), "eval": last_eval, "source": source.config_dict()}


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
