"""Orbax checkpoints of a run's TrainState, with the resolved config stored alongside (self-describing).

Layout: `<run>/checkpoints/<step>/{state, config}` managed by an orbax CheckpointManager (it writes into a
temporary folder and renames it when complete, so a half-written checkpoint is never picked up). The step is the
number of epochs done. `load_checkpoint(path)` rebuilds the trainer from the stored config alone.
"""

from __future__ import annotations

import math
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
