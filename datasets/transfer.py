"""Copy a committed version between two roots (local folder <-> bucket, bucket <-> bucket), lineage included.

The destination gets the same id, the same manifest (created time, parent, provenance, hashes) and the same bytes:
files go shard by shard into a claimed staging folder, every shard's hash is recomputed at the destination and
compared with the manifest, and only then is the version published (the same atomic commit as a new version).
"""

from __future__ import annotations

from typing import Any

from crl.datasets.ids import parse_id
from crl.datasets.manifest import MANIFEST
from crl.datasets.staging import version_rel
from crl.datasets.store import DatasetStore
from crl.errors import DatasetError


def copy_version(src: DatasetStore, dataset_id: str, dst: DatasetStore) -> tuple[dict[str, Any], bool]:
    """Copy `dataset_id` from `src` to `dst`; returns (manifest, copied). copied is False when `dst` already holds
    the identical version. Refused (DatasetError) when `dst` holds a different version of that id, or for a split
    whose parent is not at `dst` with the content hash it recorded."""
    dsid = parse_id(dataset_id)
    m = src.manifest(dataset_id)
    if src.root == dst.root:
        raise DatasetError(f"--to is the source root {src.root}; give another root")
    if dst.exists(dataset_id):
        have = dst.manifest(dataset_id)["content_hash"]
        if have == m["content_hash"]:
            return m, False
        raise DatasetError(f"{dsid} already exists under {dst.root} with other content (content hash {have[:12]}..., "
                           f"source {m['content_hash'][:12]}...); versions are immutable: remove it there first, "
                           "or copy under another name")
    units = [s["path"] for s in m["shards"]]
    if m.get("kind") == "split":
        pid = m["parent"]["id"]
        if not dst.exists(pid) or dst.manifest(pid)["content_hash"] != m["parent"]["content_hash"]:
            raise DatasetError(f"{dsid} is a split that reads its data from {pid}, which is not under {dst.root} "
                               f"(or differs): copy {pid} first (`crl-data copy {pid} --to {dst.root}`)")
        units = [m["split"]["path"]]
    staging = dst.begin(dsid.full_name, m["env_spec"], provenance=m.get("provenance"), version=dsid.version,
                        compression=m["compression"])
    try:
        expected = {s["path"]: s["sha256"] for s in m["shards"]}
        if m.get("kind") == "split":
            expected = {m["split"]["path"]: m["split"]["sha256"]}
        base = version_rel(dsid)
        for unit in units:
            files = src.loc.fs.find(src.loc.path(f"{base}/{unit}"))
            if not files:
                raise DatasetError(f"{dsid}: {unit} is missing under {src.root}; run `crl-data verify {dsid}`")
            prefix = src.loc.path(base).rstrip("/") + "/"
            data = src.loc.fs.cat(files) if len(files) > 1 else {files[0]: src.loc.fs.cat_file(files[0])}
            dst.loc.write_files({f"{staging.rel}/{f[len(prefix):]}": data[f] for f in files})
            sha, _ = dst.loc.hash_tree(f"{staging.rel}/{unit}")
            if sha != expected[unit]:
                raise DatasetError(f"{dsid}: {unit} hashes to {sha[:12]}... at {dst.root}, the manifest says "
                                   f"{expected[unit][:12]}...: the source is damaged (`crl-data verify {dsid}`) "
                                   "or the copy failed; nothing was published")
        dst.loc.remove_file(f"{staging.rel}/staging.json")
        dst.loc.write_json(f"{staging.rel}/{MANIFEST}", m)
        staging.publish()
    except BaseException:
        staging.abort()
        raise
    return m, True
