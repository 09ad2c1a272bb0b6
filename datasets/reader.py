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
            self._shards = [open_shard(self.loc, f"{self.rel}/{s['path']}") for s in self.manifest["shards"]]
        return self._shards

    @cached_property
    def _row_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([s["rows"] for s in self.manifest["shards"]])]).astype(np.int64)

    @cached_property
    def _episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([s["episodes"] for s in self.manifest["shards"]])]).astype(np.int64)

    @cached_property
    def episode_offsets(self) -> np.ndarray:
        """Global episode offsets [E+1]: episode e is transitions offsets[e]:offsets[e+1]."""
        parts = [np.zeros(1, np.int64)]
        for g, base in zip(self.shards(), self._row_starts[:-1], strict=True):
            parts.append(np.asarray(g[OFFSETS][1:], dtype=np.int64) + base)
        return np.concatenate(parts)

    def _check_field(self, name: str) -> None:
        if name not in self.manifest["fields"]:
            raise DatasetError(f"{self.id} has no field {name!r}; fields: {self.fields}")

    def array(self, name: str) -> da.Array:
        """A lazy Dask array of one field over all shards ([N, ...] or [E, ...] for per-episode fields)."""
        import dask.array as da  # imported on use: keeps `crl-data` start-up fast

        self._check_field(name)
        parts = [da.from_zarr(g[name]) for g in self.shards()]
        return da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]

    def _locate(self, i: int) -> tuple[int, int]:
        if not -self.num_episodes <= i < self.num_episodes:
            raise DatasetError(f"episode {i} out of range: {self.id} has {self.num_episodes} episodes")
        i %= self.num_episodes
        s = int(np.searchsorted(self._episode_starts, i, side="right")) - 1
        return s, i - int(self._episode_starts[s])

    def episode(self, i: int, fields: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Episode i: per-transition fields [T, ...] and per-episode fields (final_*, ep_*) as [...]."""
        s, j = self._locate(i)
        g = self.shards()[s]
        off = np.asarray(g[OFFSETS][j:j + 2])
        out: dict[str, np.ndarray] = {}
        for name in fields or self.fields:
            self._check_field(name)
            out[name] = g[name][j] if is_episode_field(name) else g[name][int(off[0]):int(off[1])]
        return out

    def iter_episodes(self, fields: Iterable[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Episodes in order, reading each shard once (fast full scans)."""
        names = list(fields or self.fields)
        for g in self.shards():
            data = {n: g[n][...] for n in names}
            off = np.asarray(g[OFFSETS][...])
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
        for s, g in enumerate(self.shards()):
            for n in names:
                starts = self._episode_starts if is_episode_field(n) else self._row_starts
                jobs.append((g, n, int(starts[s]), int(starts[s + 1])))

        def read(job: tuple[zarr.Group, str, int, int]) -> None:
            g, n, a, b = job
            out[n][a:b] = g[n][...]

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            list(pool.map(read, jobs))
        out[OFFSETS] = self.episode_offsets
        return out
