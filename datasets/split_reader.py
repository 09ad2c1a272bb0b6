"""SplitReader: a split read like any dataset whose episodes are its segments (the data is the parent's).

Segment s is parent rows start[s]:end[s] (within one parent episode). What a segment reads as (datasets/FORMAT.md):
per-transition fields are the parent's rows, except `episode_id` (the segment index, unique within the split) and
`truncation` (also true on a segment's last transition when the cut is not the parent episode's end: a cut is a
truncation, not a termination); `final_x` is the parent's next state after the segment's last transition (row
`end` of `x`, or the parent episode's `final_x` when the segment ends with its episode); other per-episode fields
are the parent episode's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from crl.datasets.ids import DatasetId
from crl.datasets.reader import DatasetReader
from crl.datasets.schema import OFFSETS, is_episode_field
from crl.errors import DatasetError

if TYPE_CHECKING:
    import dask.array as da

    from crl.datasets.store import DatasetStore


def open_split(store: DatasetStore, dsid: DatasetId, manifest: dict[str, Any]) -> SplitReader:
    """A reader over split `dsid`; DatasetError (one line naming the fix) when its parent is gone or changed."""
    from crl.datasets.stitch_split import load_segments

    pid = manifest["parent"]["id"]
    k = manifest.get("split", {}).get("max_cells", "K")
    remake = f"`crl-data rm {dsid}`, then `crl-data split stitch <parent> --max-cells {k}`"
    if not store.exists(pid):
        raise DatasetError(f"split {dsid} cannot be read: its parent {pid} is gone; restore {pid} or remove the "
                           f"split and make a new one: {remake}")
    pm = store.manifest(pid)
    now, then = pm["content_hash"], manifest["parent"]["content_hash"]
    if now != then:
        raise DatasetError(f"split {dsid} cannot be read: its parent {pid} changed since the split was made "
                           f"(content hash {now[:12]}, recorded {then[:12]}); re-create the split: {remake}")
    start, end = load_segments(store, dsid, manifest)
    return SplitReader(store.open(pid), dsid, manifest, start, end)


class SplitReader(DatasetReader):
    """Read access to a split; same public API as DatasetReader, episodes = segments, in parent row order."""

    def __init__(self, parent: DatasetReader, dsid: DatasetId, manifest: dict[str, Any], start: np.ndarray,
                 end: np.ndarray) -> None:
        super().__init__(parent.loc, dsid, manifest)
        self.parent = parent
        self.start, self.end = start, end
        po = parent.episode_offsets
        self._pep = np.searchsorted(po, start, side="right") - 1  # parent episode of each segment
        ok = (start.size == self.num_episodes and start.size > 0 and (end > start).all() and (start >= 0).all()
              and (end <= po[np.clip(self._pep + 1, 0, po.size - 1)]).all() and (np.diff(start) > 0).all())
        if not ok or int((end - start).sum()) != self.num_transitions:
            raise DatasetError(f"split {dsid}: its segment index does not fit parent {parent.id}; the split is "
                               f"damaged (`crl-data verify {dsid}`)")
        self._at_end = end == po[self._pep + 1]  # the segment ends where its parent episode ends
        self._lazy: dict[str, da.Array] = {}

    def shards(self) -> list[zarr.Group]:
        """The parent's shard groups (a split stores no transitions of its own)."""
        return self.parent.shards()

    @cached_property
    def episode_offsets(self) -> np.ndarray:
        """Segment offsets [S+1] into the split's transitions."""
        return np.concatenate([[0], np.cumsum(self.end - self.start)]).astype(np.int64)

    @cached_property
    def _rows(self) -> np.ndarray:
        """Parent global row of each split transition."""
        lengths = self.end - self.start
        return np.repeat(self.start - self.episode_offsets[:-1], lengths) + np.arange(self.num_transitions)

    @cached_property
    def _cut_rows(self) -> np.ndarray:
        """[N] bool: the last transition of a segment cut inside its parent episode."""
        out = np.zeros(self.num_transitions, bool)
        out[self.episode_offsets[1:][~self._at_end] - 1] = True
        return out

    def _next_field(self, name: str) -> str | None:
        """For final_x with a per-transition x: x (the cut's next state is row `end` of x); else None."""
        x = name[len("final_"):] if name.startswith("final_") else None
        return x if x in self.manifest["fields"] and not is_episode_field(x) else None

    def _parent_names(self, names: list[str]) -> list[str]:
        need = [n for n in names if n != "episode_id"]
        need += [x for n in names if is_episode_field(n) and (x := self._next_field(n))]
        return list(dict.fromkeys(need))

    def array(self, name: str) -> da.Array:
        """A lazy Dask array of one field over all segments ([N, ...] or [S, ...] for per-episode fields); built
        once per field (the gather graph is O(N) to build, and loaders slice it window by window)."""
        self._check_field(name)
        if name not in self._lazy:
            self._lazy[name] = self._build_array(name)
        return self._lazy[name]

    def _build_array(self, name: str) -> da.Array:
        import dask.array as da

        if name == "episode_id":
            return da.from_array(np.repeat(np.arange(self.num_episodes, dtype=np.int64),
                                           np.diff(self.episode_offsets)), chunks=65536)
        if not is_episode_field(name):
            x = self.parent.array(name)[self._rows]
            return x | da.from_array(self._cut_rows, chunks=x.chunks[0]) if name == "truncation" else x
        fin = self.parent.array(name)[self._pep]
        x = self._next_field(name)
        if x is None or self._at_end.all():
            return fin
        nxt = self.parent.array(x)[np.minimum(self.end, self.parent.num_transitions - 1)]
        mask = self._at_end.reshape(-1, *([1] * (fin.ndim - 1)))
        return da.where(mask, fin, nxt)

    def _segment(self, i: int, get: Callable[[str, Any], np.ndarray], base: int, pe: int,
                 names: list[str]) -> dict[str, np.ndarray]:
        """Segment i from getters over the parent shard holding it (rows relative to `base`, local episode pe)."""
        a, b = int(self.start[i]) - base, int(self.end[i]) - base
        out: dict[str, np.ndarray] = {}
        for n in names:
            if n == "episode_id":
                out[n] = np.full(b - a, i, np.int64)
            elif not is_episode_field(n):
                out[n] = np.array(get(n, slice(a, b)))
                if n == "truncation" and not self._at_end[i]:
                    out[n][-1] = True
            elif self._at_end[i] or (x := self._next_field(n)) is None:
                out[n] = get(n, pe)
            else:
                out[n] = get(x, b)
        return out

    def _where(self, i: int) -> tuple[int, int, int]:
        """(parent shard, its first global row, local parent episode) of segment i."""
        pe = int(self._pep[i])
        s = int(np.searchsorted(self.parent.shard_episode_starts, pe, side="right")) - 1
        return s, int(self.parent.shard_row_starts[s]), pe - int(self.parent.shard_episode_starts[s])

    def episode(self, i: int, fields: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Segment i: per-transition fields [T, ...] and per-episode fields (final_*, ep_*) as [...]."""
        if not -self.num_episodes <= i < self.num_episodes:
            raise DatasetError(f"episode {i} out of range: {self.id} has {self.num_episodes} episodes (segments)")
        i %= self.num_episodes
        names = list(fields or self.fields)
        for n in names:
            self._check_field(n)
        s, base, pe = self._where(i)
        return self._segment(i, lambda n, sel: self.parent.read_shard(s, n, sel), base, pe, names)

    def iter_episodes(self, fields: Iterable[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Segments in order, reading each parent shard once."""
        names = list(fields or self.fields)
        for n in names:
            self._check_field(n)
        need = self._parent_names(names)
        rs = self.parent.shard_row_starts
        for s in range(len(rs) - 1):
            lo, hi = np.searchsorted(self.start, [rs[s], rs[s + 1]])
            if lo == hi:
                continue
            data = {n: self.parent.read_shard(s, n) for n in need}
            get = data.__getitem__
            first_ep = int(self.parent.shard_episode_starts[s])
            for i in range(int(lo), int(hi)):
                yield self._segment(i, lambda n, sel, get=get: get(n)[sel], int(rs[s]),
                                    int(self._pep[i]) - first_ep, names)

    def load(self, fields: Iterable[str] | None = None, threads: int = 4) -> dict[str, np.ndarray]:
        """Whole fields over all segments as flat numpy arrays plus `episode_offsets` (segment offsets)."""
        names = list(fields or self.fields)
        for n in names:
            self._check_field(n)
        data = self.parent.load(self._parent_names(names), threads=threads)
        out: dict[str, np.ndarray] = {}
        for n in names:
            if n == "episode_id":
                out[n] = np.repeat(np.arange(self.num_episodes, dtype=np.int64), np.diff(self.episode_offsets))
            elif not is_episode_field(n):
                out[n] = data[n][self._rows]
                if n == "truncation":
                    out[n] |= self._cut_rows
            else:
                out[n] = data[n][self._pep]
                x = self._next_field(n)
                if x is not None:
                    cut = ~self._at_end
                    out[n][cut] = data[x][self.end[cut]]
        out[OFFSETS] = self.episode_offsets
        return out
