"""manifest.json (format v1): build, validate, and the dataset content hash over shard hashes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from crl.datasets.ids import DatasetId
from crl.datasets.schema import FORMAT_NAME, FORMAT_VERSION
from crl.errors import DatasetError

MANIFEST = "manifest.json"
SHARD_KEYS = ("path", "rows", "episodes", "first_episode_id", "last_episode_id", "bytes", "sha256")


def now_iso() -> str:
    """UTC timestamp, seconds resolution, ISO 8601 with Z."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def content_hash(shard_hashes: list[str]) -> str:
    """Dataset content hash: sha256 of the shard sha256 hex digests, in shard order, one per line."""
    return hashlib.sha256("".join(h + "\n" for h in shard_hashes).encode()).hexdigest()


def build_manifest(
    dsid: DatasetId,
    *,
    created: str,
    parent: dict[str, str] | None,
    env_spec: dict[str, Any],
    provenance: dict[str, Any],
    code_version: str,
    compression: str,
    fields: dict[str, Any],
    shards: list[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest of a version whose shards (in episode order) are `shards`."""
    rows = sum(int(s["rows"]) for s in shards)
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": "data",
        "id": str(dsid),
        "created": created,
        "parent": parent,
        "env_spec": env_spec,
        "provenance": provenance,
        "code_version": code_version,
        "compression": compression,
        "fields": fields,
        "shards": [{k: s[k] for k in SHARD_KEYS} for s in shards],
        "totals": {
            "shards": len(shards),
            "episodes": sum(int(s["episodes"]) for s in shards),
            "transitions": rows,
            "bytes": sum(int(s["bytes"]) for s in shards),
        },
        "content_hash": content_hash([s["sha256"] for s in shards]),
    }


def check_manifest(m: Any, where: str) -> dict[str, Any]:
    """Raise DatasetError unless m is a format-v1 manifest whose totals and content hash are consistent."""
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise DatasetError(f"{where} is not a {FORMAT_NAME} manifest")
    if m.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{where} has format_version {m.get('format_version')}; this crl reads {FORMAT_VERSION}"
        )
    kind = m.get("kind", "data")
    missing = [k for k in ("id", "created", "env_spec", "fields", "totals", "content_hash") if k not in m]
    if missing:
        raise DatasetError(f"{where} is missing manifest key {missing[0]!r}")
    try:
        if kind == "data":  # data versions hash their shards
            shards = m["shards"]
            hashes, rows = [s["sha256"] for s in shards], sum(int(s["rows"]) for s in shards)
        elif kind == "split":  # splits hash their index; their transitions live in the parent
            hashes, rows = [m["split"]["sha256"]], int(m["split"]["transitions"])
            if not (m["parent"]["id"] and m["parent"]["content_hash"]):
                raise DatasetError(f"{where}: a split must name its parent's id and content hash")
        else:
            raise DatasetError(f"{where} has kind {kind!r}; this crl reads 'data' and 'split' versions")
        if m["content_hash"] != content_hash(hashes):
            raise DatasetError(f"{where}: content_hash does not match its shard hashes (manifest edited?)")
        if m["totals"]["transitions"] != rows:
            raise DatasetError(f"{where}: totals do not match its shard list")
    except (KeyError, TypeError) as e:
        raise DatasetError(f"{where} is missing manifest key {e}") from e
    return m
