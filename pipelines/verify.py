"""Dataset-wide hash verification: recompute every shard's sha256 in parallel with Dask and compare to the manifest.

Runs on Dask's local threaded scheduler by default (hashing and file reads release the GIL) or on a
distributed cluster (`scheduler="tcp://host:8786"` or a `distributed.Client`), one task per shard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import dask

from crl.datasets.ids import parse_id
from crl.datasets.location import Location
from crl.datasets.manifest import content_hash
from crl.datasets.staging import version_rel
from crl.datasets.store import DatasetStore
from crl.errors import DatasetError


@dataclass
class ShardCheck:
    """One shard's verdict: expected vs recomputed hash, or the error that stopped hashing it."""

    path: str
    expected: str
    actual: str | None
    bytes: int
    error: str | None = None
    version: str | None = None
    """None for the verified version's own shards; the parent's id for a split's parent checks."""

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
        own = [s for s in self.shards if s.version is None]
        if any(s.actual is None for s in own):
            return None
        return content_hash([s.actual for s in own if s.actual is not None])


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
    A split checks its own index, that its parent still exists with the content hash it recorded, and the
    parent's shard hashes (a split's data is its parent's).
    """
    manifest = store.manifest(dataset_id)
    base = version_rel(parse_id(dataset_id))
    t0 = time.perf_counter()
    # (label, relative folder, expected sha256, owning version or None for this one)
    jobs: list[tuple[str, str, str, str | None]] = [
        (s["path"], f"{base}/{s['path']}", s["sha256"], None) for s in manifest["shards"]]
    pre: list[ShardCheck] = []
    if manifest.get("kind") == "split":
        sp = manifest["split"]
        jobs.append((sp["path"], f"{base}/{sp['path']}", sp["sha256"], None))
        pre, parent_jobs = _parent_checks(store, manifest)
        jobs += parent_jobs
    tasks = [dask.delayed(_hash_shard)(store.loc, rel) for _, rel, _, _ in jobs]
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
    report = VerifyReport(id=manifest["id"], shards=pre, seconds=time.perf_counter() - t0)
    for (label, _, expected, owner), (actual, nbytes, err) in zip(jobs, results, strict=True):
        report.shards.append(ShardCheck(label, expected, actual, nbytes, err, owner))
    return report


def _parent_checks(store: DatasetStore, manifest: dict[str, Any]) -> tuple[list[ShardCheck], list[Any]]:
    """A split's parent: gone or changed (a failed check), else its shards to hash."""
    pid, recorded = manifest["parent"]["id"], manifest["parent"]["content_hash"]
    fix = f"restore {pid}, or remove the split and make it again (`crl-data split stitch`)"
    try:
        pm = store.manifest(pid)
    except DatasetError as e:
        return [ShardCheck(f"parent {pid}", recorded, None, 0, f"the parent is gone or unreadable ({e}); {fix}",
                           pid)], []
    if pm["content_hash"] != recorded:
        return [ShardCheck(f"parent {pid}", recorded, pm["content_hash"], 0,
                           f"the parent changed since the split was made (content hash {pm['content_hash']}, "
                           f"recorded {recorded}); {fix}", pid)], []
    pbase = version_rel(parse_id(pid))
    return [], [(f"{pid}/{s['path']}", f"{pbase}/{s['path']}", s["sha256"], pid) for s in pm["shards"]]
