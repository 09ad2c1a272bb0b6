"""Where datasets live: a root directory or any fsspec URL zarr supports, behind a few file operations.

The store only needs: list a folder, read/write small JSON files atomically, create a file only if it does not
exist (the version claim), rename a folder (atomic on local filesystems), delete a tree, hash every file of a
tree, and hand zarr a store for a folder.

Object stores (`s3://bucket/prefix`, ...) take their settings the way fsspec does: credentials and endpoint from
the usual environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, `AWS_PROFILE`),
fsspec's config (`FSSPEC_S3_ENDPOINT_URL`, `~/.config/fsspec/`), or `storage_options` here. Listings are never
cached: other processes write into the same root (see docs/storage.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import fsspec
import zarr
from fsspec.implementations.local import LocalFileSystem

from crl.errors import DatasetError

DEFAULT_ROOT = "./data"


def resolve_root(root: str | os.PathLike[str] | None = None) -> str:
    """`root`, else $CRL_DATA_DIR, else ./data (local paths made absolute)."""
    text = str(root) if root is not None else os.environ.get("CRL_DATA_DIR") or DEFAULT_ROOT
    if "://" in text:
        return text.rstrip("/")
    return str(Path(text).expanduser().resolve())


#: Object-store protocols whose first path component is a bucket (checked to exist before use).
BUCKET_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "abfs", "az")


class Location:
    """A dataset root plus the filesystem it lives on. Paths passed to methods are relative to the root."""

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 storage_options: dict[str, Any] | None = None) -> None:
        self.url = resolve_root(root)
        self.storage_options = dict(storage_options or {})
        opts = dict(self.storage_options)
        if "://" in self.url and not self.url.startswith(("file://", "memory://")):
            opts.setdefault("use_listings_cache", False)  # other writers change the root under us
        self.fs, self.base = fsspec.core.url_to_fs(self.url, **opts)
        self.local = isinstance(self.fs, LocalFileSystem)
        if not self.local:
            _quiet_orphaned_connection_errors()
        self._zarr_options = opts

    def __getstate__(self) -> dict[str, Any]:  # pickles as its URL (Dask workers reopen it)
        return {"url": self.url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state.get("storage_options"))

    @property
    def protocol(self) -> str:
        """`file`, `s3`, `memory`, ..."""
        return "file" if self.local else self.url.split("://", 1)[0]

    def check(self) -> None:
        """Raise a one-line DatasetError when the root cannot be used: a missing bucket, refused credentials, an
        unreachable endpoint. Local roots and URLs without buckets pass (a missing folder is an empty root)."""
        if self.protocol not in BUCKET_PROTOCOLS:
            return
        bucket = self.base.split("/", 1)[0]
        try:
            try:
                self.fs.ls(self.base, detail=False)  # a real request: refused credentials fail here
                return
            except FileNotFoundError:  # an empty prefix, or no bucket at all
                found = self.fs.exists(bucket)
        except Exception as e:  # noqa: BLE001 - the backends raise many kinds
            raise storage_error(self.url, e, self.storage_options) from e
        if not found:
            where = _endpoint_note(self.storage_options)
            raise DatasetError(f"bucket {bucket!r} of {self.url} does not exist{where}: create it "
                               f"(e.g. `aws s3 mb {self.protocol}://{bucket}`) or fix --root / CRL_DATA_DIR")

    def path(self, rel: str) -> str:
        """Absolute path (fs-native) of `rel`."""
        return f"{self.base.rstrip('/')}/{rel}" if rel else self.base

    def uri(self, rel: str) -> str:
        """Something zarr and fsspec accept for `rel` (a local path or a URL)."""
        return self.path(rel) if self.local else f"{self.url}/{rel}"

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self.path(rel)))

    def listdir(self, rel: str) -> list[str]:
        """Names (not paths) in folder `rel`; empty when it does not exist."""
        p = self.path(rel)
        if self.local and not os.path.isdir(p):
            return []
        try:
            entries = self.fs.ls(p, detail=False)
        except FileNotFoundError:
            return []
        return sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def makedirs(self, rel: str) -> None:
        self.fs.makedirs(self.path(rel), exist_ok=True)

    def read_json(self, rel: str) -> Any:
        try:
            return json.loads(self.fs.cat_file(self.path(rel)).decode())  # one GET: no ETag check between reads
        except FileNotFoundError:
            raise
        except (ValueError, UnicodeDecodeError) as e:
            raise DatasetError(f"{self.uri(rel)} is not valid JSON ({e}); the file is corrupted") from e

    def write_json(self, rel: str, obj: Any) -> None:
        """Write JSON so a reader sees either nothing or the whole file (tmp + rename locally)."""
        data = (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode()
        if self.local:
            final = Path(self.path(rel))
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        else:  # object stores: a single PUT is atomic
            self.fs.pipe_file(self.path(rel), data)

    def create_exclusive(self, rel: str, obj: Any) -> bool:
        """Write JSON `obj` at `rel` only if nothing is there; False when it already exists. Atomic: `O_EXCL`
        locally, a conditional PUT (`If-None-Match: *`) on object stores, so two writers never both win."""
        data = (json.dumps(obj, indent=2) + "\n").encode()
        if self.local:
            final = Path(self.path(rel))
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            return True
        try:
            self.fs.pipe_file(self.path(rel), data, mode="create")
        except FileExistsError:
            return False
        except OSError as e:  # s3fs reports a failed precondition (412) as a generic OSError
            if "PreconditionFailed" in repr(e) or "412" in str(e) or "precondition" in str(e).lower():
                return False
            raise
        return True

    def rename_dir(self, src: str, dst: str) -> None:
        """Move folder src to dst; atomic (and refused if dst exists) on local filesystems.

        On object stores there is no atomic rename: every file but manifest.json is copied first and
        manifest.json last, and a version only counts as committed once its manifest.json exists.
        """
        if self.exists(dst):
            raise DatasetError(f"{self.uri(dst)} already exists; committed versions are immutable")
        if self.local:
            try:
                os.rename(self.path(src), self.path(dst))
            except OSError as e:
                raise DatasetError(f"cannot publish {self.uri(dst)}: {e}") from e
            return
        files = sorted(self.fs.find(self.path(src)))
        last = [f for f in files if f.endswith("/manifest.json")]
        rest = [f for f in files if f not in last]
        for batch in (rest, last):  # each batch copied concurrently (server-side copies)
            if batch:
                self.fs.copy(batch, [self.path(dst) + f[len(self.path(src)):] for f in batch])
        self.fs.rm(self.path(src), recursive=True)

    def write_files(self, files: dict[str, bytes]) -> None:
        """Write many files at once (relative path -> bytes; concurrently on object stores)."""
        if self.local:
            for rel, data in files.items():
                path = Path(self.path(rel))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            return
        self.fs.pipe({self.path(rel): data for rel, data in files.items()})

    def upload_tree(self, local_dir: str, rel: str) -> None:
        """Upload every file under local folder `local_dir` to folder `rel` (concurrently on object stores)."""
        base = Path(local_dir)
        files = sorted(p for p in base.rglob("*") if p.is_file())
        if self.local:
            shutil.copytree(base, self.path(rel), dirs_exist_ok=True)
            return
        self.fs.put([str(p) for p in files], [self.path(f"{rel}/{p.relative_to(base).as_posix()}") for p in files])

    def remove_tree(self, rel: str) -> None:
        p = self.path(rel)
        if self.local:
            shutil.rmtree(p, ignore_errors=False)
        elif self.fs.exists(p):
            self.fs.rm(p, recursive=True)

    def remove_file(self, rel: str) -> None:
        p = self.path(rel)
        if self.fs.exists(p):
            self.fs.rm(p)

    def hash_tree(self, rel: str) -> tuple[str, int]:
        """sha256 over every file under `rel` (sorted relative path, length, bytes) and the total bytes.

        This is the shard content hash of the format: any changed, added or removed byte changes it.
        """
        root = self.path(rel).rstrip("/")
        h = hashlib.sha256()
        total = 0
        files = sorted(self.fs.find(root))
        fetched = {} if self.local else self.fs.cat(files, on_error="raise")  # one concurrent batch
        if not isinstance(fetched, dict):  # a single file: fsspec returns its bytes
            fetched = {files[0]: fetched}
        for f in files:
            relname = f[len(root) + 1:]
            data = self.fs.cat_file(f) if self.local else fetched[f]
            h.update(relname.encode() + b"\0" + len(data).to_bytes(8, "little"))
            h.update(data)
            total += len(data)
        return h.hexdigest(), total

    def make_read_only(self, rel: str) -> None:
        """Drop write permission on every file under rel (local only): a committed version is immutable."""
        if not self.local:
            return
        for dirpath, _dirs, files in os.walk(self.path(rel)):
            for name in files:
                p = os.path.join(dirpath, name)
                os.chmod(p, os.stat(p).st_mode & ~0o222)

    def zarr_store(self, rel: str, read_only: bool = False) -> zarr.abc.store.Store:
        """A zarr v3 store rooted at folder rel."""
        if self.local:
            return zarr.storage.LocalStore(self.path(rel), read_only=read_only)
        return zarr.storage.FsspecStore.from_url(self.uri(rel), storage_options=self._zarr_options,
                                                 read_only=read_only)


def _endpoint_note(options: dict[str, Any] | None = None) -> str:
    options = options or {}
    url = (options.get("endpoint_url") or options.get("client_kwargs", {}).get("endpoint_url")
           or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
    return f" at {url}" if url else ""


def storage_error(url: str, e: BaseException, options: dict[str, Any] | None = None) -> DatasetError:
    """A one-line DatasetError for a failure of the object store behind `url` (credentials, endpoint, bucket)."""
    text = " ".join(f"{type(e).__name__}: {e}".split())[:200]
    if isinstance(e, PermissionError) or "403" in text or "AccessDenied" in text or "InvalidAccessKeyId" in text:
        return DatasetError(f"the object store refused access to {url} ({text}): check the credentials "
                            "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE or fsspec storage options, "
                            "see docs/storage.md)")
    return DatasetError(f"cannot use {url}{_endpoint_note(options)} ({text}): check the endpoint (AWS_ENDPOINT_URL) "
                        "and that the server is running")


class _OrphanedConnectionErrors(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" records of a lost connection: aiohttp's request-body
    tasks whose request reports the same failure itself (one line, through the CLI's error policy)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not isinstance(exc, _connection_error_types())


def _quiet_orphaned_connection_errors() -> None:
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, _OrphanedConnectionErrors) for f in log.filters):
        log.addFilter(_OrphanedConnectionErrors())


def _connection_error_types() -> tuple[type[BaseException], ...]:
    """Exception types that mean the storage server could not be reached or stopped answering mid-request."""
    # (not all of ConnectionError: a BrokenPipeError is a closed stdout, `crl-data list | head`)
    types: list[type[BaseException]] = [ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError]
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError

        types += [BotoConnectionError, HTTPClientError]
    except ImportError:
        pass
    try:
        from aiohttp import ClientConnectionError

        types.append(ClientConnectionError)
    except ImportError:
        pass
    try:
        from fsspec.exceptions import FSTimeoutError

        types.append(FSTimeoutError)
    except ImportError:
        pass
    return tuple(types)


def connection_failure(e: BaseException) -> DatasetError | None:
    """A one-line DatasetError when `e` (or an exception it was raised from or while handling) is a lost
    connection to a storage server, e.g. an object store that went away in the middle of a command; None for
    anything else. Nothing committed is affected by such a failure: a version is published by writing its manifest
    last, so an interrupted write stays a staging version."""
    types = _connection_error_types()
    seen: set[int] = set()
    cause: BaseException | None = e
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, types):
            text = " ".join(f"{type(cause).__name__}: {cause}".split())[:200]
            return DatasetError(
                f"lost the connection to the storage server{_endpoint_note()} in the middle of the command ({text}); "
                "committed versions are not affected and an unfinished one stays staging: check that the server "
                "is running (AWS_ENDPOINT_URL), then re-run (a collection with --resume; `crl-data list --all` "
                "shows what is unfinished)")
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    return None
