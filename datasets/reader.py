"""DatasetReader: a committed version as lazy Dask arrays, single episodes, or flat numpy arrays for training."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from crl.datasets.ids import DatasetId
from crl.datasets.location import Location
from crl.datasets.schema import OFFSETS, is_episode_field
from crl.datasets.shard import open_shard
from crl.datasets.staging import version_rel
from crl.errors import DatasetError

if TYPE_CHECKING:
    import dask.array as da


class DatasetReader:
    """Read access to one committed version. Episode order = shard order (manifest) then order within a shard."""

    def __init__(self, loc: Location, dsid: DatasetId, manifest: dict[str, Any]) -> None:
        self.loc = loc
        self.id = dsid
        self.manifest = manifest
        self.rel = version_rel(dsid)
        self._shards: list[zarr.Group] | None = None

    @property
    def num_episodes(self) -> int:
        return int(self.manifest["totals"]["episodes"])

    @property
    def num_transitions(self) -> int:
        return int(self.manifest["totals"]["transitions"])

    @property
    def fields(self) -> list[str]:
        """Stored field names (without episode_offsets)."""
        return sorted(self.manifest["fields"])

    @property
    def env_spec(self) -> dict[str, Any]:
        return self.manifest["env_spec"]

    def shards(self) -> list[zarr.Group]:
        """The shard groups, opened once."""
        if self._shards is None:
            groups = []
            for s in self.manifest["shards"]:
                try:
                    groups.append(open_shard(self.loc, f"{self.rel}/{s['path']}"))
                except DatasetError:
                    raise DatasetError(self._damaged(s["path"], "is missing or not a Zarr v3 group")) from None
            self._shards = groups
        return self._shards

    def _damaged(self, shard_path: str, what: str) -> str:
        return (f"{self.id}: shard {shard_path} {what}; the version is damaged: run `crl-data verify {self.id}` "
                f"(then restore or re-create it)")

    def _array(self, s: int, name: str) -> zarr.Array:
        """Field `name` of shard s; a missing or misshapen array raises DatasetError naming version and shard."""
        path = self.manifest["shards"][s]["path"]
        try:
            arr = self.shards()[s][name]
        except KeyError:
            raise DatasetError(self._damaged(path, f"has no array {name!r}")) from None
        if not isinstance(arr, zarr.Array):
            raise DatasetError(self._damaged(path, f"has a group where array {name!r} belongs"))
        rec = self.manifest["shards"][s]
        lead = rec["episodes"] + 1 if name == OFFSETS else rec["episodes"] if is_episode_field(name) else rec["rows"]
        want = (lead,) if name == OFFSETS else (lead, *self.manifest["fields"][name]["shape"])
        if tuple(arr.shape) != want:
            raise DatasetError(self._damaged(path, f"array {name!r} has shape {arr.shape}, expected {want}"))
        return arr

    def read_shard(self, s: int, name: str, sel: Any = Ellipsis) -> np.ndarray:
        """Decode `name[sel]` of shard s; decoding failures (corrupt chunks) raise DatasetError, not a traceback."""
        arr = self._array(s, name)
        try:
            return arr[sel]
        except Exception as e:  # noqa: BLE001 - codecs raise many kinds on corrupt bytes
            path = self.manifest["shards"][s]["path"]
            raise DatasetError(self._damaged(path, f"array {name!r} cannot be decoded ({type(e).__name__})")) from e

    @cached_property
    def shard_row_starts(self) -> np.ndarray:
        """First global transition row of each shard, and the total [num shards + 1]."""
        return np.concatenate([[0], np.cumsum([s["rows"] for s in self.manifest["shards"]])]).astype(np.int64)

    @cached_property
    def shard_episode_starts(self) -> np.ndarray:
        """First global episode of each shard, and the total [num shards + 1]."""
        return np.concatenate([[0], np.cumsum([s["episodes"] for s in self.manifest["shards"]])]).astype(np.int64)

    @cached_property
    def episode_offsets(self) -> np.ndarray:
        """Global episode offsets [E+1]: episode e is transitions offsets[e]:offsets[e+1]."""
        parts = [np.zeros(1, np.int64)]
        for s, base in enumerate(self.shard_row_starts[:-1]):
            parts.append(np.asarray(self.read_shard(s, OFFSETS, slice(1, None)), dtype=np.int64) + base)
        return np.concatenate(parts)

    def _check_field(self, name: str) -> None:
        if name not in self.manifest["fields"]:
            raise DatasetError(f"{self.id} has no field {name!r}; fields: {self.fields}")

    def array(self, name: str) -> da.Array:
        """A lazy Dask array of one field over all shards ([N, ...] or [E, ...] for per-episode fields)."""
        import dask.array as da  # imported on use: keeps `crl-data` start-up fast

        self._check_field(name)
        parts = [da.from_zarr(self._array(s, name)) for s in range(len(self.shards()))]
        return da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]

    def _locate(self, i: int) -> tuple[int, int]:
        if not -self.num_episodes <= i < self.num_episodes:
            raise DatasetError(f"episode {i} out of range: {self.id} has {self.num_episodes} episodes")
        i %= self.num_episodes
        s = int(np.searchsorted(self.shard_episode_starts, i, side="right")) - 1
        return s, i - int(self.shard_episode_starts[s])

    def episode(self, i: int, fields: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Episode i: per-transition fields [T, ...] and per-episode fields (final_*, ep_*) as [...]."""
        s, j = self._locate(i)
        off = np.asarray(self.read_shard(s, OFFSETS, slice(j, j + 2)))
        out: dict[str, np.ndarray] = {}
        for name in fields or self.fields:
            self._check_field(name)
            out[name] = self.read_shard(s, name, j if is_episode_field(name) else slice(int(off[0]), int(off[1])))
        return out

    def iter_episodes(self, fields: Iterable[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Episodes in order, reading each shard once (fast full scans)."""
        names = list(fields or self.fields)
        for n in names:
            self._check_field(n)
        for s in range(len(self.shards())):
            data = {n: self.read_shard(s, n) for n in names}
            off = np.asarray(self.read_shard(s, OFFSETS))
            for j in range(off.size - 1):
                yield {n: (v[j] if is_episode_field(n) else v[off[j]:off[j + 1]]) for n, v in data.items()}

    def load(self, fields: Iterable[str] | None = None, threads: int = 4) -> dict[str, np.ndarray]:
        """Whole fields as flat numpy arrays plus `episode_offsets` (what trainers and samplers want).

        Shards and fields are decoded concurrently on `threads` threads.
        """
        names = list(fields or self.fields)
        for n in names:
            self._check_field(n)
        spec = self.manifest["fields"]
        out = {}
        for n in names:
            lead = self.num_episodes if is_episode_field(n) else self.num_transitions
            out[n] = np.empty((lead, *spec[n]["shape"]), dtype=np.dtype(spec[n]["dtype"]))
        jobs = []
        for s in range(len(self.shards())):
            for n in names:
                self._array(s, n)  # a missing array fails here, before any decoding
                starts = self.shard_episode_starts if is_episode_field(n) else self.shard_row_starts
                jobs.append((s, n, int(starts[s]), int(starts[s + 1])))

        def read(job: tuple[int, str, int, int]) -> None:
            s, n, a, b = job
            out[n][a:b] = self.read_shard(s, n)

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            list(pool.map(read, jobs))
        out[OFFSETS] = self.episode_offsets
        return out
