"""Checkpoints of any run (online, offline, fine-tune, collector): named items keyed by tree path, plus metadata.

Layout: `<run>/checkpoints/<step>/{state, meta, <extra items>}` managed by an orbax CheckpointManager (it writes
into a temporary folder and renames it when complete, so a half-written checkpoint is never picked up). `state` is a
nested dict whose keys are the field names along each leaf's tree path (`learner/agent/params/actor/params/Dense_0/
kernel`, `buffer/state`, ...), so a checkpoint can be read without knowing the flatten order of any class, and one
part of it (the learner) without the rest. `meta` is JSON: format version, the run's kind, its config and env spec.
A run may add named items of its own (the collector: `pending`, its unfinished episodes as host arrays).

This module depends on nothing in the training layer: `load_agent(run)` and `load_policy(run)` turn any run
(whatever trained it) into an agent or a deterministic policy from its metadata alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from crl.errors import ConfigError

FORMAT = 2
"""Checkpoint format: 1 = positional leaves (no longer readable), 2 = tree-path items + meta."""


def checkpoint_dir(run_dir: str | Path) -> Path:
    """Where a run keeps its checkpoints."""
    return Path(run_dir).absolute() / "checkpoints"


def manager(run_dir: str | Path, max_to_keep: int = 3, folder: str | Path | None = None) -> ocp.CheckpointManager:
    """A CheckpointManager for a run folder's `checkpoints/` (or an explicit `folder`; created on first use)."""
    return ocp.CheckpointManager(
        Path(folder).absolute() if folder is not None else checkpoint_dir(run_dir),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
    )


# ---- tree <-> path-keyed items ---------------------------------------------------------------------------------
def _key_name(entry: Any) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def pack_state(tree: Any) -> dict[str, Any]:
    """A pytree as a nested dict keyed by the names along each leaf's path. Zero-size leaves are left out (orbax
    refuses them; mjx.Data has some); works on arrays and on abstract ShapeDtypeStructs."""
    out: dict[str, Any] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if math.prod(leaf.shape) == 0:
            continue
        node = out
        names = [_key_name(p) for p in path] or ["value"]
        for name in names[:-1]:
            node = node.setdefault(name, {})
        node[names[-1]] = leaf
    return out


def unpack_state(stored: dict[str, Any], abstract: Any, where: str = "checkpoint") -> Any:
    """Inverse of `pack_state`, shaped like `abstract` (zero-size leaves rebuilt as zeros). A missing or
    misshapen leaf is a ConfigError naming its path.

    Leaves come back as uncommitted arrays of the abstract's dtype, like a fresh `init`'s: orbax
    restores arrays committed to a device, and jit lowers committed arguments with their sharding, so a resumed run
    (or an evaluator of a loaded agent) would compile every program again instead of reusing the cached one."""
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(abstract)
    leaves = []
    for path, want in leaves_with_path:
        if math.prod(want.shape) == 0:
            leaves.append(jnp.zeros(want.shape, want.dtype))
            continue
        names = [_key_name(p) for p in path] or ["value"]
        node: Any = stored
        for name in names:
            node = node.get(name) if isinstance(node, dict) else None
        if node is None or tuple(np.shape(node)) != tuple(want.shape):
            got = "missing" if node is None else f"shape {tuple(np.shape(node))}"
            raise ConfigError(f"{where} does not fit this run: {'/'.join(names)} is {got}, expected shape "
                              f"{tuple(want.shape)} (a different config or crl version?)")
        leaves.append(_uncommitted(node, want))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _uncommitted(value: Any, want: jax.ShapeDtypeStruct) -> jax.Array:
    """`value` as an uncommitted array of `want`'s dtype on the default device (through the host: once per
    restore)."""
    return jnp.asarray(np.asarray(value), want.dtype)


