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
    try:
        shards = m["shards"]
        if m["content_hash"] != content_hash([s["sha256"] for s in shards]):
            raise DatasetError(f"{where}: content_hash does not match its shard hashes (manifest edited?)")
        if m["totals"]["transitions"] != sum(int(s["rows"]) for s in shards):
            raise DatasetError(f"{where}: totals do not match its shard list")
    except (KeyError, TypeError) as e:
        raise DatasetError(f"{where} is missing manifest key {e}") from e
    return m
