"""Where a collector worker keeps its resume checkpoints: the staging folder, a local scratch folder, or the bucket.

Orbax writes checkpoints as local files, so a worker always saves into a local run folder (`checkpoint_root`): inside
the staging folder on a local root, in the scratch folder (`scratch_root`) for a root on object storage. With
`crl-data collect --checkpoints bucket` each finished checkpoint is then uploaded into the staging version,
`<staging>/collector/<worker>/`, and a resume on a host whose scratch folder lacks it (another machine, a wiped disk)
downloads it first (`BucketCheckpoints`).

The upload is safe to kill at any moment: the step's files and `metrics.jsonl` go first, then `resume.json`, one PUT
naming the step and its files, and only then are older steps deleted. Readers follow `resume.json`, so until the new
step is whole they see the previous one, which stays a valid resume point: a resumed worker discards its shards
written after whichever checkpoint it starts from (`CollectRunner.resume_items`) and re-records them identically.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from crl.checkpoint import checkpoint_dir

CHECKPOINTS = "collector"
"""The folder of a version (and of its staging folder) that holds its collector workers' run folders."""
PLACES = ("scratch", "bucket")
"""Where the resume checkpoints of a collection into object storage are kept (`--checkpoints`)."""
POINTER = "resume.json"
"""The object naming the latest complete checkpoint in the bucket: {"step": N, "files": [relative paths]}."""


def scratch_root() -> Path:
    """The local folder that holds resume checkpoints of collections into object storage: $CRL_SCRATCH_DIR, else
    ~/.cache/crl/scratch."""
    return Path(os.environ.get("CRL_SCRATCH_DIR") or "~/.cache/crl/scratch").expanduser()


def checkpoint_root(staging: Any, worker: str) -> Path:
    """The local run folder of a worker: inside the staging folder on a local root (so its checkpoints ship with the
    version); for a root on object storage, in the scratch folder, keyed by root and version (copied into the
    version when the worker finishes)."""
    if staging.loc.local:
        return Path(staging.loc.path(staging.rel)) / CHECKPOINTS / worker
    key = hashlib.sha256(staging.loc.url.encode()).hexdigest()[:12]
    return scratch_root() / key / staging.rel / CHECKPOINTS / worker


def remote_rel(staging: Any, worker: str) -> str:
    """The worker's folder in the staging version (where `--checkpoints bucket` mirrors its checkpoints)."""
    return f"{staging.rel}/{CHECKPOINTS}/{worker}"


def local_steps(run_dir: Path) -> list[int]:
    """Steps of the complete (orbax-committed) checkpoints in a local run folder, ascending."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


class BucketCheckpoints:
    """The resume checkpoints of one worker mirrored at `rel` (a folder of the dataset root `loc`)."""

    def __init__(self, loc: Any, rel: str, run_dir: Path) -> None:
        self.loc, self.rel, self.run_dir = loc, rel, Path(run_dir)
        self.pushed: int | None = None
        """The step the bucket holds (as far as this process knows)."""

    def remote(self) -> dict[str, Any] | None:
        """The bucket's pointer record, None before the first upload."""
        try:
            return self.loc.read_json(f"{self.rel}/{POINTER}")
        except FileNotFoundError:
            return None

    def pull(self) -> int | None:
        """Download the bucket's latest checkpoint (and metrics) into the run folder unless that folder holds the
        same step or a later one; returns the bucket's step (None when it has none)."""
        pointer = self.remote()
        if pointer is None:
            return None
        step = int(pointer["step"])
        have = local_steps(self.run_dir)
        if not have or have[-1] < step:
            root = checkpoint_dir(self.run_dir)
            tmp = root / f".{step}.download"  # not a step name: orbax never sees a half-downloaded step
            shutil.rmtree(tmp, ignore_errors=True)
            prefix = f"checkpoints/{step}/"
            for rel in pointer["files"]:
                dest = tmp / rel[len(prefix):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                self.loc.fs.get_file(self.loc.path(f"{self.rel}/{rel}"), str(dest))
            shutil.rmtree(root / str(step), ignore_errors=True)
            tmp.rename(root / str(step))
            if self.loc.exists(f"{self.rel}/metrics.jsonl"):
                (self.run_dir / "metrics.jsonl").write_bytes(self.loc.fs.cat_file(
                    self.loc.path(f"{self.rel}/metrics.jsonl")))
        self.pushed = step
        return step

    def push(self) -> int | None:
        """Upload the run folder's latest checkpoint if the bucket lacks it; returns the step uploaded (or None)."""
        have = local_steps(self.run_dir)
        if not have or (self.pushed is not None and have[-1] <= self.pushed):
            return None
        step = have[-1]
        base = checkpoint_dir(self.run_dir) / str(step)
        files = [f"checkpoints/{step}/{p.relative_to(base).as_posix()}" for p in sorted(base.rglob("*"))
                 if p.is_file()]
        self.loc.remove_tree(f"{self.rel}/checkpoints/{step}")  # what a killed upload of this step left
        self.loc.upload_tree(str(base), f"{self.rel}/checkpoints/{step}")
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists():
            self.loc.write_files({f"{self.rel}/metrics.jsonl": metrics.read_bytes()})
        self.loc.write_json(f"{self.rel}/{POINTER}", {"step": step, "files": files})
        for name in self.loc.listdir(f"{self.rel}/checkpoints"):
            if name != str(step):
                self.loc.remove_tree(f"{self.rel}/checkpoints/{name}")
        self.pushed = step
        return step