# ---- save / restore --------------------------------------------------------------------------------------------
def save(mngr: ocp.CheckpointManager, step: int, state: Any, meta: dict[str, Any],
         items: dict[str, Any] | None = None) -> None:
    """Save a run state (path-keyed), its metadata and any named extra `items` (pytrees of non-empty arrays) at
    `step`; waits until committed (atomic rename by orbax)."""
    meta = {"format": FORMAT, **meta}
    extra = {name: ocp.args.StandardSave(tree) for name, tree in (items or {}).items()}
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(pack_state(state)),
                                            meta=ocp.args.JsonSave(meta), **extra), force=True)
    mngr.wait_until_finished()


def read_items(mngr: ocp.CheckpointManager, step: int, names: tuple[str, ...]) -> dict[str, Any]:
    """Named extra items of a checkpoint (as saved by `save(..., items=)`), as nested dicts of arrays."""
    if not names:
        return {}
    return dict(mngr.restore(step, args=ocp.args.Composite(**{n: ocp.args.StandardRestore() for n in names})))


def latest_step(mngr: ocp.CheckpointManager, step: int | None = None) -> int:
    """`step` if it exists, else the latest; ConfigError naming the available ones when there is none."""
    if step is None:
        step = mngr.latest_step()
    if step is None or step not in mngr.all_steps():
        raise ConfigError(f"no checkpoint {'found' if step is None else step} in {mngr.directory}; "
                          f"available: {list(mngr.all_steps())}")
    return step


def read_meta(mngr: ocp.CheckpointManager, step: int | None = None) -> dict[str, Any]:
    """The metadata of a checkpoint (latest by default). Checkpoints written before format 2 fail with one line."""
    step = latest_step(mngr, step)
    folder = Path(mngr.directory) / str(step)
    if not (folder / "meta").exists():
        raise ConfigError(f"checkpoint {folder} was written by an older crl (positional layout, format 1), "
                          f"which this version cannot read; retrain the run (or use crl at commit 0df151b)")
    meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    if "kind" not in meta and "next_seq" in meta:
        meta = _legacy_collector_meta(mngr, step, meta)
    return meta


def _legacy_collector_meta(mngr: ocp.CheckpointManager, step: int, meta: dict[str, Any]) -> dict[str, Any]:
    """The metadata of a collector checkpoint written before collectors ran under crl.loop.drive, in today's form.

    Those kept the kind implicit, a training collector's config as an item of its own (`config`), a fixed policy's
    description as `meta["source"]`, and no env spec (the config names the env). Their state and `pending` items
    have today's layout, so only the metadata needs translating."""
    folder = Path(mngr.directory) / str(step)
    config = meta.get("source", {})
    env_spec = None
    if (folder / "config").exists():
        from crl.config import TrainConfig
        from crl.envs import make

        config = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
        tc = TrainConfig.from_dict(config)
        env_spec = make(tc.env, **tc.env_kwargs()).spec.to_dict()
    return {"kind": "collector", "config": config, "env_spec": env_spec, **meta}


def restore(mngr: ocp.CheckpointManager, abstract: Any, step: int | None = None) -> Any:
    """The state of a checkpoint (latest by default), shaped like `abstract` (e.g. `jax.eval_shape(init, key)`)."""
    step = latest_step(mngr, step)
    read_meta(mngr, step)  # the one-line error for old layouts
    raw = restore_raw(mngr, step)
    return unpack_state(raw, abstract, f"checkpoint {step} in {mngr.directory}")


def restore_raw(mngr: ocp.CheckpointManager, step: int) -> dict[str, Any]:
    """The stored state of a checkpoint as a nested dict of arrays, with no target (any part can be picked)."""
    return mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]


# ---- loading any run as an agent or a policy (evaluators, collectors, fine-tuning) ---------------------------------
@dataclass(frozen=True)
class LoadedAgent:
    """A run's agent: the static `CRLAgent`, its evaluation params (critic + the evaluated actor), the env spec
    (a dict with `layout_text`: `crl.envs.env_from_spec` rebuilds the env), the run's kind and checkpoint step,
    and the learner state itself (fine-tuning continues from it)."""

    agent: Any
    params: Any
    env_spec: dict[str, Any]
    kind: str
    step: int
    config: dict[str, Any]
    run_dir: Path
    learner_state: Any = None

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


