"""The one driver loop every run of a learner uses (online, offline, fine-tune, and the collector): logging,
evaluation, checkpoints, resume, divergence, early stop and progress.

A run is described by a `Runner` (crl.train.OnlineRunner, crl.offline.OfflineRunner, crl.finetune,
crl.pipelines.collector.CollectRunner): how to build its state, one (jitted) epoch, its evaluation, its counters.
`drive` owns everything around the epochs: `<out>/config.json`, `metrics.jsonl` (one JSON record per epoch),
`checkpoints/` (crl.checkpoint, with the run's kind, config and env spec as metadata), `learning_curve.png`.
A runner that keeps host-side state between epochs (the collector's unfinished episodes and shard position) adds it
to every checkpoint as named items through `CheckpointItems`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import jax

from crl.errors import ConfigError, TrainingDivergedError

EpochHook = Callable[[int, Any, dict[str, jax.Array], Any], None]


class Runner(Protocol):
    """What `drive` needs to know about a kind of run."""

    kind: str
    """'online', 'offline' or 'finetune' (recorded in config.json and checkpoint metadata)."""
    config: Any
    """The run's config (a crl.config.NestedConfig: to_dict, seed, eval_every, checkpoint_every)."""
    env_spec: dict[str, Any] | None
    """The env it evaluates in (and acts in), or None when it has none."""
    num_epochs: int
    resumable_changes: tuple[str, ...]
    """Config fields that may differ on --resume (they do not change what was learned so far)."""
    rate_name: str
    """Log key of the throughput figure, e.g. 'env_steps_per_s' or 'sgd_steps_per_s'."""
    rate_units: int
    """Units of that figure per epoch."""
    x_axis: str
    """The counter the learning curve is drawn against ('env_steps' or 'sgd_steps')."""

    def init_state(self) -> Any: ...

    def abstract_state(self) -> Any: ...

    def epoch(self, state: Any, index: int) -> tuple[Any, dict[str, jax.Array], Any]: ...

    def evaluate(self, state: Any, key: jax.Array) -> dict[str, Any] | None: ...

    def counters(self, state: Any) -> dict[str, int]: ...

    def extra_config(self) -> dict[str, Any]: ...


