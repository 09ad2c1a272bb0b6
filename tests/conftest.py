"""Shared test setup: JAX's persistent compilation cache (keeps CI fast) and a temporary data root."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from crl import enable_compile_cache
from crl.config import TrainConfig
from crl.pipelines.collector import CollectConfig

enable_compile_cache()

pytest_plugins = ["s3_server"]  # the real S3-API server fixtures (tests/s3_server.py)

# The one tiny online trainer of the test suite (4 envs x 10 steps, episodes of 30, batch 16, 2 SGD steps, replay
# 400, depth 4, width 32, repr 8; trained on the task env itself, as a CRL collector is). Every file that trains
# online or collects with a CRL policy uses these shapes (changing only seeds, budgets and the eval/checkpoint
# cadence, which compile nothing), so its epoch, init and evaluation compile once per cold run and load from JAX's
# persistent compile cache everywhere else: each distinct shape costs ~70 s of compile on a 2-core CPU.
TINY_TRAIN = TrainConfig.preset(
    "cpu", env="point_u_maze", episode_length=30, num_envs=4, unroll_length=10, batch_size=16, sgd_steps=2,
    replay_size=400, min_replay_size=80, total_env_steps=400, eval_every=5, num_eval_envs=4, checkpoint_every=2,
    depth=4, width=32, repr_dim=8, train_env_overrides={},
)


# An oracle dataset with action noise on the 5x5 U: 24,000 transitions, episodes of 250 steps that chain goals
# (tests/test_offline.py learns from it; tests/test_collect.py collects the same shapes, sharing the compiled rollout).
ORACLE_COLLECT = CollectConfig(
    env="point_u_maze", dataset="test/u-oracle", policy="oracle", env_steps=24_000, num_envs=32, unroll_length=50,
    episode_length=250, action_noise=0.2, goal_schedule="navigate", seed=1)


@pytest.fixture(scope="session")
def tiny_trainer() -> Any:
    """One `Trainer(TINY_TRAIN)` per test process: its jitted functions trace once (MJX tracing costs ~12 s a
    trainer), not once per test. Its state is functional, so sharing it shares nothing between tests."""
    from crl.train import Trainer

    return Trainer(TINY_TRAIN)


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
