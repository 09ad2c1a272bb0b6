"""Shared test setup: JAX's persistent compilation cache (keeps CI fast) and a temporary data root."""

from __future__ import annotations

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
