"""Relabelled SGD batches from a dataset: device-resident windows of whole episodes, sampled inside the jitted loop.

A `DatasetWindow` holds whole episodes padded to a fixed capacity (every window has the same shapes: one compile).
Episode ends are precomputed once per window on the host (`episode_last`, as OGBench's GCDataset does), so
`sample_window` is a gather: uniform over the valid rows, goals by the one relabelling law of `crl.relabel` (the
same as the online replay's `crl.buffer.sample`). Datasets larger than a window are streamed by `WindowStream`: a
background thread reads the next window from Zarr while the device trains on the current one; every episode is
seen exactly once per pass, in an order shuffled per pass from the seed.

Any reader with the `DatasetReader` API works (a stitching split reads like a dataset whose episodes are its
segments). Fields used: `observation` (state part), `action`, `achieved_goal`, `final_achieved_goal`; the next
state's achieved goal is the next row's, or the episode's final one at its last row.
"""

from __future__ import annotations

import ctypes
import math
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from crl.datasets.reader import DatasetReader
from crl.errors import ConfigError, DatasetError
from crl.relabel import PAPER_GOALS, Batch, GoalMixture, assemble_batch, future_offset, mix_goals

REQUIRED_FIELDS = ("observation", "action", "achieved_goal", "final_achieved_goal")
_FLOAT32 = 4


@struct.dataclass
class DatasetWindow:
    """Whole episodes on the device, padded to a fixed capacity N (rows >= size are padding, never sampled).

    state [N, state_size]: s_t's state part; action [N, A]; next_goal [N, G]: achieved goal of s_{t+1};
    goal_now [N, G]: achieved goal of s_t (current-state goals); episode_last [N] int32: row of the last transition
    of the row's episode in this window; size: valid rows (int32 scalar).
    """

    state: jax.Array
    action: jax.Array
    next_goal: jax.Array
    goal_now: jax.Array
    episode_last: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        """Rows the window holds (valid + padding); static."""
        return self.state.shape[0]


@dataclass(frozen=True)
class WindowInfo:
    """Host-side facts about a streamed window: pass number, index in the pass, valid rows, episode indices."""

    pass_index: int
    index: int
    rows: int
    episodes: np.ndarray


def window_row_bytes(state_size: int, action_size: int, goal_size: int) -> int:
    """Device bytes per window row (state, action, two goals, episode_last)."""
    return _FLOAT32 * (state_size + action_size + 2 * goal_size + 1)


# -- sampling (pure, jittable) ------------------------------------------------------------------------------------
def sample_window(
    window: DatasetWindow, key: jax.Array, batch_size: int, discount: float,
    critic_goals: GoalMixture = PAPER_GOALS, actor_goals: GoalMixture | None = None, transitions: bool = False,
) -> Batch:
    """A relabelled batch from a window: s_t uniform over valid rows, goals from `critic_goals` (default the paper's
    law: achieved goal of s_{t+k}, k ~ truncated geometric(gamma) within the episode) and, when `actor_goals` is
    given, separate actor goals. Keys are used as `crl.buffer.sample` uses them. `transitions` adds the next
    transition (state, data action, achieved goal of s_{t+1}) a TD critic bootstraps from."""
    if batch_size > window.capacity:
        raise ConfigError(f"batch size {batch_size} exceeds the window's {window.capacity} rows: lower the batch "
                          "size or raise the window size")
    k_t, k_k = jax.random.split(key)
    t = jax.random.randint(k_t, (batch_size,), 0, window.size)
    limit = window.episode_last[t] - t + 1
    k = future_offset(k_k, limit, discount, critic_goals.geometric)

    def goals(mixture: GoalMixture, k: jax.Array, key: jax.Array) -> jax.Array:
        future = window.next_goal[t + k - 1]
        if mixture.future_only:
            return future
        k_r, k_m = jax.random.split(key)
        r = jax.random.randint(k_r, (batch_size,), 0, window.size)
        return mix_goals(k_m, mixture, future, window.goal_now[t], window.next_goal[r])

    batch = assemble_batch(key, window.state[t], window.action[t], k, limit, discount, critic_goals, actor_goals,
                           goals)
    if not transitions:
        return batch
    last = window.episode_last[t]
    nxt = jnp.minimum(t + 1, last)  # the window stores no state after an episode's last transition
    return batch.replace(next_state=window.state[nxt], next_action=window.action[nxt], next_goal=window.next_goal[t],
                         next_valid=(t < last).astype(jnp.float32))


