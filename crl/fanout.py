"""One way to run independent tasks on Dask: the collector's workers, offline learners, report evaluations.

`fan_out(fn, tasks, workers=N)` starts a LocalCluster of N single-threaded worker processes (or joins `scheduler`,
or uses a `client` passed in), submits `fn(*args)` for every task, and returns ({name: result}, {name: error}) once
all are done. One retry rule: every task is retried once by Dask (a retried collector or learner resumes from its
own checkpoint), then reported as failed while the others finish. One log policy: Dask's records below `log_level`
are hidden, here and in the worker processes; the nanny's warnings about slow worker shutdown (JAX/orbax teardown
on a busy host, which says nothing about the results) only at info or debug.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from crl.errors import CrlError

LOG_LEVELS = ("debug", "info", "warning", "error")
RETRIES = 1
"""How often Dask reruns a failed task before it is reported as failed."""


@contextlib.contextmanager
def dask_logging(level: str) -> Iterator[None]:
    """Show Dask's log records of `level` and above, here and in the worker processes started meanwhile.

    Here: the `distributed` logger's level (its records may reach the root handler that orbax installs, where
    LocalCluster's `silence_logs` does not look). Worker processes are spawned and configure their logging from
    the dask config at import, so the level travels as DASK_LOGGING__DISTRIBUTED in their environment.
    """
    logger = logging.getLogger("distributed")
    old_level, old_env = logger.level, os.environ.get("DASK_LOGGING__DISTRIBUTED")
    logger.setLevel(level.upper())
    os.environ["DASK_LOGGING__DISTRIBUTED"] = level
    try:
        yield
    finally:
        logger.setLevel(old_level)
        if old_env is None:
            os.environ.pop("DASK_LOGGING__DISTRIBUTED", None)
        else:
            os.environ["DASK_LOGGING__DISTRIBUTED"] = old_env


def error_text(e: BaseException) -> str:
    """One line naming a task's failure (a CrlError's message alone: it already names the problem)."""
    text = " ".join(str(e).split())
    return text if isinstance(e, CrlError) else f"{type(e).__name__}: {text}"


def fan_out(fn: Callable[..., Any], tasks: dict[str, tuple[Any, ...]], workers: int = 1,
            scheduler: str | None = None, client: Any = None, log_level: str = "warning",
            on_done: Callable[[str, Any], None] | None = None, on_failed: Callable[[str, str], None] | None = None,
            ) -> tuple[dict[str, Any], dict[str, str]]:
    """Run `fn(*args)` for every `name: args` of `tasks` as Dask tasks (keys `crl-<name>`, so names must be unique
    per cluster); returns ({name: result}, {name: error line}). `on_done` / `on_failed` are called as tasks end
    (e.g. progress lines, discarding a failed worker's partial output)."""
    from dask.distributed import Client, LocalCluster, as_completed

    if log_level not in LOG_LEVELS:
        raise ValueError(f"log_level {log_level!r} not in {LOG_LEVELS}")
    with dask_logging(log_level):
        cluster = own_client = None
        if client is None:
            if scheduler is None:
                # no dashboard; the scheduler's HTTP server (health, metrics) still starts: on a free local port, so
                # a second cluster on the host does not warn "Port 8787 is already in use"
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, memory_limit=0,
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                       silence_logs=getattr(logging, log_level.upper()))
                own_client = Client(cluster)
            else:
                own_client = Client(scheduler)
            client = own_client
        try:
            futures = {client.submit(fn, *args, retries=RETRIES, pure=False, key=f"crl-{name}"): name
                       for name, args in tasks.items()}
            results: dict[str, Any] = {}
            errors: dict[str, str] = {}
            for fut in as_completed(futures):
                name = futures[fut]
                try:
                    results[name] = fut.result()
                except Exception as e:  # noqa: BLE001 - reported; the other tasks finish
                    errors[name] = error_text(e)
                    if on_failed is not None:
                        on_failed(name, errors[name])
                    continue
                if on_done is not None:
                    on_done(name, results[name])
            return results, errors
        finally:
            nanny = logging.getLogger("distributed.nanny")
            old = nanny.level
            if nanny.getEffectiveLevel() >= logging.WARNING:
                nanny.setLevel(logging.ERROR)
            try:
                if own_client is not None:
                    own_client.close()
                if cluster is not None:
                    cluster.close()
            finally:
                nanny.setLevel(old)
