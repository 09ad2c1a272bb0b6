"""Run a whole collection: begin (or resume) a staging version, run one or many collector workers, commit.

One worker runs in this process; `workers > 1` (or a `scheduler` address) fans workers out on Dask, each with its
own seed and shards, all writing into one staging version that is committed once at the end. A worker that fails
is retried once by Dask (resuming from its own checkpoint); if it fails again its shards are discarded and it is
named in the manifest's `failed_workers`, never half-included.

Dask's own log lines (scheduler, nanny, worker start/stop at INFO) are hidden unless asked for (`dask_log`, the
log policy of crl.fanout), so a user sees the progress bar and warnings; `--dask-log info` shows them all.
"""

from __future__ import annotations

import shutil
import threading
from typing import Any

import jax

from crl.errors import ConfigError, CrlError
from crl.fanout import LOG_LEVELS, fan_out
from crl.loop import check_resumable
from crl.pipelines.collector import (
    CollectConfig,
    CollectRunner,
    collect_worker,
    discard_worker_shards,
    epoch_shape,
    provenance,
    read_progress,
    worker_budget,
    worker_name,
)
from crl.pipelines.collector_checkpoints import checkpoint_root, remote_rel
from crl.policies import PolicySpec


def _on_device(index: int) -> Any:
    """Pin worker `index` to one device when several are visible (one GPU per worker)."""
    devices = jax.devices()
    return jax.default_device(devices[index % len(devices)])


def _worker_task(config: CollectConfig, staging: Any, index: int, env_steps: int) -> dict[str, Any]:
    from crl import enable_compile_cache

    enable_compile_cache()
    with _on_device(index):
        return collect_worker(config, staging, index, env_steps)


class _Monitor:
    """Polls the workers' progress files and drives a rich progress bar (or stays silent)."""

    def __init__(self, staging: Any, config: CollectConfig, total: int, enabled: bool):
        self.staging, self.config, self.total, self.enabled = staging, config, total, enabled
        self._stop = threading.Event()

    def __enter__(self) -> _Monitor:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("collect"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                                TimeElapsedColumn(), TextColumn("{task.fields[info]}"))
            self.bar.__enter__()
            self.task = self.bar.add_task("collect", total=self.total, info="compiling...")
            self.thread = threading.Thread(target=self._loop, daemon=True)
            self.thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.update()

    def update(self) -> None:
        recs = read_progress(self.staging, self.config.workers)
        if not recs:
            return
        steps = sum(r["env_steps"] for r in recs)
        eps = sum(r["episodes"] for r in recs)
        succ = sum(r["successes"] for r in recs)
        info = (f"{sum(r['steps_per_s'] for r in recs):,.0f} steps/s  {eps:,} episodes "
                f"({succ / max(eps, 1):.0%} reached goal)  {sum(r['shards'] for r in recs)} shards")
        evals = [r["eval"]["eval/success"] for r in recs if r.get("eval")]
        if evals:
            info += f"  eval success {sum(evals) / len(evals):.2f}"
        self.bar.update(self.task, completed=steps, info=info)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._stop.set()
            self.thread.join()
            self.update()
            self.bar.__exit__(*exc)