def window_sampler(
    batch_size: int, discount: float, critic_goals: GoalMixture = PAPER_GOALS, actor_goals: GoalMixture | None = None,
    transitions: bool = False,
) -> Callable[[DatasetWindow, jax.Array], Batch]:
    """`sample_fn(window, key) -> Batch` for a learner's SGD scan (the settings bound, the window traced);
    `transitions` adds the next transition (for a TD critic)."""
    critic_goals.validate("critic goals")
    if actor_goals is not None:
        actor_goals.validate("actor goals")
    return partial(sample_window, batch_size=batch_size, discount=discount, critic_goals=critic_goals,
                   actor_goals=actor_goals, transitions=transitions)


# -- reading a window on the host ---------------------------------------------------------------------------------
class _Source:
    """Row and episode ranges of the loader's fields, read from a reader: straight from the shards for a plain
    `DatasetReader` (only the chunks a range touches are decoded), else through the reader's `array` API."""

    def __init__(self, reader: Any) -> None:
        missing = [f for f in REQUIRED_FIELDS if f not in reader.fields]
        if missing:
            raise DatasetError(f"{reader.id} lacks fields {missing} that the loader needs (has {reader.fields})")
        spec = reader.env_spec
        try:
            self.sizes = (int(spec["state_size"]), int(spec["action_size"]), int(spec["goal_size"]))
        except (KeyError, TypeError) as e:
            raise DatasetError(f"{reader.id}: env spec lacks {e} (needs state_size, action_size, goal_size)") from e
        fields = reader.manifest["fields"]
        widths = {f: (fields[f]["shape"] or [1])[0] for f in REQUIRED_FIELDS}
        s, a, g = self.sizes
        if widths["observation"] < s or widths["action"] != a or widths["achieved_goal"] != g \
                or widths["final_achieved_goal"] != g:
            raise DatasetError(f"{reader.id}: field widths {widths} do not match the env spec (state_size {s}, "
                               f"action_size {a}, goal_size {g})")
        self.reader = reader
        self.offsets = np.asarray(reader.episode_offsets, np.int64)
        self.direct = type(reader) is DatasetReader
        self._arrays: dict[tuple[int, str], Any] = {}
        if self.direct:
            shards = reader.manifest["shards"]
            self.row_starts = np.cumsum([0] + [int(x["rows"]) for x in shards])
            self.ep_starts = np.cumsum([0] + [int(x["episodes"]) for x in shards])
        self.chunk_rows = int(self._chunks()) or 65536

    def _chunks(self) -> int:
        """Rows per stored chunk of `observation` (what one read decodes at least)."""
        try:
            if self.direct:
                return self.reader.shards()[0]["observation"].chunks[0]
            return self.reader.array("observation").chunksize[0]
        except (AttributeError, IndexError, KeyError, TypeError):
            return 0

    def _read(self, name: str, a: int, b: int, starts: np.ndarray) -> np.ndarray:
        if not self.direct:
            return np.asarray(self.reader.array(name)[a:b].compute())
        parts = []
        for s in range(int(np.searchsorted(starts, a, side="right")) - 1, len(starts) - 1):
            if starts[s] >= b:
                break
            lo, hi = max(a, starts[s]) - starts[s], min(b, starts[s + 1]) - starts[s]
            if hi > lo:
                if (s, name) not in self._arrays:  # opening an array reads its metadata: once
                    self._arrays[s, name] = self.reader.shards()[s][name]
                parts.append(self._arrays[s, name][int(lo):int(hi)])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def rows(self, name: str, a: int, b: int) -> np.ndarray:
        """Per-transition field `name`, rows a:b."""
        return self._read(name, a, b, self.row_starts if self.direct else self.offsets)

    def episodes(self, name: str, e0: int, e1: int) -> np.ndarray:
        """Per-episode field `name`, episodes e0:e1."""
        return self._read(name, e0, e1, self.ep_starts if self.direct else np.arange(len(self.offsets)))


