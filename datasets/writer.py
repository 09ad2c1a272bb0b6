"""ShardWriter: buffers appended episode batches, cuts shards of whole episodes, writes them on a background thread.

One writer per worker name; any number of writers (threads, processes, Dask workers on a shared filesystem) can
write into one staging version at once because each writes only files named after its own worker.
A shard becomes complete when its sidecar `<shard>.json` (rows, episodes, hash) appears, after every byte of the
shard is on disk; a shard without a sidecar is incomplete and is discarded on resume.
"""

from __future__ import annotations

import queue
import re
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from crl.datasets.schema import (
    OFFSETS,
    check_env_spec,
    concat_batches,
    field_signature,
    normalize_batch,
    slice_episodes,
)
from crl.datasets.shard import DEFAULT_CHUNK_ROWS, write_shard
from crl.errors import DatasetError

if TYPE_CHECKING:
    from crl.datasets.staging import Staging

DEFAULT_SHARD_ROWS = 262_144
_WORKER_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_STOP = object()


def shard_stem(worker: str, seq: int) -> str:
    """`<worker>-<seq:06d>`: shard folder `<stem>.zarr`, sidecar `<stem>.json`; sorted order = episode order."""
    return f"{worker}-{seq:06d}"


class ShardWriter:
    """Append whole episodes; shards are cut at about `shard_rows` rows (never splitting an episode).

    Encoding and I/O run on one background thread fed by a queue of at most `max_pending` shards, so memory stays
    bounded by roughly (max_pending + 2) shards. Errors on the thread are raised by the next append/flush/close.
    Use as a context manager or call `close()`; a writer that is never closed leaves its buffered tail unwritten
    (as a killed one does) and `staging.completed()` tells a resumed collector where to continue.
    """

    def __init__(
        self,
        staging: Staging,
        worker: str,
        shard_rows: int = DEFAULT_SHARD_ROWS,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        max_pending: int = 2,
    ) -> None:
        if not _WORKER_RE.match(worker):
            raise DatasetError(f"invalid worker name {worker!r}: lower-case letters, digits, '-', '_' (<= 64)")
        if shard_rows < 1 or chunk_rows < 1 or max_pending < 1:
            raise DatasetError("shard_rows, chunk_rows and max_pending must be positive")
        self.staging = staging
        self.worker = worker
        self.shard_rows = int(shard_rows)
        self.chunk_rows = int(chunk_rows)
        done = staging.completed().get(worker)
        self._seq = done["next_seq"] if done else 0
        self._last_episode_id: int | None = done["last_episode_id"] if done else None  # max id written
        self._buffer: list[dict[str, np.ndarray]] = []
        self._buffered_rows = 0
        self._signature: dict[str, Any] | None = staging.signature()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._closed = False
        self.shards_written: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, name=f"crl-shard-writer-{worker}", daemon=True)
        self._thread.start()

    @property
    def next_seq(self) -> int:
        """Sequence number the next shard of this writer gets (= shards this worker has cut so far)."""
        return self._seq

    # -- producer side -------------------------------------------------------------------------------------
    def append(self, batch: dict[str, Any], copy: bool = True) -> None:
        """Add a batch of whole episodes (numpy or JAX arrays, see FORMAT.md). Validates before buffering.

        copy=True (default) copies numpy inputs the writer would otherwise keep views of until the background
        thread writes them; pass copy=False when the caller never mutates the arrays afterwards.
        """
        self._check_open()
        b = normalize_batch(batch)
        check_env_spec(b, self.staging.env_spec)
        sig = field_signature(b)
        if self._signature is None:
            self._signature = sig
        elif sig != self._signature:
            diff = sorted(k for k in set(sig) | set(self._signature) if sig.get(k) != self._signature.get(k))
            raise DatasetError(f"batch fields differ from earlier shards of this version: {diff}")
        ids = b["episode_id"][b[OFFSETS][:-1]]
        if np.unique(ids).size != ids.size:
            raise DatasetError("two episodes of one batch share an episode_id")
        top = int(ids.max())
        self._last_episode_id = top if self._last_episode_id is None else max(top, self._last_episode_id)
        for name, arr in b.items() if copy else ():  # no views of caller memory the caller may reuse
            src = batch.get(name)
            if isinstance(src, np.ndarray) and np.may_share_memory(arr, src):
                b[name] = arr.copy()
        self._buffer.append(b)
        self._buffered_rows += int(b[OFFSETS][-1])
        while self._buffered_rows >= self.shard_rows:
            self._cut(everything=False)

    def flush(self) -> None:
        """Write everything buffered as a shard (possibly small) and wait until all shards are complete."""
        self._check_open()
        if self._buffer:
            self._cut(everything=True)
        self._queue.join()
        self._raise_error()

    def close(self) -> None:
        """Flush and stop the background thread."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
        self._raise_error()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:  # do not publish a partial tail after an error; complete shards stay for resume
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()

    def _cut(self, everything: bool) -> None:
        data = concat_batches(self._buffer)
        offsets = data[OFFSETS]
        if everything:
            k = offsets.size - 1
        else:  # the most whole episodes that fit in shard_rows, at least one
            k = max(1, int(np.searchsorted(offsets, self.shard_rows, side="right")) - 1)
        shard = slice_episodes(data, 0, k)
        rest_eps = offsets.size - 1 - k
        self._buffer = [slice_episodes(data, k, k + rest_eps)] if rest_eps else []
        self._buffered_rows = int(offsets[-1] - offsets[k])
        self._raise_error()
        self._queue.put((self._seq, shard))  # blocks when max_pending shards are in flight
        self._seq += 1

    def _check_open(self) -> None:
        if self._closed:
            raise DatasetError("this ShardWriter is closed")
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            self._closed = True
            if isinstance(err, DatasetError):
                raise err
            raise DatasetError(f"writing a shard failed: {err!r}") from err

    # -- background thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if self._error is None:
                    seq, shard = item
                    self.shards_written.append(self._write(seq, shard))
            except BaseException as e:  # noqa: BLE001 - handed to the producer thread
                self._error = e
            finally:
                self._queue.task_done()

    def _write(self, seq: int, shard: dict[str, np.ndarray]) -> dict[str, Any]:
        stem = shard_stem(self.worker, seq)
        rel = f"{self.staging.rel}/shards/{stem}.zarr"
        record = write_shard(self.staging.loc, rel, shard, self.staging.compression, self.chunk_rows)
        record = {"path": f"shards/{stem}.zarr", "worker": self.worker, "seq": seq, **record,
                  "fields": field_signature(shard)}
        self.staging.loc.write_json(f"{self.staging.rel}/shards/{stem}.json", record)
        return record
