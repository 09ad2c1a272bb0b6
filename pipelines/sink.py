"""The collector's recording path: a thread turning device transition blocks into whole episodes for a ShardWriter.

`EpisodeSink.put` starts the device-to-host copy of one epoch's block and queues it (bounded: at most two blocks
wait); the sink thread assembles whole episodes (crl.pipelines.episodes) and appends them to the writer, which
encodes and writes shards on its own thread. Device compute, copies, assembly and shard I/O so overlap.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import jax
import numpy as np

from crl.pipelines.episodes import EpisodeAssembler


def episode_success(batch: dict[str, np.ndarray]) -> np.ndarray:
    """Per episode: did any transition reach the goal."""
    offsets = batch["episode_offsets"]
    return np.maximum.reduceat(batch["success"].astype(np.int8), offsets[:-1]) > 0


class EpisodeSink:
    """Episodes from device blocks to a ShardWriter on a thread of its own; errors re-raise on the caller's thread.

    Dataset episode ids are `id_offset + id_stride * k` for the k-th episode this worker completes (from
    `next_index`): unique across `id_stride` workers, increasing within one."""

    def __init__(self, assembler: EpisodeAssembler, writer: Any, id_stride: int, id_offset: int,
                 next_index: int) -> None:
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
        """Wait until every queued block is in the writer."""
        self._queue.join()
        self._check()

    def close(self) -> None:
        """Drain, then stop the thread."""
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
        ids = self.id_offset + self.id_stride * np.arange(self.next_index, self.next_index + n_eps, dtype=np.int64)
        batch["episode_id"] = np.repeat(ids, np.diff(batch["episode_offsets"]))
        self.next_index += n_eps
        self.episodes += n_eps
        self.successes += int(episode_success(batch).sum())
        self.writer.append(batch)
