"""Shared test setup: JAX's persistent compilation cache (keeps CI fast) and a temporary data root."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from crl import enable_compile_cache

enable_compile_cache()


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh dataset root for one test, exported as CRL_DATA_DIR so CLIs in subprocesses use it too."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("CRL_DATA_DIR", str(root))
    return root


def console_script(name: str) -> str:
    """Path of an installed console script of this environment (found beside the interpreter, so a test run
    as `.venv/bin/pytest` without an activated venv still runs this checkout's scripts)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


# Files whose XLA compiles take longest on a cold cache, longest first (from cold runs' per-test timings). Under
# xdist (`--dist loadfile`) files are handed out in collection order, so starting the long ones first keeps one
# worker from finishing them alone at the end.
HEAVY_FIRST = ("test_collect.py", "test_offline.py", "test_train.py", "test_eval_cli.py", "test_eval_report.py",
               "test_envs.py", "test_networks.py", "test_train_learning.py", "test_loader.py", "test_eval_goals.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the compile-heavy files first (a stable sort: the order inside a file is unchanged)."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
