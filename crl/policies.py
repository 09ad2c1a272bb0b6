"""Policies by name, as every command names them (`--policy crl | random | oracle | checkpoint:PATH`), and the one
check that a policy or dataset fits an env (its state, goal and action sizes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crl.errors import ConfigError

POLICIES = ("crl", "random", "oracle", "checkpoint:PATH")
"""What `--policy` accepts ('crl': a CRL agent training online; only a collector has one)."""


@dataclass(frozen=True)
class PolicySpec:
    """A parsed `--policy` value: kind in {crl, random, oracle, checkpoint} and the checkpoint path if any."""

    kind: str
    path: str | None = None

    @classmethod
    def parse(cls, text: str) -> PolicySpec:
        """ConfigError naming the valid values for anything else."""
        if text in ("crl", "random", "oracle"):
            return cls(text)
        if text.startswith("checkpoint:") and len(text) > len("checkpoint:"):
            return cls("checkpoint", text[len("checkpoint:"):])
        raise ConfigError(f"unknown --policy {text!r}; use one of {', '.join(POLICIES)}")

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


def sizes(spec: Any) -> tuple[int, int, int]:
    """(state, goal, action) sizes of an env or of an env spec dict (a run's or a dataset's)."""
    if isinstance(spec, dict):
        return int(spec["state_size"]), int(spec["goal_size"]), int(spec["action_size"])
    return int(spec.state_size), int(spec.goal_size), int(spec.action_size)


def check_fits(what: str, spec: Any, target: Any, fix: str) -> None:
    """ConfigError unless `spec` (an env spec dict or env: a run's, a dataset's) has `target`'s sizes.

    `what` names the source (e.g. "run runs/u"), `fix` says what to do instead."""
    have, want = sizes(spec), sizes(target)
    if have != want:
        name = spec.get("name", "?") if isinstance(spec, dict) else spec.spec.name
        target_name = target.get("name", "?") if isinstance(target, dict) else target.spec.name
        raise ConfigError(f"{what} was made on {name} (state/goal/action sizes {have}), which does not fit "
                          f"{target_name} {want}; {fix}")


def policy_fn(spec: PolicySpec, env: Any, deterministic: bool = True, step: int | None = None
              ) -> tuple[Any, Any]:
    """A fixed policy in `env` as `act(obs, key) -> actions` in [-1, 1] (jit-able), with the loaded run
    (crl.checkpoint.LoadedAgent) of a checkpoint policy, else None. The one resolver of `random`, `oracle` and
    `checkpoint:PATH` for collectors and evaluators; ConfigError for 'crl' (it trains: only a collector has one), an
    oracle outside point mazes, or a run whose sizes do not fit `env`."""
    if spec.kind == "random":
        from crl.rollout import random_policy

        return random_policy(env.action_size), None
    if spec.kind == "oracle":
        from crl.envs.oracle import oracle_action

        if getattr(env, "family", None) != "point":
            raise ConfigError(f"--policy oracle drives point mazes only, not {env.spec.name}; use a point_*_maze env")
        return (lambda obs, key: oracle_action(env, obs)), None
    if spec.kind == "checkpoint":
        from crl.checkpoint import load_agent

        la = load_agent(spec.path, step)  # any kind of run; params hold the evaluated (Polyak-averaged) actor
        check_fits(f"run {spec.path}", la.env_spec, env, "pick an env of the run's family")
        return (lambda obs, key: la.agent.policy(la.params, obs, key, deterministic=deterministic)), la
    raise ConfigError("--policy crl trains online: only `crl-data collect` runs it")
