"""Orbax checkpoints of a run's TrainState, with the resolved config stored alongside (self-describing).

Layout: `<run>/checkpoints/<step>/{state, config}` managed by an orbax CheckpointManager (it writes into a
temporary folder and renames it when complete, so a half-written checkpoint is never picked up). The step is the
number of epochs done. `load_checkpoint(path)` rebuilds the trainer from the stored config alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from crl.config import TrainConfig
from crl.errors import ConfigError

if TYPE_CHECKING:
    from crl.train import Trainer, TrainState


def checkpoint_dir(run_dir: str | Path) -> Path:
    """Where a run keeps its checkpoints."""
    return Path(run_dir).absolute() / "checkpoints"


def manager(run_dir: str | Path, max_to_keep: int = 3) -> ocp.CheckpointManager:
    """A CheckpointManager for a run folder (creates the folder)."""
    return ocp.CheckpointManager(
        checkpoint_dir(run_dir),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
    )


def pack_state(tree: Any) -> dict[str, Any]:
    """The stored layout of a state pytree: non-empty leaves by flat index (`leaf_00000`, ...). Orbax refuses
    zero-size arrays, and mjx.Data has some (e.g. `act`). Works on arrays and on abstract ShapeDtypeStructs."""
    return {f"leaf_{i:05d}": x for i, x in enumerate(jax.tree.leaves(tree)) if math.prod(x.shape) > 0}


def unpack_state(stored: dict[str, Any], abstract: Any) -> Any:
    """Inverse of `pack_state`, shaped like `abstract` (zero-size leaves rebuilt as zeros)."""
    leaves, treedef = jax.tree.flatten(abstract)
    return jax.tree.unflatten(treedef, [stored.get(f"leaf_{i:05d}", jnp.zeros(x.shape, x.dtype))
                                        for i, x in enumerate(leaves)])


def save(mngr: ocp.CheckpointManager, step: int, state: TrainState, config: TrainConfig) -> None:
    """Save state + config at `step` and wait until it is committed (atomic rename by orbax)."""
    mngr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(pack_state(state)), config=ocp.args.JsonSave(config.to_dict())))
    mngr.wait_until_finished()


def read_config(mngr: ocp.CheckpointManager, step: int | None = None) -> TrainConfig:
    """The config stored with a checkpoint (latest by default)."""
    step = _step(mngr, step)
    out = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
    return TrainConfig.from_dict(out["config"])


def restore(mngr: ocp.CheckpointManager, trainer: Trainer, step: int | None = None) -> TrainState:
    """The TrainState of a checkpoint (latest by default), shaped by `trainer`'s config."""
    step = _step(mngr, step)
    abstract = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    want = pack_state(abstract)
    try:
        got = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(want)))["state"]
    except (ValueError, KeyError, TypeError) as e:
        reason = str(e).splitlines()[0][:200]
    else:
        bad = [k for k, v in want.items() if k not in got or tuple(got[k].shape) != tuple(v.shape)]
        if not bad:
            return unpack_state(got, abstract)
        reason = f"{len(bad)} arrays differ in shape or are missing, first {bad[0]}"
    raise ConfigError(f"checkpoint {step} in {mngr.directory} does not fit the training state of this crl "
                      f"version and its stored config (written by an older layout?): {reason}")


def load_checkpoint(path: str | Path, step: int | None = None, env: Any | None = None) -> tuple[TrainConfig, Any]:
    """(config, TrainState) from a run folder or its `checkpoints` folder; params are `state.agent.params`."""
    from crl.train import Trainer

    path = Path(path).absolute()
    run_dir = path.parent if path.name == "checkpoints" else path
    if not checkpoint_dir(run_dir).is_dir():
        raise ConfigError(f"no checkpoints under {run_dir}; pass a run folder written by `crl-train online --out`")
    mngr = manager(run_dir)
    config = read_config(mngr, step)
    trainer = Trainer(config, env)
    return config, restore(mngr, trainer, step)


def _step(mngr: ocp.CheckpointManager, step: int | None) -> int:
    if step is None:
        step = mngr.latest_step()
    if step is None or step not in mngr.all_steps():
        raise ConfigError(f"no checkpoint {'found' if step is None else step} in {mngr.directory}; "
                          f"available: {list(mngr.all_steps())}")
    return step


# ---- loading any run as an agent or a policy (evaluators, collectors, fine-tuning) ---------------------------------
@dataclass(frozen=True)
class LoadedAgent:
    """A run's agent: the static `CRLAgent`, its evaluation params (critic + the evaluated actor), the env spec
    (a dict with `layout_text`: `crl.envs.env_from_spec` rebuilds the env), the run's kind and checkpoint step."""

    agent: Any
    params: Any
    env_spec: dict[str, Any]
    kind: str
    step: int
    config: dict[str, Any]
    run_dir: Path

    def act(self, obs: jax.Array) -> jax.Array:
        """Deterministic actions (tanh of the mean) for observations [N, observation_size]; jit-able."""
        return self.agent.policy(self.params, obs, jax.random.PRNGKey(0), deterministic=True)


@dataclass(frozen=True)
class LoadedPolicy:
    """A run's deterministic actor as a function of observations, with the env spec it acts in."""

    env_spec: dict[str, Any]
    act: Callable[[jax.Array], jax.Array]
    kind: str
    step: int
    run_dir: Path


def load_agent(path: str | Path, step: int | None = None) -> LoadedAgent:
    """The agent and evaluation params of any run folder (latest checkpoint unless `step`)."""
    from crl.agent import CRLAgent
    from crl.train import Trainer

    config, ts = load_checkpoint(path, step)
    run_dir = Path(path).absolute()
    run_dir = run_dir.parent if run_dir.name == "checkpoints" else run_dir
    env_spec = Trainer(config).env.spec.to_dict()
    agent = CRLAgent(config.agent, env_spec["state_size"], env_spec["action_size"], env_spec["goal_size"])
    params = ts.agent.params.replace(actor=ts.actor_ema)
    return LoadedAgent(agent, params, env_spec, "online", int(ts.epoch), config.to_dict(), run_dir)


def load_policy(path: str | Path, step: int | None = None) -> LoadedPolicy:
    """A run's env spec and deterministic actor (jit-able `act(obs) -> actions`), without building a trainer."""
    la = load_agent(path, step)
    return LoadedPolicy(la.env_spec, la.act, la.kind, la.step, la.run_dir)
