"""Where datasets live: a root directory or any fsspec URL zarr supports, behind a few file operations.

The store only needs: list a folder, read/write small JSON files atomically, rename a folder (atomic on local
filesystems), delete a tree, hash every file of a tree, and hand zarr a store for a folder.
"""

from __future__ import annotations

import hashlib
import json
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


class Location:
    """A dataset root plus the filesystem it lives on. Paths passed to methods are relative to the root."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.url = resolve_root(root)
        self.fs, self.base = fsspec.core.url_to_fs(self.url)
        self.local = isinstance(self.fs, LocalFileSystem)

    def __getstate__(self) -> dict[str, Any]:  # pickles as its URL (Dask workers reopen it)
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])

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
        if not self.fs.exists(p):
            return []
        return sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in self.fs.ls(p, detail=False))

    def makedirs(self, rel: str) -> None:
        self.fs.makedirs(self.path(rel), exist_ok=True)

    def read_json(self, rel: str) -> Any:
        try:
            with self.fs.open(self.path(rel), "rb") as f:
                return json.loads(f.read().decode())
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
        files.sort(key=lambda p: p.endswith("/manifest.json"))
        for f in files:
            self.fs.copy(f, self.path(dst) + f[len(self.path(src)):])
        self.fs.rm(self.path(src), recursive=True)

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

    def tree_size(self, rel: str) -> int:
        """Bytes of all files under rel."""
        return int(sum(self.fs.du(self.path(rel), total=False).values()))

    def hash_tree(self, rel: str) -> tuple[str, int]:
        """sha256 over every file under `rel` (sorted relative path, length, bytes) and the total bytes.

        This is the shard content hash of the format: any changed, added or removed byte changes it.
        """
        root = self.path(rel).rstrip("/")
        h = hashlib.sha256()
        total = 0
        for f in sorted(self.fs.find(root)):
            relname = f[len(root) + 1:]
            data = self.fs.cat_file(f)
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
        return zarr.storage.FsspecStore.from_url(self.uri(rel), read_only=read_only)
