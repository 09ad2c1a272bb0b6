"""Staging: the folder an upcoming version is written into before it is published (committed) atomically.

`<root>/<ns>/<name>/.staging-vN/` holds `staging.json` (env spec, provenance, parent, compression) and
`shards/` (shard groups plus their completion sidecars). Nothing under a dot-folder is a visible version.
"""

from __future__ import annotations

from typing import Any

from crl.datasets.ids import DatasetId
from crl.datasets.lease import KEEPER, claim_rel, describe
from crl.datasets.location import Location
from crl.datasets.manifest import MANIFEST, build_manifest, now_iso
from crl.datasets.writer import DEFAULT_SHARD_ROWS, ShardWriter
from crl.errors import DatasetError

STAGING_INFO = "staging.json"


def staging_rel(dsid: DatasetId) -> str:
    """Relative path of the staging folder of version dsid."""
    return f"{dsid.namespace}/{dsid.name}/.staging-v{dsid.version}"


def version_rel(dsid: DatasetId) -> str:
    """Relative path of a committed version."""
    return f"{dsid.namespace}/{dsid.name}/v{dsid.version}"


class Staging:
    """A version being written. Picklable (a root URL and an id), so Dask workers can receive it and write."""

    def __init__(self, loc: Location, dsid: DatasetId) -> None:
        self.loc = loc
        self.id = dsid
        self.rel = staging_rel(dsid)
        self.token: str | None = None
        """The lease token when this process claimed or resumed the version (None when attached)."""
        try:
            self.info: dict[str, Any] = loc.read_json(f"{self.rel}/{STAGING_INFO}")
        except FileNotFoundError:
            raise DatasetError(f"no staging folder for {dsid} (already committed or aborted?)") from None

    @property
    def env_spec(self) -> dict[str, Any]:
        return self.info["env_spec"]

    @property
    def compression(self) -> str:
        return self.info["compression"]

    def writer(self, worker: str = "w0", shard_rows: int = DEFAULT_SHARD_ROWS, **kwargs: Any) -> ShardWriter:
        """A ShardWriter for `worker` (unique per concurrent writer); continues after its complete shards."""
        return ShardWriter(self, worker, shard_rows, **kwargs)

    def shard_records(self) -> list[dict[str, Any]]:
        """Sidecars of the complete shards, in (worker, seq) order, which is the version's episode order."""
        names = [n for n in self.loc.listdir(f"{self.rel}/shards") if n.endswith(".json") and not n.startswith(".")]
        return [self.loc.read_json(f"{self.rel}/shards/{n}") for n in names]

    def incomplete_shards(self) -> list[str]:
        """Shard folders without a completion sidecar (being written now, or left by a killed writer)."""
        names = set(self.loc.listdir(f"{self.rel}/shards"))
        return sorted(n for n in names if n.endswith(".zarr") and n[: -len(".zarr")] + ".json" not in names)

    def discard_incomplete(self) -> list[str]:
        """Delete incomplete shards and stray temp files. Only safe while no writer is running (resume time)."""
        gone = self.incomplete_shards()
        for n in gone:
            self.loc.remove_tree(f"{self.rel}/shards/{n}")
        for n in self.loc.listdir(f"{self.rel}/shards"):
            if n.startswith(".") and n.endswith(".tmp"):
                self.loc.remove_file(f"{self.rel}/shards/{n}")
        return gone

    def completed(self) -> dict[str, dict[str, Any]]:
        """Per worker: complete shards, episodes, rows, the largest episode id written (`last_episode_id`) and the
        next shard sequence number. A resumed collector restarts its episodes after what is listed here."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.shard_records():
            w = out.setdefault(r["worker"], {"shards": 0, "episodes": 0, "rows": 0, "last_episode_id": None,
                                             "next_seq": 0})
            w["shards"] += 1
            w["episodes"] += r["episodes"]
            w["rows"] += r["rows"]
            last = w["last_episode_id"]
            w["last_episode_id"] = r["last_episode_id"] if last is None else max(last, r["last_episode_id"])
            w["next_seq"] = max(w["next_seq"], r["seq"] + 1)
        return out

    def signature(self) -> dict[str, Any] | None:
        """Field dtypes/shapes fixed by the first complete shard (None before any)."""
        records = self.shard_records()
        return records[0]["fields"] if records else None

    def commit(self, extra_provenance: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write manifest.json, then atomically publish the staging folder as vN. Returns the manifest.

        Refused when vN exists, when there are no shards, when shards disagree on fields, or while incomplete
        shards exist (a writer still running, or a killed one: resume first, which discards them).
        """
        from crl import code_version

        final = version_rel(self.id)
        self._check_lease()
        if self.loc.exists(f"{final}/{MANIFEST}") or self.loc.exists(final):
            raise DatasetError(f"{self.id} already exists; committed versions are immutable")
        if self.incomplete_shards():
            raise DatasetError(
                f"{self.id} has incomplete shards {self.incomplete_shards()[:3]}: close every writer first "
                "(or resume, which discards what a killed writer left)"
            )
        records = self.shard_records()
        if not records:
            raise DatasetError(f"{self.id} has no complete shards; nothing to commit")
        sigs = {repr(r["fields"]) for r in records}
        if len(sigs) > 1:
            raise DatasetError(f"shards of {self.id} disagree on fields/dtypes; cannot commit")
        provenance = {**self.info.get("provenance", {}), **(extra_provenance or {})}
        manifest = build_manifest(
            self.id,
            created=now_iso(),
            parent=self.info.get("parent"),
            env_spec=self.env_spec,
            provenance=provenance,
            code_version=code_version(),
            compression=self.compression,
            fields=records[0]["fields"],
            shards=records,
        )
        self.loc.write_json(f"{self.rel}/{MANIFEST}", manifest)
        self.loc.rename_dir(self.rel, final)
        for r in records:  # tidy: sidecars and staging info are redundant once the manifest is published
            self.loc.remove_file(f"{final}/{r['path'][: -len('.zarr')]}.json")
        self.loc.remove_file(f"{final}/{STAGING_INFO}")
        self.loc.make_read_only(final)
        self._release()
        return manifest

    def publish(self) -> None:
        """Publish a staging folder that already holds its final manifest.json (a copy from another root)."""
        self._check_lease()
        self.loc.rename_dir(self.rel, version_rel(self.id))
        self.loc.make_read_only(version_rel(self.id))
        self._release()

    def abort(self) -> None:
        """Delete the staging folder and everything written into it, and give up the version's claim."""
        if self.loc.exists(self.rel):
            self.loc.remove_tree(self.rel)
        if self.token is not None:
            self.loc.remove_file(claim_rel(self.id.full_name, self.id.version))
        self._release()

    def _check_lease(self) -> None:
        """Refuse to publish when another writer took the version over (this one was presumed gone)."""
        if self.token is None:
            return
        try:
            lease = self.loc.read_json(claim_rel(self.id.full_name, self.id.version))
        except FileNotFoundError:
            raise DatasetError(f"{self.id} was removed while this writer was writing it (`crl-data rm --force`); "
                               "not publishing it") from None
        if lease.get("token") != self.token:
            raise DatasetError(f"{self.id} was taken over by {describe(lease)} (this writer's lease went stale); "
                               "not publishing it")

    def _release(self) -> None:
        if self.token is not None:
            KEEPER.release(self.loc, claim_rel(self.id.full_name, self.id.version))