def run_collection(config: CollectConfig, store: Any, resume: bool = False, scheduler: str | None = None,
                   show_progress: bool = True, dask_log: str = "warning") -> dict[str, Any]:
    """Collect into the next version of `config.dataset` and commit it; returns the manifest.

    Every env step collected is recorded (episodes running when the budget is spent are cut and marked as
    truncated). dask_log: the least severe Dask log level shown when workers run on Dask (fanout.LOG_LEVELS).
    """
    from crl.envs import make

    config = config.validate()
    if config.checkpoints == "bucket" and store.loc.local:
        raise ConfigError(f"--checkpoints bucket applies to a root on object storage; {store.root} is a local "
                          "folder, where the checkpoints are kept in the staging version already: drop it")
    env = make(config.env, **config.env_overrides())
    prov = provenance(config, env)
    staging = store.begin(config.dataset, env.spec.to_dict(), prov, resume=resume)
    if resume:
        # the one resume rule (crl.loop): the same options, but for those that do not change what gets recorded;
        # like a training run, a collection may resume under another code version (each is recorded)
        check_resumable("collection", staging.info["provenance"].get("collector", {}), prov["collector"],
                        (*CollectRunner.resumable_changes, "code_version", "checkpoints"))
    if not resume and not staging.loc.local:  # a scratch left by an earlier staging of this number (rm'd)
        for i in range(config.workers):
            shutil.rmtree(checkpoint_root(staging, worker_name(i)), ignore_errors=True)
    policy = PolicySpec.parse(config.policy)
    if dask_log not in LOG_LEVELS:
        raise ConfigError(f"--dask-log {dask_log!r} unknown; use one of {', '.join(LOG_LEVELS)}")
    per_worker = -(-config.env_steps // config.workers)
    results: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    with _Monitor(staging, config, worker_budget(config, per_worker) * config.workers, show_progress):
        if config.workers == 1 and scheduler is None:
            results.append(_worker_task(config, staging, 0, per_worker))
        else:
            results, failed = _fan_out(config, staging, per_worker, scheduler, dask_log)
    if not results:
        raise CrlError(f"every collector worker failed ({'; '.join(f['error'] for f in failed)}); "
                       f"fix the cause and re-run with --resume")
    extra = {
        "collector": {
            **prov["collector"],
            "env_steps": sum(r["env_steps"] for r in results),
            "env_steps_requested": config.env_steps,
            "epoch_envs": epoch_shape(config)[0],
            "epoch_steps": epoch_shape(config)[1],
            # episodes still running when the budget was spent, recorded with truncation on their last step
            "cut_episodes": sum(r["cut_episodes"] for r in results),
            "cut_transitions": sum(r["cut_transitions"] for r in results),
            "checkpoint": f"collector/{results[0]['worker']}" if policy.kind == "crl" else policy.path,
            "checkpoints": {r["worker"]: f"collector/{r['worker']}" for r in results},
            "final_eval": {r["worker"]: r["eval"] for r in results},
            "source": results[0]["source"],
        },
        "failed_workers": failed,
    }
    return staging.commit(extra_provenance=extra)


def _fan_out(config: CollectConfig, staging: Any, per_worker: int, scheduler: str | None, dask_log: str = "warning"
             ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every worker as a Dask task (crl.fanout); a worker that fails twice has its shards discarded."""
    names = {f"collect-{staging.id}-{worker_name(i)}": i for i in range(config.workers)}

    def discard(name: str, _error: str) -> None:
        worker = worker_name(names[name])
        discard_worker_shards(staging, worker, 0)
        shutil.rmtree(checkpoint_root(staging, worker), ignore_errors=True)
        if not staging.loc.local:  # its checkpoints mirrored by --checkpoints bucket
            staging.loc.remove_tree(remote_rel(staging, worker))

    results, errors = fan_out(_worker_task, {n: (config, staging, i, per_worker) for n, i in names.items()},
                              workers=config.workers, scheduler=scheduler, log_level=dask_log, on_failed=discard)
    failed = [{"worker": worker_name(names[n]), "error": e} for n, e in sorted(errors.items())]
    return sorted(results.values(), key=lambda r: r["worker"]), failed


def describe(manifest: dict[str, Any]) -> str:
    """What the CLI prints after a collection: the id, counts and the next commands."""
    t, c = manifest["totals"], manifest["provenance"]["collector"]
    dsid = manifest["id"]
    lines = [
        f"{dsid}",
        f"  {t['episodes']:,} episodes, {t['transitions']:,} transitions, {t['shards']} shards "
        f"(env {c['env']}, policy {c['policy']}, collector depth {c['collector_depth']})",
    ]
    asked = c.get("env_steps_requested")
    if asked is not None and c["env_steps"] > asked:  # (fewer only when a worker failed: the WARNING below)
        lines.append(f"  {c['env_steps']:,} env steps collected and recorded: --env-steps {asked:,} rounded up to "
                     f"whole epochs of {c['epoch_envs']} envs x {c['epoch_steps']} steps per worker")
    if c.get("cut_episodes"):
        lines.append(f"  {c['cut_episodes']:,} episodes cut at the budget, recorded as truncated "
                     f"({c['cut_transitions']:,} transitions)")
    evals = [e["eval/success"] for e in c.get("final_eval", {}).values() if e]
    if evals:
        lines.append(f"  collector eval success at the end: {sum(evals) / len(evals):.2f}")
    if manifest["provenance"].get("failed_workers"):
        lines.append(f"  WARNING: failed workers left out: {manifest['provenance']['failed_workers']}")
    lines += ["next:", f"  crl-data show {dsid}", f"  crl-data verify {dsid}", f"  crl-data export minari {dsid}"]
    return "\n".join(lines)

