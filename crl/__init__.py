"""crl: deep contrastive RL research infrastructure.

The distribution maps the repository folders `datasets/`, `pipelines/`, `eval/` onto `crl.datasets`,
`crl.pipelines`, `crl.eval` (see pyproject.toml). When `crl` is imported straight from a source checkout (the
repository root on sys.path), the same mapping is applied here so that the sub-packages still resolve.
"""

from __future__ import annotations

from pathlib import Path as _Path

from crl.errors import CrlError

__version__ = "0.1.0"
__all__ = ["CrlError", "__version__"]

_repo_root = _Path(__file__).resolve().parent.parent
if (_repo_root / "pyproject.toml").is_file() and (_repo_root / "datasets" / "__init__.py").is_file():
    # Source checkout: let crl.datasets / crl.pipelines / crl.eval resolve to the top-level folders.
    if str(_repo_root) not in __path__:
        __path__.append(str(_repo_root))


def enable_compile_cache(path: str | None = None) -> str:
    """Turn on JAX's persistent compilation cache (CLIs and tests): repeated runs skip XLA compiles.

    Location: `path`, else $CRL_JAX_CACHE, else ~/.cache/crl/jax. Returns the folder used.
    """
    import os

    import jax

    folder = _Path(path or os.environ.get("CRL_JAX_CACHE") or _Path.home() / ".cache" / "crl" / "jax")
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(folder)


def code_version() -> str:
    """The package version plus the git commit when running from a checkout (recorded in manifests)."""
    import subprocess

    try:
        sha = subprocess.run(
            ["git", "-C", str(_repo_root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(_repo_root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return f"{__version__}+g{sha}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return __version__
