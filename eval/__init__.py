"""Evaluators: goal reaching, stitching distance, geodesicity; reports and plots.

Python API (the `crl-eval` commands wrap these; each writes JSON + PNG and returns the result dict):
`run_goals(policy, env=None, episodes=None, seed=None, ...)`, `run_stitching(policy, env=None, split=None, ...)`,
`run_geodesic(policy, env=None, pairs=2000, goal=None, ...)`, and `geodesicity(maze, energy, num_pairs, seed)` for
any energy function. Policies are named as the collector names them: `checkpoint:RUN_DIR`, `oracle`, `random`
(`resolve_policy`). The rollouts themselves are `crl.goal_rollouts`'s, shared with the trainer.
"""

from crl.eval.geodesic import geodesicity, run_geodesic
from crl.eval.goals import run_goals
from crl.eval.policies import Policy, resolve_policy
from crl.eval.stitching import run_stitching

__all__ = ["Policy", "geodesicity", "resolve_policy", "run_geodesic", "run_goals", "run_stitching"]