def find_checkpoints(path: str | Path) -> Path:
    """The checkpoint folder of a run: `RUN/checkpoints`, the folder itself, or a collector's worker folder
    (`<dataset version>/collector/w0`; given the version folder, its first worker)."""
    p = Path(path).expanduser().absolute()
    workers = sorted((p / "collector").iterdir()) if (p / "collector").is_dir() else []
    for cand in (p / "checkpoints", p, *(w / "checkpoints" for w in workers)):
        if cand.is_dir() and any(c.name.isdigit() for c in cand.iterdir()):
            return cand
    raise ConfigError(f"no checkpoints under {p}; pass a run folder written by `crl-train` (online, offline, "
                      f"finetune) or a collector's dataset version folder")


def _learner_config(meta: dict[str, Any]) -> Any:
    """The LearnerConfig inside any run config (nested, or the flat layout of older collector configs)."""
    from crl.config import AgentConfig, LearnerConfig

    cfg = dict(meta.get("config") or {})
    learner = dict(cfg.get("learner", {}))
    for name in ("batch_size", "sgd_steps", "discount", "actor_ema", "agent", "critic_goals", "actor_goals",
                 "bc_alpha"):
        if name in cfg:
            learner[name] = cfg[name]
    agent = AgentConfig(**learner.pop("agent", {}))
    return LearnerConfig(agent=agent, **learner)


def learner_config_of(path: str | Path) -> Any:
    """The LearnerConfig a run's latest checkpoint was trained with (read from its metadata; no arrays loaded)."""
    folder = find_checkpoints(path)
    meta = read_meta(manager(None, folder=folder))
    try:
        return _learner_config(meta)
    except TypeError as e:
        raise ConfigError(f"checkpoints in {folder}: their config does not describe a learner ({e})") from None


def load_agent(path: str | Path, step: int | None = None) -> LoadedAgent:
    """The agent, evaluation params and learner state of any run (latest checkpoint unless `step`), built from the
    checkpoint's metadata alone (no trainer, no replay restored)."""
    from crl.learner import Learner

    folder = find_checkpoints(path)
    mngr = manager(None, folder=folder)
    step = latest_step(mngr, step)
    meta = read_meta(mngr, step)
    env_spec = meta.get("env_spec")
    if env_spec is None:
        raise ConfigError(f"checkpoint {folder}/{step} ({meta.get('kind')}) names no environment, so it holds no "
                          f"policy to load")
    try:
        learner_cfg = _learner_config(meta)
    except TypeError as e:
        raise ConfigError(f"checkpoint {folder}/{step}: its config does not describe a learner ({e})") from None
    learner = Learner(learner_cfg, env_spec["state_size"], env_spec["action_size"], env_spec["goal_size"])
    abstract = jax.eval_shape(learner.init, jax.random.PRNGKey(0))
    raw = restore_raw(mngr, step)
    if "learner" not in raw:
        raise ConfigError(f"checkpoint {folder}/{step} holds no learner (items: {sorted(raw)})")
    ls = unpack_state(raw["learner"], abstract, f"checkpoint {folder}/{step}")
    run_dir = folder.parent if folder.name == "checkpoints" else folder
    return LoadedAgent(learner.agent, Learner.eval_params(ls), env_spec, meta["kind"], step,
                       meta.get("config", {}), run_dir, ls)


def load_policy(path: str | Path, step: int | None = None) -> LoadedPolicy:
    """A run's env spec and deterministic actor (jit-able `act(obs) -> actions`), without building a trainer."""
    la = load_agent(path, step)
    return LoadedPolicy(la.env_spec, la.act, la.kind, la.step, la.run_dir)


def write_json(path: Path, obj: dict[str, Any]) -> None:
    """Write a JSON file atomically (temp file + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)
