"""Run a whole collection: begin (or resume) a staging version, run one or many collector workers, commit.

One worker runs in this process; `workers > 1` (or a `scheduler` address) fans workers out on Dask, each with its
own seed and shards, all writing into one staging version that is committed once at the end. A worker that fails
is retried once by Dask (resuming from its own checkpoint); if it fails again its shards are discarded and it is
named in the manifest's `failed_workers`, never half-included.
"""

from __future__ import annotations

import shutil
import threading
from typing import Any

import jax

from crl.errors import ConfigError, CrlError
from crl.pipelines.collect import (
    CollectConfig,
    checkpoint_root,
    collect_worker,
    discard_worker_shards,
    provenance,
    read_progress,
    worker_name,
)
from crl.pipelines.sources import PolicySpec

# Fields that may differ when a collection is resumed (they do not change what gets recorded).
RESUMABLE = ("eval_every",)


def _check_resume(stored: dict[str, Any], given: dict[str, Any]) -> None:
    diff = sorted(k for k in given if k not in RESUMABLE and stored.get(k) != given[k])
    if diff:
        raise ConfigError("cannot resume with different options: " + ", ".join(
            f"{k}={given[k]!r} (collection has {stored.get(k)!r})" for k in diff))


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
                   show_progress: bool = True) -> dict[str, Any]:
    """Collect into the next version of `config.dataset` and commit it; returns the manifest."""
    from crl.envs import make

    config = config.validate()
    env = make(config.env, **config.env_overrides())
    prov = provenance(config, env)
    staging = store.begin(config.dataset, env.spec.to_dict(), prov, resume=resume)
    if resume:
        _check_resume(staging.info["provenance"].get("collector", {}), prov["collector"])
    policy = PolicySpec.parse(config.policy)
    per_worker = -(-config.env_steps // config.workers)
    results: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    with _Monitor(staging, config, per_worker * config.workers, show_progress):
        if config.workers == 1 and scheduler is None:
            results.append(_worker_task(config, staging, 0, per_worker))
        else:
            results, failed = _fan_out(config, staging, per_worker, scheduler)
    if not results:
        raise CrlError(f"every collector worker failed ({'; '.join(f['error'] for f in failed)}); "
                       f"fix the cause and re-run with --resume")
    extra = {
        "collector": {
            **prov["collector"],
            "env_steps": sum(r["env_steps"] for r in results),
            "checkpoint": f"collector/{results[0]['worker']}" if policy.kind == "crl" else policy.path,
            "checkpoints": {r["worker"]: f"collector/{r['worker']}" for r in results},
            "dropped_partial_transitions": sum(r["dropped_partial_transitions"] for r in results),
            "final_eval": {r["worker"]: r["eval"] for r in results},
            "source": results[0]["source"],
        },
        "failed_workers": failed,
    }
    return staging.commit(extra_provenance=extra)


def _fan_out(config: CollectConfig, staging: Any, per_worker: int, scheduler: str | None
             ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=config.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, memory_limit=0,
                               silence_logs=50)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = {
            client.submit(_worker_task, config, staging, i, per_worker, retries=1, pure=False,
                          key=f"crl-collect-{staging.id}-{worker_name(i)}"): i
            for i in range(config.workers)
        }
        results, failed = [], []
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                results.append(fut.result())
            except Exception as e:  # noqa: BLE001 - reported, and the worker's shards discarded
                discard_worker_shards(staging, worker_name(i), 0)
                shutil.rmtree(checkpoint_root(staging, worker_name(i)), ignore_errors=True)
                failed.append({"worker": worker_name(i), "error": f"{type(e).__name__}: {e}"})
        results.sort(key=lambda r: r["worker"])
        return results, failed
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def describe(manifest: dict[str, Any]) -> str:
    """What the CLI prints after a collection: the id, counts and the next commands."""
    t, c = manifest["totals"], manifest["provenance"]["collector"]
    dsid = manifest["id"]
    lines = [
        f"{dsid}",
        f"  {t['episodes']:,} episodes, {t['transitions']:,} transitions, {t['shards']} shards "
        f"(env {c['env']}, policy {c['policy']}, collector depth {c['collector_depth']})",
    ]
    if c.get("dropped_partial_transitions"):
        lines.append(f"  {c['dropped_partial_transitions']:,} steps of episodes still running at the end were not "
                     "recorded (datasets hold whole episodes; pick --env-steps as a multiple of "
                     "num_envs x episode length to record every step)")
    evals = [e["eval/success"] for e in c.get("final_eval", {}).values() if e]
    if evals:
        lines.append(f"  collector eval success at the end: {sum(evals) / len(evals):.2f}")
    if manifest["provenance"].get("failed_workers"):
        lines.append(f"  WARNING: failed workers left out: {manifest['provenance']['failed_workers']}")
    lines += ["next:", f"  crl-data show {dsid}", f"  crl-data verify {dsid}", f"  crl-data export minari {dsid}"]
    return "\n".join(lines)

