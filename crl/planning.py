"""Test-time planning over a learned contrastive critic: graph search on dataset waypoints (after "Search on the
Replay Buffer", Eysenbach, Salakhutdinov, Levine 2019), the actor driven to one waypoint at a time.

Why: a Monte Carlo contrastive critic is trustworthy between states a few steps apart (the pairs it was trained on)
and saturates beyond, so on stitch data the actor is lost when the goal lies several episodes away. The planner
uses the critic only where it is good, for local hops, and lets a shortest path compose them.

Recipe (all distances are the critic's, d(s -> g) = -f(phi(s, pi(s, g)), psi(g)), the action the actor's own):
- waypoints: `count` states drawn from the run's dataset (seeded);
- graph: every waypoint's `neighbours` nearest successors and predecessors by d, weighted by d; all-pairs shortest
  paths (Dijkstra); `local` = the median distance to the `neighbours`-th nearest successor, the critic's scale of
  "a few steps";
- per episode: cost-to-go of every waypoint = the best path ending in one of the goal's `neighbours` nearest
  predecessors plus that last hop;
- per step: a goal within `local` is pursued directly; otherwise the agent follows its current waypoint until it
  is reached (goal encodings psi closer than the median psi spacing of the waypoints) or `hold` steps pass, then
  picks the unvisited waypoint within `local` with the least cost-to-go (the least hop + cost-to-go when none is
  within `local`). Waypoints already visited in the episode are never picked again (no cycles).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from crl.errors import ConfigError

QUASIMETRIC_ENERGIES = ("l2", "mrn", "iqe")
"""Energies whose minus-logit is a distance (>= 0), which shortest paths need; 'dot' is not one."""
CHUNK = 16384
"""Critic pairs per jitted call when the graph is built."""


Distance = Callable[[jax.Array, jax.Array], jax.Array]
"""`d(states [n, S], goals [n, G]) -> [n]`, >= 0: how far each goal is from its state."""


class WaypointPlanner:
    """A BatchAct (`act(obs [K, S], goals [K, G], envs) -> actions [K, A]`) that plans over waypoints; `reset(i)`
    forgets env slot i's episode (crl.ogbench_tasks.rollout_tasks calls it). Built from a run's critic with
    `from_agent`; the core takes any distance, goal encoder and goal-conditioned actor (jit-able functions)."""

    def __init__(self, distance: Distance, encode_goal: Callable[[jax.Array], jax.Array],
                 policy: Callable[[jax.Array], jax.Array], waypoints: np.ndarray,
                 goal_indices: list[int] | np.ndarray, neighbours: int = 8, hold: int = 50) -> None:
        if len(waypoints) <= neighbours:
            raise ConfigError(f"planning needs more waypoints than neighbours ({len(waypoints)} <= {neighbours})")
        self.gi = np.asarray(goal_indices, dtype=np.int64)
        self.neighbours, self.hold = int(neighbours), int(hold)
        self.states = np.asarray(waypoints, np.float32)
        self.goals = self.states[:, self.gi]
        self._dist, self._psi, self._policy = jax.jit(distance), jax.jit(encode_goal), jax.jit(policy)
        self._build_graph()
        self.slots: dict[int, dict[str, Any]] = {}

    @classmethod
    def from_agent(cls, agent: Any, params: Any, waypoints: np.ndarray, goal_indices: list[int] | np.ndarray,
                   neighbours: int = 8, hold: int = 50) -> WaypointPlanner:
        """The planner of a run: d(s -> g) = -f(phi(s, pi(s, g)), psi(g)) with the actor's own action, goal
        encoder psi, the deterministic actor. ConfigError for an energy that is not a distance ('dot')."""
        if agent.config.energy not in QUASIMETRIC_ENERGIES:
            raise ConfigError(f"planning needs a critic whose energy is a distance "
                              f"({', '.join(QUASIMETRIC_ENERGIES)}); this run's is {agent.config.energy!r}")
        key = jax.random.PRNGKey(0)

        def distance(s: jax.Array, g: jax.Array) -> jax.Array:
            a = agent.policy(params, jnp.concatenate([s, g], -1), key, deterministic=True)
            return -agent.paired_logits(params, s, a, g)

        return cls(distance, lambda g: agent.g_net.apply(params.g_encoder, g),
                   lambda x: agent.policy(params, x, key, deterministic=True), waypoints, goal_indices,
                   neighbours, hold)

    def distances(self, states: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """[n, m] d(states_i -> goals_j) over all pairs, in chunks."""
        n, m = len(states), len(goals)
        s, g = np.repeat(states, m, axis=0), np.tile(goals, (n, 1))
        out = [np.asarray(self._dist(jnp.asarray(s[i:i + CHUNK]), jnp.asarray(g[i:i + CHUNK])))
               for i in range(0, n * m, CHUNK)]
        return np.concatenate(out).reshape(n, m)

    def _build_graph(self) -> None:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import shortest_path

        n, k = len(self.states), self.neighbours
        d = self.distances(self.states, self.goals)
        np.fill_diagonal(d, np.inf)
        succ = np.argsort(d, axis=1)[:, :k]  # each waypoint's nearest successors
        pred = np.argsort(d, axis=0)[:k].T  # and nearest predecessors
        edges = {(i, int(j)) for i in range(n) for j in succ[i]} | {(int(j), i) for i in range(n) for j in pred[i]}
        rows, cols = (np.array(x) for x in zip(*sorted(edges), strict=True))
        self.paths = shortest_path(csr_matrix((d[rows, cols], (rows, cols)), shape=(n, n)), directed=True)
        self.local = float(np.median(d[np.arange(n), succ[:, -1]]))
        self.psi_goals = np.asarray(self._psi(jnp.asarray(self.goals)))
        spacing = np.linalg.norm(self.psi_goals[:, None] - self.psi_goals[None], axis=-1)
        np.fill_diagonal(spacing, np.inf)
        self.reach = float(np.median(spacing.min(axis=1)))
        self.unreachable = float(np.isinf(self.paths).mean())

    def cost_to_go(self, goal: np.ndarray) -> np.ndarray:
        """[N] shortest path from each waypoint to `goal` [G] (last hop from one of its nearest predecessors)."""
        to_goal = self.distances(self.states, goal[None])[:, 0]
        last = np.argsort(to_goal)[:self.neighbours]
        return np.min(self.paths[:, last] + to_goal[last][None, :], axis=1)

    def reset(self, i: int) -> None:
        """Env slot i starts a new episode."""
        self.slots.pop(i, None)

    def info(self) -> dict[str, Any]:
        """What identifies the planner in results."""
        return {"waypoints": len(self.states), "neighbours": self.neighbours, "hold": self.hold,
                "local_distance": self.local, "psi_reach": self.reach, "unreachable_pairs": self.unreachable}

    def _pick(self, slot: dict[str, Any], state: np.ndarray) -> int:
        """The next waypoint from `state`, or -1 for the goal itself."""
        hop = self.distances(state[None], self.goals)[0]
        score = np.where(hop <= self.local, slot["togo"], np.inf)
        if not np.isfinite(score).any():
            score = hop + slot["togo"]
        if slot["seen"]:
            score[list(slot["seen"])] = np.inf
        i = int(np.argmin(score))
        return i if np.isfinite(score[i]) else -1

    def __call__(self, obs: np.ndarray, goals: np.ndarray, envs: list[Any]) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        goal = np.asarray(goals, np.float32)[:, self.gi]
        direct = np.asarray(self._dist(jnp.asarray(obs), jnp.asarray(goal)))
        here = np.asarray(self._psi(jnp.asarray(obs[:, self.gi])))
        targets = goal.copy()
        for i in range(len(obs)):
            slot = self.slots.get(i)
            if slot is None or not np.array_equal(slot["goal"], goal[i]):
                slot = self.slots[i] = {"goal": goal[i].copy(), "togo": self.cost_to_go(goal[i]), "sub": -1,
                                        "age": 0, "seen": set()}
            slot["age"] += 1
            if direct[i] <= self.local:
                slot["sub"] = -1
                continue
            if slot["sub"] >= 0:
                reached = np.linalg.norm(here[i] - self.psi_goals[slot["sub"]]) <= self.reach
                if not reached and slot["age"] < self.hold:
                    targets[i] = self.goals[slot["sub"]]
                    continue
                slot["seen"].add(slot["sub"])
            slot["sub"], slot["age"] = self._pick(slot, obs[i]), 0
            if slot["sub"] >= 0:
                targets[i] = self.goals[slot["sub"]]
        return np.asarray(self._policy(jnp.asarray(np.concatenate([obs, targets], axis=1))), np.float32)


def dataset_waypoints(dataset_id: str, count: int, seed: int = 0, root: str | None = None) -> np.ndarray:
    """`count` observations drawn without replacement from a dataset's rows (seeded)."""
    from crl.datasets.store import DatasetStore

    if count < 1:
        raise ConfigError(f"waypoints={count} must be >= 1")
    obs = DatasetStore(root).open(dataset_id).load(["observation"])["observation"]
    idx = np.random.default_rng(seed).choice(len(obs), min(count, len(obs)), replace=False)
    return np.asarray(obs[np.sort(idx)], np.float32)