def _empty(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """A fresh 64-byte-aligned host array: XLA:CPU adopts such memory on `device_put` instead of copying it (so a
    window on the CPU costs one copy of its rows, not two); it must never be written after the put."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(n + 64, np.uint8)
    at = (-raw.ctypes.data) % 64
    return raw[at:at + n].view(dtype).reshape(shape)


def _put(x: np.ndarray, device: Any) -> jax.Array:
    return jax.device_put(x, device).block_until_ready()


def read_window(
    source: _Source, ranges: list[tuple[int, int]], capacity: int, device: Any = None,
) -> DatasetWindow:
    """Episodes `ranges` ([(e0, e1)], contiguous runs) as one padded window on `device`. Fields are assembled one at
    a time in fresh aligned host arrays and handed to the device (adopted without a copy on the CPU; copied and then
    freed on an accelerator), so reading adds decoded chunks, not a second window, to the host's memory."""
    off = source.offsets
    lengths = [int(off[e1] - off[e0]) for e0, e1 in ranges]
    size = sum(lengths)
    if size > capacity:
        raise DatasetError(f"episodes of {size} transitions do not fit a window of {capacity}")
    s, a, g = source.sizes
    starts = np.cumsum([0] + lengths)[:-1]

    def gather(name: str, width: int) -> np.ndarray:
        out = _empty((capacity, width))
        for (e0, _), p, n in zip(ranges, starts, lengths, strict=True):
            out[p:p + n] = source.rows(name, int(off[e0]), int(off[e0]) + n)[:, :width]
        out[size:] = 0
        trim_heap()  # decoded chunks
        return out

    state = _put(gather("observation", s), device)
    action = _put(gather("action", a), device)
    goal_now = gather("achieved_goal", g)
    next_goal = _empty((capacity, g))
    next_goal[size:] = 0
    last = _empty((capacity,), np.int32)
    last[size:] = np.arange(size, capacity)  # padding rows: their own episode of one row
    for (e0, e1), p in zip(ranges, starts, strict=True):
        ends = p + (off[e0 + 1:e1 + 1] - off[e0]) - 1  # window row of each episode's last transition
        n = int(off[e1] - off[e0])
        next_goal[p:p + n - 1] = goal_now[p + 1:p + n]
        next_goal[ends] = source.episodes("final_achieved_goal", e0, e1)
        last[p:p + n] = np.repeat(ends, np.diff(off[e0:e1 + 1]))
    return DatasetWindow(state=state, action=action, next_goal=_put(next_goal, device),
                         goal_now=_put(goal_now, device), episode_last=_put(last, device),
                         size=_put(np.asarray(size, np.int32), device))


def trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc's malloc_trim; a no-op elsewhere). Window-sized buffers freed by
    one thread and allocated by another otherwise stay in glibc's arenas, raising the loader's peak memory
    (bench/RESULTS.md has the measurement)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _load_libc()


def _runs(episodes: np.ndarray) -> list[tuple[int, int]]:
    """Sorted episode indices as contiguous (e0, e1) runs (fewer, sequential reads)."""
    e = np.sort(episodes)
    cuts = np.flatnonzero(np.diff(e) != 1) + 1
    return [(int(r[0]), int(r[-1]) + 1) for r in np.split(e, cuts)]


def _blocks(offsets: np.ndarray, block_rows: int) -> list[tuple[int, int]]:
    """Contiguous runs of whole episodes of at most `block_rows` transitions (or one longer episode)."""
    out, e0 = [], 0
    for e in range(1, len(offsets)):
        if offsets[e] - offsets[e0] > block_rows and e - 1 > e0:  # episode e-1 would overfill the block
            out.append((e0, e - 1))
            e0 = e - 1
    out.append((e0, len(offsets) - 1))
    return out


# -- streaming ----------------------------------------------------------------------------------------------------
class WindowStream:
    """Device windows over a dataset, pass after pass: one window loaded once when the dataset fits (no window size
    given, or a window at least the dataset's size), else windows of at most `window_rows` transitions (or
    `window_bytes` of device memory) read on a background thread while the caller trains on the previous one.

    Each pass visits every episode exactly once. Episodes are grouped in blocks of contiguous episodes of about
    `block_rows` transitions; block order is shuffled per pass from `seed` and blocks are packed into windows of
    balanced size. Default block: the storage chunk (65,536 rows by default; a read decodes whole chunks, so smaller
    blocks cost reads: 1,000-row blocks read at 1/18 of the speed of chunk-sized ones), at most capacity // 4, so a
    window mixes >= 4 parts of the dataset (>= 16 for windows of 1 M rows); `block_rows=1` shuffles single episodes.
    Window contents depend only on the seed (not on timing).
    Memory: the window in use and the next one (on the CPU, host arrays become the device arrays without a copy),
    plus decoded chunks while reading.
    """

    def __init__(
        self, reader: Any, window_rows: int | None = None, window_bytes: int | None = None, seed: int = 0,
        block_rows: int | None = None, batch_size: int | None = None, prefetch: bool = True, device: Any = None,
    ) -> None:
        self.source = _Source(reader)
        self.seed, self.prefetch, self.device = seed, prefetch, device
        off = self.source.offsets
        total, longest = int(off[-1]), int(np.diff(off).max())
        row_bytes = window_row_bytes(*self.source.sizes)
        if window_rows is not None and window_bytes is not None:
            raise ConfigError("give the window size in transitions (window_rows) or bytes (window_bytes), not both")
        cap = window_rows if window_bytes is None else window_bytes // row_bytes
        if cap is not None and cap < 1:
            raise ConfigError(f"window of {cap} rows: give a positive size ({row_bytes} bytes per row)")
        self.capacity = total if cap is None or cap >= total else int(cap)
        if longest > self.capacity:
            e = int(np.argmax(np.diff(off)))
            raise DatasetError(f"episode {e} of {reader.id} has {longest} transitions, more than the window's "
                               f"{self.capacity}: raise the window size to at least {longest} rows "
                               f"({longest * row_bytes} bytes)")
        self.blocks = _blocks(off, max(1, block_rows or min(self.source.chunk_rows, self.capacity // 4)))
        self.block_len = np.array([off[e1] - off[e0] for e0, e1 in self.blocks], np.int64)
        self._min_windows = max(1, math.ceil(total / self.capacity))
        if batch_size is not None and batch_size > self.capacity:
            raise ConfigError(f"batch size {batch_size} exceeds the window ({self.capacity} transitions; dataset "
                              f"{total}): lower the batch size or raise the window size")
        self._whole: DatasetWindow | None = None

    @property
    def streaming(self) -> bool:
        """False when the whole dataset is one window (loaded once)."""
        return self.capacity < int(self.source.offsets[-1])

    @property
    def num_windows(self) -> int:
        """Windows in the first pass (others may differ by one: packing depends on the shuffled block order)."""
        return len(self._plan_blocks(0))

    @property
    def window_bytes(self) -> int:
        """Device bytes of one window."""
        return self.capacity * window_row_bytes(*self.source.sizes)

    def _plan_blocks(self, pass_index: int) -> list[np.ndarray]:
        if not self.streaming:
            return [np.arange(len(self.blocks))]
        order = np.random.default_rng([self.seed, pass_index]).permutation(len(self.blocks))
        target = math.ceil(int(self.block_len.sum()) / self._min_windows)
        windows, cur, rows = [], [], 0
        for b in order:
            n = int(self.block_len[b])
            if cur and (rows + n > self.capacity or rows >= target):
                windows.append(np.array(cur))
                cur, rows = [], 0
            cur.append(b)
            rows += n
        windows.append(np.array(cur))
        return windows

    def plan(self, pass_index: int) -> list[np.ndarray]:
        """Episode indices of each window of pass `pass_index` (sorted within a window)."""
        return [np.concatenate([np.arange(*self.blocks[b]) for b in np.sort(w)]) for w in self._plan_blocks(
            pass_index)]

    def load_window(self, episodes: np.ndarray) -> DatasetWindow:
        """The window of `episodes` (e.g. one of `plan(p)`), read now in this thread."""
        trim_heap()
        return read_window(self.source, _runs(episodes), self.capacity, self.device)

    def _schedule(self, passes: int | None) -> Iterator[WindowInfo]:
        p = 0
        while passes is None or p < passes:
            for i, eps in enumerate(self.plan(p)):
                rows = int(self.source.offsets[eps + 1].sum() - self.source.offsets[eps].sum())
                yield WindowInfo(p, i, rows, eps)
            p += 1

    def windows(self, passes: int | None = None) -> Iterator[tuple[DatasetWindow, WindowInfo]]:
        """(window, info) pairs for `passes` passes (None: forever). While the caller holds window i, window i+1 is
        read in the background (when `prefetch`); a read error is raised here."""
        if not self.streaming:
            for info in self._schedule(passes):
                if self._whole is None:
                    self._whole = read_window(self.source, _runs(info.episodes), self.capacity, self.device)
                yield self._whole, info
            return
        schedule = self._schedule(passes)
        if not self.prefetch:
            for info in schedule:
                yield self.load_window(info.episodes), info
            return
        jobs: queue.Queue[WindowInfo | None] = queue.Queue()
        results: queue.Queue[tuple[DatasetWindow | None, WindowInfo, BaseException | None]] = queue.Queue()

        def work() -> None:
            while (job := jobs.get()) is not None:
                try:
                    results.put((self.load_window(job.episodes), job, None))
                except BaseException as e:  # noqa: BLE001 - handed to the consumer
                    results.put((None, job, e))

        thread = threading.Thread(target=work, name="crl-window-reader", daemon=True)
        thread.start()
        try:
            nxt = next(schedule, None)
            if nxt is not None:
                jobs.put(nxt)
            while nxt is not None:
                window, info, err = results.get()
                if err is not None:
                    raise err
                nxt = next(schedule, None)
                if nxt is not None:
                    jobs.put(nxt)  # read the next window while the caller trains on this one
                yield window, info
                del window
        finally:
            jobs.put(None)
            thread.join()

    def __iter__(self) -> Iterator[DatasetWindow]:
        """Windows forever (pass after pass)."""
        return (w for w, _ in self.windows())
