"""Learning: a short run of the CPU preset on point_u_maze clearly beats the untrained policy.

Threshold: eval success >= 0.5 after 30 epochs (384k env steps at the preset's 256 envs x 50 steps; the preset's
runs of seeds 0-3 are at 0.66-0.67 there: 4 of u's 6 goal cells); the untrained deterministic policy scores ~0.
The full CPU preset reaches and holds 1.0 on seeds 0-3 (README ## Training). Marked slow (about a minute of one
core plus compile); CI runs it in `pytest -m slow`. The default run's learning test is
tests/test_offline.py's, on the same Learner (one SGD code path, tested there).
"""

from __future__ import annotations

import jax
import pytest

from crl.config import TrainConfig
from crl.train import Trainer


@pytest.mark.slow
def test_short_run_learns_point_u_maze() -> None:
    base = TrainConfig.preset("cpu")
    cfg = base.replace(total_env_steps=30 * base.env_steps_per_epoch)
    trainer = Trainer(cfg)
    ts = trainer.init(jax.random.PRNGKey(cfg.seed))
    key = jax.random.PRNGKey(123)
    before = float(trainer.evaluate(ts, key)["eval/success"])
    for _ in range(cfg.num_epochs):
        ts, metrics, _ = trainer.epoch(ts)
    after = trainer.evaluate(ts, key)
    assert float(metrics["critic/accuracy"]) > 0.02
    assert float(after["eval/success"]) >= 0.5, (before, after)
    assert float(after["eval/success"]) >= before + 0.25
