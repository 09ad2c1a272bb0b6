"""One shard: a self-contained Zarr v3 group of whole episodes (format v1), its codecs, writing and reading."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, TransposeCodec, ZstdCodec

from crl.datasets.location import Location
from crl.datasets.schema import FORMAT_NAME, FORMAT_VERSION, OFFSETS, is_episode_field
from crl.errors import DatasetError

#: Chosen with bench/bench_store.py on real Ant rollouts: Blosc-LZ4 with byte shuffle (over column-major chunks)
#: meets the size goal (<= 0.7x Minari's bytes) and writes and loads faster than the zstd variants, which save
#: few more bytes (figures: bench/RESULTS.md, "Dataset store").
DEFAULT_COMPRESSION = "blosc-lz4"
DEFAULT_CHUNK_ROWS = 65536


def compressors(name: str) -> list[Any]:
    """zarr v3 built-in codecs for a compression name (readable by any zarr v3 implementation)."""
    table: dict[str, list[Any]] = {
        "none": [],
        "zstd": [ZstdCodec(level=3)],
        "blosc-lz4": [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
        "blosc-zstd": [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")],
        "blosc-zstd-bitshuffle": [BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")],
    }
    if name not in table:
        raise DatasetError(f"unknown compression {name!r}; choose one of {sorted(table)}")
    return table[name]


def write_shard(
    loc: Location,
    rel: str,
    batch: dict[str, np.ndarray],
    compression: str = DEFAULT_COMPRESSION,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    threads: int = 2,
) -> dict[str, Any]:
    """Write a normalised batch as the Zarr group `rel`, hash it, and return its shard record.

    The record (rows, episodes, first/last episode id, bytes, sha256) is what the manifest lists.
    Nothing time- or host-dependent goes into the shard, so equal data gives an equal hash.
    """
    if not loc.local:  # encode and hash on local disk, then upload every file at once (one request each, in
        # parallel): zarr's one-array-at-a-time writes cost a round trip per object on an object store
        import tempfile

        from crl.datasets.location import Location

        with tempfile.TemporaryDirectory(prefix="crl-shard-") as tmp:
            record = write_shard(Location(tmp), "shard", batch, compression, chunk_rows, threads)
            loc.upload_tree(f"{tmp}/shard", rel)
        return record
    offsets = batch[OFFSETS]
    rows, episodes = int(offsets[-1]), int(offsets.size - 1)
    codecs = compressors(compression)
    group = zarr.open_group(
        store=loc.zarr_store(rel),
        mode="w",
        zarr_format=3,
        attributes={"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "rows": rows, "episodes": episodes},
    )
    arrays = {}
    for name in sorted(batch):
        arr = batch[name]
        lead = arr.shape[0] if (name == OFFSETS or is_episode_field(name)) else min(rows, chunk_rows)
        chunks = (max(1, lead), *(max(1, d) for d in arr.shape[1:]))
        # Column-major chunks (transpose codec) put each column's time series together: smooth signals then
        # compress better after shuffling (bench/RESULTS.md, "Dataset store").
        filters = [TransposeCodec(order=(1, 0))] if arr.ndim == 2 and name != OFFSETS else []
        arrays[name] = group.create_array(
            name, shape=arr.shape, dtype=arr.dtype, chunks=chunks, filters=filters, compressors=codecs,
            fill_value=0,
        )

    def fill(name: str) -> None:
        if batch[name].size:
            arrays[name][...] = batch[name]

    with ThreadPoolExecutor(max_workers=threads) as pool:  # encode fields concurrently (codecs release the GIL)
        list(pool.map(fill, sorted(batch, key=lambda n: -batch[n].nbytes)))
    sha, nbytes = loc.hash_tree(rel)
    ids = batch["episode_id"]
    return {
        "rows": rows,
        "episodes": episodes,
        "first_episode_id": int(ids.min()),
        "last_episode_id": int(ids.max()),
        "bytes": nbytes,
        "sha256": sha,
    }


def open_shard(loc: Location, rel: str) -> zarr.Group:
    """Open a shard read-only."""
    try:
        return zarr.open_group(store=loc.zarr_store(rel, read_only=True), mode="r", zarr_format=3)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as e:
        raise DatasetError(f"shard {loc.uri(rel)} is missing or not a Zarr v3 group") from e
