"""Typed, frozen run configuration: `AgentConfig` (networks, losses, optimisers) inside `TrainConfig` (env, rollout,
replay, schedule). Two named presets: `paper` (scaling-crl values, for GPUs) and `cpu` (the default: learns the point
mazes in minutes on a 2-core CPU). `validate()` raises ConfigError naming the values that would work.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from crl.envs.config import MazeEnvConfig
from crl.errors import ConfigError
from crl.losses import ENERGIES
from crl.networks import ACTIVATIONS, check_depth


@dataclass(frozen=True)
class AgentConfig:
    """The CRL agent: residual encoders phi(s, a), psi(g), tanh-Gaussian actor, losses and optimisers."""

    depth: int = 4
    """Dense layers inside residual blocks of the critic encoders (positive multiple of 4)."""
    actor_depth: int | None = None
    """Actor trunk depth; None = same as `depth` (the paper's 1024-layer runs used a 512-layer actor)."""
    width: int = 256
    """Hidden width of every Dense layer."""
    repr_dim: int = 64
    """Size of the representations phi(s, a) and psi(g)."""
    layer_norm: bool = True
    """LayerNorm after every hidden Dense (removing it collapses deep networks)."""
    residual: bool = True
    """Skip connection around every block of 4 layers."""
    activation: str = "swish"
    """Hidden activation: 'swish' (paper) or 'relu'."""
    energy: str = "l2"
    """Critic energy: 'l2' = -||phi - psi||_2 (paper) or 'dot' = phi . psi."""
    symmetric_infonce: bool = False
    """Add the backward (column-wise) InfoNCE term."""
    logsumexp_penalty: float = 0.1
    """Coefficient of mean(logsumexp_row^2) in the critic loss."""
    init_scale: float = 1 / 3
    """variance_scaling(scale, fan_in, uniform) kernel initialiser scale."""
    scan_blocks: bool | None = None
    """Scan over residual blocks (stacked params, compile time independent of depth) instead of unrolling
    (faster steps on CPU); None = scan from depth 512 on."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of both critic encoders."""
    alpha_lr: float = 3e-4
    """Adam learning rate of log(alpha)."""
    target_entropy_per_dim: float = -0.5
    """Target entropy = this * action_size."""
    log_std_min: float = -5.0
    """Lower bound of the actor's log-std (squashed with tanh)."""
    log_std_max: float = 2.0
    """Upper bound of the actor's log-std."""

    @property
    def resolved_actor_depth(self) -> int:
        """The actor depth actually used."""
        return self.depth if self.actor_depth is None else self.actor_depth

    def validate(self) -> None:
        """Raise ConfigError for values the networks/losses cannot use."""
        check_depth(self.depth, "depth")
        check_depth(self.resolved_actor_depth, "actor_depth")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation={self.activation!r} unknown; use one of {sorted(ACTIVATIONS)}")
        if self.energy not in ENERGIES:
            raise ConfigError(f"energy={self.energy!r} unknown; use one of {list(ENERGIES)}")
        for name in ("width", "repr_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1 (paper: width 256, repr_dim 64)")
        if not self.log_std_min < self.log_std_max:
            raise ConfigError(f"log_std_min={self.log_std_min} must be < log_std_max={self.log_std_max}")


@dataclass(frozen=True)
class TrainConfig:
    """One online training run. Counts are per epoch unless stated; an epoch = one unroll + `sgd_steps` updates."""

    env: str = "point_u_maze"
    """Environment name for `crl.envs.make`."""
    episode_length: int | None = None
    """Override of the env's episode length (None = env default)."""
    env_overrides: dict[str, Any] = field(default_factory=dict)
    """Further keyword overrides passed to `crl.envs.make`."""
    train_env_overrides: dict[str, Any] = field(default_factory=dict)
    """MazeEnvConfig overrides for the TRAINING envs only (evaluation runs the env's own task). The cpu preset uses
    {'start_cells': 'free', 'new_goal_on_success': True}: episodes start anywhere and chain goals, so the replay
    holds long trajectories across the whole maze from the first epoch (see README, Training)."""
    num_envs: int = 64
    """Parallel training environments."""
    unroll_length: int = 50
    """Env steps per environment per epoch."""
    batch_size: int = 256
    """Transitions per SGD step (also the number of InfoNCE negatives + 1)."""
    sgd_steps: int = 16
    """SGD steps (critic + actor + alpha) per epoch."""
    replay_size: int = 200_000
    """Replay capacity in transitions (rounded down to a multiple of num_envs * unroll_length)."""
    min_replay_size: int = 6_400
    """Transitions collected before SGD starts (prefill epochs only collect)."""
    total_env_steps: int = 300_000
    """Training budget in env steps (all envs together)."""
    discount: float = 0.99
    """gamma of the geometric future-goal offset distribution."""
    actor_ema: float = 0.0
    """Per-epoch Polyak coefficient of the actor that evaluates and is exported (ema += actor_ema * (actor - ema)
    after each training epoch); 0 = the live actor. Smooths the epoch-to-epoch flips of a deterministic policy."""
    eval_every: int = 10
    """Evaluate every this many epochs (and at the end)."""
    num_eval_envs: int = 64
    """Evaluation episodes per evaluation (deterministic policy, separate envs)."""
    checkpoint_every: int = 50
    """Save a checkpoint every this many epochs (and at the end)."""
    seed: int = 0
    """Seed for everything (env, networks, sampling)."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    """Networks, losses, optimisers."""

    # ---- derived ------------------------------------------------------------------------------------------------
    @property
    def env_steps_per_epoch(self) -> int:
        """Env steps one epoch collects."""
        return self.num_envs * self.unroll_length

    @property
    def num_epochs(self) -> int:
        """Epochs needed to reach total_env_steps (rounded up)."""
        return -(-self.total_env_steps // self.env_steps_per_epoch)

    @property
    def replay_rows(self) -> int:
        """Replay capacity in time rows (each row holds one step of every env), a multiple of unroll_length."""
        return (self.replay_size // self.env_steps_per_epoch) * self.unroll_length

    @property
    def prefill_epochs(self) -> int:
        """Epochs that only collect before SGD starts."""
        return -(-self.min_replay_size // self.env_steps_per_epoch)

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `crl.envs.make`."""
        kw = dict(self.env_overrides)
        if self.episode_length is not None:
            kw["episode_length"] = self.episode_length
        return kw

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str = "cpu", **overrides: Any) -> TrainConfig:
        """A named preset ('cpu' default, 'paper') with overrides (agent fields may be given flat, e.g. depth=64)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; use one of {sorted(PRESETS)}")
        return PRESETS[name].replace(**overrides)

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with fields replaced; AgentConfig fields can be passed flat (depth=64) or as agent=AgentConfig."""
        agent_names = {f.name for f in dataclasses.fields(AgentConfig)}
        own_names = {f.name for f in dataclasses.fields(TrainConfig)}
        agent_kw = {k: overrides.pop(k) for k in list(overrides) if k in agent_names and k not in own_names}
        unknown = set(overrides) - own_names
        if unknown:
            raise ConfigError(
                f"unknown config field(s) {sorted(unknown)}; valid: {sorted(own_names | agent_names)}"
            )
        cfg = dataclasses.replace(self, **overrides)
        if agent_kw:
            cfg = dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, **agent_kw))
        return cfg

    def validate(self, episode_length: int | None = None) -> TrainConfig:
        """Raise ConfigError for inconsistent values (message says which would work); returns self."""
        self.agent.validate()
        for name in ("num_envs", "unroll_length", "batch_size", "sgd_steps", "total_env_steps", "eval_every",
                     "num_eval_envs", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        unknown = set(self.train_env_overrides) - {f.name for f in dataclasses.fields(MazeEnvConfig)}
        if unknown:
            raise ConfigError(f"train_env_overrides: unknown env option(s) {sorted(unknown)}")
        if not 0.0 <= self.actor_ema <= 1.0:
            raise ConfigError(f"actor_ema={self.actor_ema} must be in [0, 1] (0 = evaluate the live actor)")
        if not 0.0 < self.discount < 1.0:
            raise ConfigError(f"discount={self.discount} must be in (0, 1), e.g. 0.99")
        if self.unroll_length < 2:
            raise ConfigError("unroll_length must be >= 2 so a transition can have a future goal; use e.g. 50")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be >= 2 (InfoNCE needs in-batch negatives); use e.g. 256")
        if self.replay_rows < 2 * self.unroll_length:
            need = 2 * self.env_steps_per_epoch
            raise ConfigError(
                f"replay_size={self.replay_size} holds fewer than two epochs of "
                f"num_envs*unroll_length={self.env_steps_per_epoch} transitions; use replay_size >= {need}"
            )
        if self.min_replay_size < self.batch_size:
            raise ConfigError(
                f"min_replay_size={self.min_replay_size} is smaller than batch_size={self.batch_size}: the "
                f"relabelled data cannot fill a batch; use min_replay_size >= {self.batch_size} "
                f"or batch_size <= {self.min_replay_size}"
            )
        if self.min_replay_size > self.replay_rows * self.num_envs:
            raise ConfigError(
                f"min_replay_size={self.min_replay_size} exceeds the replay capacity "
                f"{self.replay_rows * self.num_envs}; use min_replay_size <= {self.replay_rows * self.num_envs}"
            )
        if self.prefill_epochs >= self.num_epochs:
            raise ConfigError(
                f"total_env_steps={self.total_env_steps} ends before SGD starts (min_replay_size="
                f"{self.min_replay_size}); use total_env_steps > "
                f"{self.prefill_epochs * self.env_steps_per_epoch}"
            )
        if episode_length is not None and episode_length < 2:
            raise ConfigError(f"episode_length={episode_length} must be >= 2")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (stored next to outputs and inside checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of to_dict (unknown keys are an error)."""
        d = dict(d)
        agent = AgentConfig(**d.pop("agent", {}))
        try:
            return cls(agent=agent, **d)
        except TypeError as e:
            raise ConfigError(f"config does not match TrainConfig: {e}") from None


PRESETS: dict[str, TrainConfig] = {
    # CPU default: small, fast-learning; measured on a 2-core CPU (see README ## Training).
    # Exploring starts + chained goals give the Monte Carlo critic trajectories across the whole maze; a replay that
    # keeps the whole run and a Polyak-averaged actor keep the deterministic policy from flipping late in the run;
    # 192 SGD steps per 3,200 env steps (128 left one seed's far goal cell unsolved for the last 170k steps).
    "cpu": TrainConfig(episode_length=250, sgd_steps=192, total_env_steps=600_000, replay_size=1_000_000,
                    actor_ema=0.1, train_env_overrides={"start_cells": "free", "new_goal_on_success": True}),
    # scaling-crl / JaxGCRL values (GPU): 512 envs x 62 steps per epoch, batch 512, 1000-step episodes.
    "paper": TrainConfig(
        num_envs=512, unroll_length=62, batch_size=512, sgd_steps=1000, replay_size=10_000 * 512,
        min_replay_size=1_000 * 512, total_env_steps=100_000_000, eval_every=20, num_eval_envs=256,
        checkpoint_every=100, episode_length=1000, agent=AgentConfig(depth=64, width=256, repr_dim=64),
    ),
}
