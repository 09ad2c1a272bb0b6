"""DatasetStore: the versions under one root (`<root>/<ns>/<name>/vN/`), staging, listing, opening, removal."""

from __future__ import annotations

import os
import re
from typing import Any

from crl.datasets.ids import DatasetId, parse_id, parse_name
from crl.datasets.lease import KEEPER, LIVE, claim_rel, describe, lease_status, new_holder
from crl.datasets.location import Location
from crl.datasets.manifest import MANIFEST, check_manifest, now_iso
from crl.datasets.reader import DatasetReader
from crl.datasets.shard import DEFAULT_COMPRESSION, compressors
from crl.datasets.staging import STAGING_INFO, Staging, staging_rel, version_rel
from crl.errors import DatasetError

_VERSION_DIR = re.compile(r"^v(0|[1-9][0-9]*)$")
_STAGING_DIR = re.compile(r"^\.staging-v(0|[1-9][0-9]*)$")
_CLAIM_FILE = re.compile(r"^\.claim-v(0|[1-9][0-9]*)\.json$")


class DatasetStore:
    """All datasets under a root: a local folder or an fsspec URL (default $CRL_DATA_DIR, else ./data)."""

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 storage_options: dict[str, Any] | None = None) -> None:
        self.loc = Location(root, storage_options)
        self.loc.check()

    @property
    def root(self) -> str:
        return self.loc.url

    # -- discovery -----------------------------------------------------------------------------------------
    def _names(self) -> list[tuple[str, str]]:
        out = []
        for ns in self.loc.listdir(""):
            if ns.startswith("."):
                continue
            for name in self.loc.listdir(ns):
                if not name.startswith("."):
                    out.append((ns, name))
        return out

    def versions(self, name: str) -> list[int]:
        """Committed versions of `namespace/name` (those with a manifest.json), ascending."""
        ns, nm = parse_name(name)
        found = []
        for d in self.loc.listdir(f"{ns}/{nm}"):
            m = _VERSION_DIR.match(d)
            if m and self.loc.exists(f"{ns}/{nm}/{d}/{MANIFEST}"):
                found.append(int(m.group(1)))
        return sorted(found)

    def staging_versions(self, name: str) -> list[int]:
        """Versions of `namespace/name` being written (staging folders), ascending."""
        ns, nm = parse_name(name)
        return sorted(int(m.group(1)) for d in self.loc.listdir(f"{ns}/{nm}") if (m := _STAGING_DIR.match(d)))

    def next_version(self, name: str) -> int:
        """The version a new write of `namespace/name` gets: one past every committed, staging or claimed one."""
        ns, nm = parse_name(name)
        taken = []
        for d in self.loc.listdir(f"{ns}/{nm}"):
            m = _VERSION_DIR.match(d) or _STAGING_DIR.match(d) or _CLAIM_FILE.match(d)
            if m:
                taken.append(int(m.group(1)))
        return max(taken) + 1 if taken else 0

    def lease(self, dataset_id: str) -> dict[str, Any] | None:
        """The claim/lease record of a version (None when it has none: written before claims existed)."""
        dsid = parse_id(dataset_id)
        try:
            return self.loc.read_json(claim_rel(dsid.full_name, dsid.version))
        except (FileNotFoundError, DatasetError):
            return None

    def writer_status(self, dataset_id: str) -> tuple[str, str]:
        """For a staging version: (`live` | `ours` | `stale`, who holds it in words)."""
        lease = self.lease(dataset_id)
        return lease_status(lease), describe(lease)

    def _claim(self, dsid: DatasetId) -> dict[str, Any] | None:
        """Claim version dsid exclusively; the lease record when won, None when another writer has it."""
        holder = new_holder()
        rel = claim_rel(dsid.full_name, dsid.version)
        if not self.loc.create_exclusive(rel, holder):
            return None
        if self.lease(str(dsid)) is None or self.lease(str(dsid)).get("token") != holder["token"]:
            return None  # a store whose conditional write is not atomic let another writer overwrite it
        if self.loc.exists(version_rel(dsid)) or self.loc.exists(staging_rel(dsid)):
            return None  # the number was used before claims existed (or was removed with its claim mid-way)
        return holder

    def ids(self) -> list[DatasetId]:
        """Every committed version under the root, sorted."""
        out = []
        for ns, nm in self._names():
            try:
                out += [DatasetId(ns, nm, v) for v in self.versions(f"{ns}/{nm}")]
            except DatasetError:  # a foreign folder that is not a valid dataset name
                continue
        return sorted(out)

    def staging_ids(self) -> list[DatasetId]:
        """Every unfinished (staging) version under the root, sorted."""
        out = []
        for ns, nm in self._names():
            try:
                out += [DatasetId(ns, nm, v) for v in self.staging_versions(f"{ns}/{nm}")]
            except DatasetError:
                continue
        return sorted(out)

    def scan(self) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """Manifests of every readable committed version, and (id, problem) for each whose manifest is damaged
        (truncated, not JSON, inconsistent): one damaged version never hides the others."""
        good, broken = [], []
        for i in self.ids():
            try:
                good.append(self.manifest(str(i)))
            except DatasetError as e:
                broken.append((str(i), str(e)))
        return good, broken

    def list(self) -> list[dict[str, Any]]:
        """Manifests of every readable committed version, sorted by id (`scan()` also names damaged ones)."""
        return self.scan()[0]

    def exists(self, dataset_id: str) -> bool:
        dsid = parse_id(dataset_id)
        return self.loc.exists(f"{version_rel(dsid)}/{MANIFEST}")

    def manifest(self, dataset_id: str) -> dict[str, Any]:
        """The manifest of a committed version (DatasetError if unknown)."""
        dsid = parse_id(dataset_id)
        rel = f"{version_rel(dsid)}/{MANIFEST}"
        try:
            m = self.loc.read_json(rel)
        except FileNotFoundError:
            have = self.versions(dsid.full_name)
            hint = f"; versions: {', '.join(f'v{v}' for v in have)}" if have else f"; none under {self.root}"
            raise DatasetError(f"unknown dataset {dsid}{hint}") from None
        return check_manifest(m, self.loc.uri(rel))

    def open(self, dataset_id: str) -> DatasetReader:
        """A reader over a committed version; for a split (manifest kind "split") one whose episodes are its
        segments, read from the parent (DatasetError when the parent is gone or changed)."""
        dsid = parse_id(dataset_id)
        m = self.manifest(dataset_id)
        if m.get("kind") == "split":
            from crl.datasets.split_reader import open_split

            return open_split(self, dsid, m)
        return DatasetReader(self.loc, dsid, m)

    # -- writing -------------------------------------------------------------------------------------------
    def begin(
        self,
        name: str,
        env_spec: dict[str, Any] | Any,
        provenance: dict[str, Any] | None = None,
        parent: str | None = None,
        resume: bool = False,
        compression: str = DEFAULT_COMPRESSION,
        version: int | None = None,
    ) -> Staging:
        """Start (or with `resume=True` reopen) the staging folder of the next version of `namespace/name`.

        The version number is claimed atomically (see `crl.datasets.lease`), so concurrent writers of one name
        each get their own. A new begin is refused while an unfinished staging version whose writer is gone
        exists (resume or remove it first); versions other live writers hold are skipped. On resume the lease is
        taken over (refused while its writer is alive), incomplete shards are discarded and
        `staging.completed()` says what survived; env spec must match. `version` pins the version number
        (refused when it is committed or claimed).
        """
        ns, nm = parse_name(name)
        if hasattr(env_spec, "to_dict"):  # a crl.envs.base.EnvSpec
            env_spec = env_spec.to_dict()
        compressors(compression)  # validates the name
        staged = self.staging_versions(name)
        status = {v: self.writer_status(f"{ns}/{nm}-v{v}") for v in staged}
        if version is not None and version in self.versions(name):
            raise DatasetError(
                f"{ns}/{nm}-v{version} is committed and immutable; new data goes to "
                f"{ns}/{nm}-v{self.next_version(name)}"
            )
        if resume and staged:
            v = staged[-1] if version is None else version
            if v not in staged:
                raise DatasetError(f"no staging version v{v} of {ns}/{nm} to resume (have {staged})")
            if status[v][0] == LIVE:
                raise DatasetError(f"{ns}/{nm}-v{v} is being written by {status[v][1]}; wait for it to finish "
                                   f"(a writer that is gone is taken over after its lease goes stale)")
            st = Staging(self.loc, DatasetId(ns, nm, v))
            if _spec_key(st.env_spec) != _spec_key(env_spec):
                raise DatasetError(f"resume of {st.id}: env spec differs from the one it was started with")
            self._hold(st, new_holder(), overwrite=True)
            st.discard_incomplete()
            return st
        unfinished = [v for v in staged if status[v][0] != LIVE]
        if unfinished:
            v = unfinished[-1]
            raise DatasetError(
                f"{ns}/{nm}-v{v} is an unfinished (staging) version whose writer is gone: resume it, or discard "
                f"it with `crl-data rm {ns}/{nm}-v{v}`"
            )
        parent_block = None
        if parent is not None:
            pm = self.manifest(parent)
            parent_block = {"id": pm["id"], "content_hash": pm["content_hash"]}
        if version is not None:
            dsid = DatasetId(ns, nm, version)
            holder = self._claim(dsid)
            if holder is None:
                raise DatasetError(f"version v{version} of {ns}/{nm} is taken; the next one is "
                                   f"v{self.next_version(name)}")
        else:
            for _ in range(1000):  # each lost race moves one number on
                dsid = DatasetId(ns, nm, self.next_version(name))
                holder = self._claim(dsid)
                if holder is not None:
                    break
            else:
                raise DatasetError(f"could not claim a version of {ns}/{nm}: too many concurrent writers")
        self.loc.makedirs(f"{staging_rel(dsid)}/shards")
        self.loc.write_json(
            f"{staging_rel(dsid)}/{STAGING_INFO}",
            {"id": str(dsid), "started": now_iso(), "env_spec": env_spec, "provenance": provenance or {},
             "parent": parent_block, "compression": compression},
        )
        st = Staging(self.loc, dsid)
        self._hold(st, holder, overwrite=False)
        return st

    def _hold(self, st: Staging, holder: dict[str, Any], overwrite: bool) -> None:
        """Make this process the lease holder of staging version `st` and keep its heartbeat going."""
        rel = claim_rel(st.id.full_name, st.id.version)
        if overwrite:
            self.loc.write_json(rel, holder)
        st.token = holder["token"]
        KEEPER.hold(self.loc, rel, holder)

    def staging(self, dataset_id: str) -> Staging:
        """Attach to an existing staging version (e.g. from another process) without touching it."""
        return Staging(self.loc, parse_id(dataset_id))

    def children(self, dataset_id: str) -> list[str]:
        """Committed versions whose manifest names `dataset_id` as parent (lineage), sorted."""
        target = str(parse_id(dataset_id))
        return [m["id"] for m in self.list() if (m.get("parent") or {}).get("id") == target]

    def dependents(self, dataset_id: str) -> list[str]:
        """Splits of `dataset_id`: committed versions that read their data from it (they break without it)."""
        target = str(parse_id(dataset_id))
        return [m["id"] for m in self.list()
                if m.get("kind") == "split" and (m.get("parent") or {}).get("id") == target]

    def remove(self, dataset_id: str, force: bool = False) -> None:
        """Delete a committed version, or an unfinished staging version of that id.

        Removing a version that splits read their data from, or a staging version a live writer holds, is
        refused (naming them) unless `force`.
        """
        dsid = parse_id(dataset_id)
        claim = claim_rel(dsid.full_name, dsid.version)
        if self.loc.exists(version_rel(dsid)):
            deps = [] if force else self.dependents(str(dsid))
            if deps:
                raise DatasetError(f"{dsid} has splits that read their data from it: {', '.join(deps)}; remove "
                                   f"them first (`crl-data rm ID`), or pass --force to leave them unreadable")
            self.loc.remove_tree(version_rel(dsid))
            self.loc.remove_file(claim)
        elif self.loc.exists(staging_rel(dsid)):
            state, who = self.writer_status(str(dsid))
            if state == LIVE and not force:
                raise DatasetError(f"{dsid} is being written by {who}; removing it would destroy that writer's "
                                   f"data: wait for it, or pass --force if it is gone")
            self.loc.remove_tree(staging_rel(dsid))
            self.loc.remove_file(claim)
        else:
            raise DatasetError(f"unknown dataset {dsid} under {self.root}")


def _spec_key(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "config"}
