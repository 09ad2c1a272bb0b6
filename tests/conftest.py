"""Shared test setup: JAX's persistent compilation cache (keeps CI fast) and a temporary data root."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest

_CACHE_DIR = Path(os.environ.get("CRL_JAX_CACHE", Path.home() / ".cache" / "crl" / "jax"))
_CACHE_DIR.mkdir(parents=True, exist_ok=True)
jax.config.update("jax_compilation_cache_dir", str(_CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh dataset root for one test, exported as CRL_DATA_DIR so CLIs in subprocesses use it too."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("CRL_DATA_DIR", str(root))
    return root
