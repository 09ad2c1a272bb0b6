"""Policies by name, as the collector names them (`crl.policies.PolicySpec`): `checkpoint:RUN_DIR`,
`oracle` (point mazes: the BFS-waypoint controller), `random` (uniform actions).

`resolve_policy(name, env)` returns a `Policy`: the env it acts in (for a checkpoint the run's env rebuilt from its
spec unless `env` is given, which must then fit the run's sizes), a jittable `act`, and what to record about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crl.errors import ConfigError
from crl.policies import PolicySpec, check_fits, policy_fn

POLICY_NAMES = ("checkpoint:RUN_DIR", "oracle", "random")


@dataclass(frozen=True)
class Policy:
    """A policy ready to evaluate: `act(obs)` (or `act(obs, key)` when `keyed`) on observations [N, obs_size]."""

    name: str
    """The name as given (`checkpoint:RUN_DIR`, `oracle`, `random`)."""
    kind: str
    """checkpoint, oracle or random."""
    env: Any
    """The env it is evaluated in."""
    act: Any
    """`act(obs [N, obs_size]) -> actions [N, action_size]` in [-1, 1], jittable."""
    keyed: bool = False
    """True when `act` takes a per-step PRNG key (the random policy)."""
    run_dir: Path | None = None
    step: int | None = None
    """Checkpoint step (epochs done) of a checkpoint policy."""
    loaded: Any = None
    """The `crl.checkpoint.LoadedAgent` of a checkpoint policy (critic for the geodesic probe), else None."""

    def record(self) -> dict[str, Any]:
        """What the JSON outputs record about the policy (`trained_on`: the dataset id of an offline run's config)."""
        config = dict(getattr(self.loaded, "config", None) or {})
        return {"policy": self.name, "kind": self.kind, "run": str(self.run_dir) if self.run_dir else None,
                "checkpoint_step": self.step, "run_kind": getattr(self.loaded, "kind", None),
                "trained_on": config.get("dataset")}


def make_env(name: str, **overrides: Any) -> Any:
    """`crl.envs.make` (unknown names raise ConfigError listing the registered ones)."""
    from crl.envs import make

    return make(name, **overrides)


def resolve_policy(name: str, env: Any | str | None = None, step: int | None = None,
                   env_overrides: dict[str, Any] | None = None) -> Policy:
    """The policy `name` in `env` (an env, an env name, or None = the run's env for a checkpoint).

    `env_overrides` (e.g. episode_length) apply to an env built here. Raises ConfigError for an unknown name, a
    missing run, an oracle outside point mazes, or a run whose sizes do not fit the env."""
    overrides = dict(env_overrides or {})
    if isinstance(env, str):
        env = make_env(env, **overrides)
    if name.startswith("checkpoint:") and len(name) > len("checkpoint:"):
        from crl.checkpoint import load_agent
        from crl.envs import task_env_from_spec

        run = Path(name[len("checkpoint:"):]).expanduser()
        if not run.exists():
            raise ConfigError(f"no run folder {run}; pass --policy checkpoint:RUN_DIR with a folder written by "
                              f"`crl-train ... --out RUN_DIR`")
        loaded = load_agent(run, step)
        if env is None:
            env = task_env_from_spec(loaded.env_spec, **overrides)
        check_fits(f"run {run}", loaded.env_spec, env, "drop --env or pick an env of the same family")
        return Policy(name, "checkpoint", env, loaded.act, False, loaded.run_dir, loaded.step, loaded)
    if name in ("oracle", "random"):
        if env is None:
            raise ConfigError(f"--policy {name} needs --env (e.g. point_u_maze)")
        fn, _ = policy_fn(PolicySpec(name), env)
        if name == "random":
            return Policy(name, "random", env, fn, True)
        return Policy(name, "oracle", env, lambda obs: fn(obs, None))
    raise ConfigError(f"unknown --policy {name!r}; use one of {', '.join(POLICY_NAMES)}")