@runtime_checkable
class CheckpointItems(Protocol):
    """Optional part of a Runner: host-side state saved beside the device state in every checkpoint."""

    item_names: tuple[str, ...]
    """Names of the extra checkpoint items (crl.checkpoint.save's `items`)."""

    def checkpoint_items(self, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Called right before the checkpoint of `epoch`: (named items, extra metadata fields)."""
        ...

    def resume_items(self, meta: dict[str, Any], items: dict[str, Any]) -> None:
        """Called on resume, after the state is restored, with the checkpoint's metadata and named items."""
        ...


def check_resumable(kind: str, stored: dict[str, Any], given: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """ConfigError unless `given` equals `stored` outside the `allowed` fields (compared flat and nested)."""
    diff = sorted(k for k in stored if k not in allowed and stored.get(k) != given.get(k))
    if diff:
        def show(k: str) -> str:
            return f"{k}={given.get(k)!r} (run has {stored.get(k)!r})"

        raise ConfigError(f"cannot resume this {kind} run with a different config: {', '.join(map(show, diff))}; "
                          f"only {', '.join(allowed)} may change")


def eval_key(seed: int, epoch: int) -> jax.Array:
    """The key of a run's evaluation after `epoch` epochs: fold_in(PRNGKey(seed + 1), epoch). One rule for the
    driver, a fine-tune's epoch-0 evaluation of its source and `crl-eval goals` reproducing a logged eval/*."""
    return jax.random.fold_in(jax.random.PRNGKey(seed + 1), epoch)


def solved_streak_of(records: list[dict[str, Any]]) -> int:
    """How many evaluations in a row, up to the last one in `records`, scored eval/success 1.0 (a fine-tune's
    epoch-0 evaluation of its source does not count, as in a fresh run)."""
    streak = 0
    for r in records:
        if "eval/success" in r and r.get("epoch", 1) > 0:
            streak = streak + 1 if r["eval/success"] == 1.0 else 0
    return streak


def drive(
    runner: Runner, out_dir: str | Path, resume: bool = False, on_epoch: EpochHook | None = None,
    progress: bool = True, title: str = "",
) -> dict[str, float]:
    """Run `runner` into `out_dir`; returns the last log record.

    `on_epoch(epoch_index, state, metrics, extra)` is called after every epoch with device values. Raises
    TrainingDivergedError on NaN/Inf (the last good checkpoint stays), ConfigError for an occupied `out_dir` without
    `resume` or a resume with a different config or kind."""
    from crl import checkpoint, code_version
    from crl.metrics import all_finite, append_jsonl, plot_learning_curve, read_jsonl, to_host

    out = Path(out_dir)
    config = runner.config
    mngr = checkpoint.manager(out)
    metrics_path = out / "metrics.jsonl"
    if resume and mngr.latest_step() is not None:
        meta = checkpoint.read_meta(mngr)
        if meta.get("kind") != runner.kind:
            raise ConfigError(f"{out} holds a {meta.get('kind')} run; resume it with `crl-train {meta.get('kind')}`")
        check_resumable(runner.kind, meta["config"], config.to_dict(), runner.resumable_changes)
        state = checkpoint.restore(mngr, runner.abstract_state())
        start = int(meta["epoch"])
        if isinstance(runner, CheckpointItems):
            runner.resume_items(meta, checkpoint.read_items(mngr, mngr.latest_step(), runner.item_names))
        kept = [r for r in read_jsonl(metrics_path) if r["epoch"] <= start]
        metrics_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        solved_streak = solved_streak_of(kept)  # a resumed run stops where the uninterrupted one would
        elapsed_before = float(kept[-1].get("time/elapsed_s", 0.0)) if kept else 0.0
    elif mngr.latest_step() is not None or (metrics_path.exists() and not resume):
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    else:
        state, start, solved_streak, elapsed_before = runner.init_state(), 0, 0, 0.0
        metrics_path.write_text("")
        if hasattr(runner, "initial_eval_key"):  # fine-tuning: the evaluation before any update, logged as epoch 0
            ev = runner.evaluate(state, runner.initial_eval_key())
            if ev is not None:
                append_jsonl(metrics_path, {"epoch": 0, **runner.counters(state), **to_host(ev)})
    # one record of what this run is: config.json beside the outputs, and the metadata of every checkpoint
    meta = {"kind": runner.kind, "config": config.to_dict(), "env_spec": runner.env_spec,
            "code_version": code_version()}
    checkpoint.write_json(out / "config.json", {
        "kind": meta["kind"], "config": meta["config"], "env": runner.env_spec, **runner.extra_config(),
        "code_version": meta["code_version"]})

    stop_after = getattr(config, "stop_when_solved", 0)
    last: dict[str, float] = {}
    latest_eval: dict[str, float] = {}
    with Progress(progress, runner.num_epochs, start, runner.rate_name, runner.x_axis) as bar:
        t_prev = t_begin = time.perf_counter()
        for epoch in range(start, runner.num_epochs):
            new_state, metrics, extra = runner.epoch(state, epoch)
            if on_epoch is not None:
                on_epoch(epoch, new_state, metrics, extra)
            host = to_host(metrics)
            if not all_finite(host):
                bad = sorted(k for k, v in host.items() if not math.isfinite(v)) or ["parameters"]
                raise TrainingDivergedError(
                    f"NaN/Inf in {', '.join(bad)} at epoch {epoch + 1}; stopped. Last good checkpoint: "
                    f"epoch {mngr.latest_step()} in {checkpoint.checkpoint_dir(out)} (try lower learning rates)")
            state = new_state
            done = epoch + 1
            now = time.perf_counter()
            # time/elapsed_s: wall seconds of the run so far (compiles, evaluations and checkpoints included,
            # continued across resumes): the x axis of a wall-clock comparison
            record = {"epoch": done, **runner.counters(state), runner.rate_name: runner.rate_units / (now - t_prev),
                      "time/elapsed_s": elapsed_before + now - t_begin, **host}
            t_prev = now
            stop = False
            if done % config.eval_every == 0 or done == runner.num_epochs:
                ev = runner.evaluate(state, eval_key(config.seed, done))
                if ev is not None:
                    latest_eval = to_host(ev)
                    record.update(latest_eval)
                    solved_streak = solved_streak + 1 if latest_eval.get("eval/success") == 1.0 else 0
                    if stop_after and solved_streak >= stop_after and done < runner.num_epochs:
                        record["stopped_early"] = 1.0
                        stop = True
                t_prev = time.perf_counter()
            append_jsonl(metrics_path, record)
            last = record
            if done % config.checkpoint_every == 0 or done == runner.num_epochs or stop:
                items, item_meta = runner.checkpoint_items(done) if isinstance(runner, CheckpointItems) else ({}, {})
                checkpoint.save(mngr, done, state, {**meta, "epoch": done, **runner.counters(state), **item_meta},
                                items)
                t_prev = time.perf_counter()
            if "eval/success" in record:
                plot_learning_curve(read_jsonl(metrics_path), out / "learning_curve.png", title, x=runner.x_axis)
            bar.update(done, record, latest_eval)
            if stop:
                break
    return last


class Progress:
    """A rich progress bar (throughput, latest eval) or nothing."""

    def __init__(self, enabled: bool, total: int, start: int, rate_name: str, x_axis: str) -> None:
        self.enabled, self.total, self.start = enabled, total, start
        self.rate_name, self.x_axis = rate_name, x_axis

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.p = RichProgress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TimeRemainingColumn(),
                                  TextColumn("{task.fields[info]}"))
            self.p.__enter__()
            self.task = self.p.add_task("train", total=self.total, completed=self.start, info="compiling...")
        return self

    def update(self, done: int, record: dict[str, float], latest_eval: dict[str, float]) -> None:
        if not self.enabled:
            return
        unit = self.x_axis.replace("_", " ")
        info = f"{record.get(self.x_axis, 0):,} {unit}  {record[self.rate_name]:,.0f} {unit}/s"
        if "eval/success" in latest_eval:
            info += (f"  eval success {latest_eval['eval/success']:.2f}"
                     f"  time@goal {latest_eval.get('eval/time_at_goal', 0):.0f}")
        self.p.update(self.task, completed=done, info=info)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.p.__exit__(*exc)
