"""Dataset-wide hash verification: recompute every shard's sha256 in parallel with Dask and compare to the manifest.

Runs on Dask's local threaded scheduler by default (hashing and file reads release the GIL) or on a
distributed cluster (`scheduler="tcp://host:8786"` or a `distributed.Client`), one task per shard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import dask

from crl.datasets.location import Location
from crl.datasets.manifest import content_hash
from crl.datasets.staging import version_rel
from crl.datasets.store import DatasetStore


@dataclass
class ShardCheck:
    """One shard's verdict: expected vs recomputed hash, or the error that stopped hashing it."""

    path: str
    expected: str
    actual: str | None
    bytes: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.actual == self.expected


@dataclass
class VerifyReport:
    """Result of verifying one version."""

    id: str
    shards: list[ShardCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bad(self) -> list[ShardCheck]:
        return [s for s in self.shards if not s.ok]

    @property
    def ok(self) -> bool:
        return not self.bad

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.shards)

    @property
    def content_hash(self) -> str | None:
        """Dataset hash recomputed from the recomputed shard hashes (None if any shard failed to hash)."""
        if any(s.actual is None for s in self.shards):
            return None
        return content_hash([s.actual for s in self.shards if s.actual is not None])


def _hash_shard(loc: Location, rel: str) -> tuple[str | None, int, str | None]:
    try:
        sha, nbytes = loc.hash_tree(rel)
    except Exception as e:  # noqa: BLE001 - reported per shard
        return None, 0, f"{type(e).__name__}: {e}"
    if nbytes == 0:
        return None, 0, "shard folder is missing or empty"
    return sha, nbytes, None


def verify(store: DatasetStore, dataset_id: str, scheduler: Any = None) -> VerifyReport:
    """Recompute every shard hash of `dataset_id` in parallel; the report names each mismatching shard.

    scheduler: None (Dask's threaded scheduler), a Dask scheduler name ("threads", "processes", "sync"),
    a scheduler address, or a `distributed.Client`.
    """
    manifest = store.manifest(dataset_id)
    base = version_rel(store.open(dataset_id).id)
    t0 = time.perf_counter()
    tasks = [dask.delayed(_hash_shard)(store.loc, f"{base}/{s['path']}") for s in manifest["shards"]]
    client = None
    kwargs: dict[str, Any] = {}
    if isinstance(scheduler, str) and "://" in scheduler:
        from distributed import Client

        client = Client(scheduler)
        kwargs["scheduler"] = client
    elif scheduler is not None:
        kwargs["scheduler"] = scheduler
    else:
        kwargs["scheduler"] = "threads"
    try:
        results = dask.compute(*tasks, **kwargs)
    finally:
        if client is not None:
            client.close()
    report = VerifyReport(id=manifest["id"], seconds=time.perf_counter() - t0)
    for s, (actual, nbytes, err) in zip(manifest["shards"], results, strict=True):
        report.shards.append(ShardCheck(s["path"], s["sha256"], actual, nbytes, err))
    return report
