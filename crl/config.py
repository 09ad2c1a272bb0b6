"""Typed, frozen run configuration: `AgentConfig` (networks, losses, optimisers) inside `LearnerConfig` (batch,
SGD steps, discount, goals, actor EMA, BC weight), held by every run config: `TrainConfig` (online: env, rollout,
replay, schedule), `crl.offline.OfflineConfig`, `crl.finetune.FinetuneConfig` and the collector's.
Two named presets: `paper` (scaling-crl values, for GPUs) and `cpu` (the default: learns the point
mazes in minutes on a 2-core CPU). `validate()` raises ConfigError naming the values that would work.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from crl.envs.config import MazeEnvConfig
from crl.errors import ConfigError
from crl.losses import CRITIC_LOSSES, ENERGIES, IQE_COMPONENT_DIM
from crl.networks import ACTIVATIONS, check_depth
from crl.relabel import GoalMixture


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
    """Critic energy: 'l2' = -||phi - psi||_2 (paper), 'dot' = phi . psi, 'mrn' = minus the Metric Residual
    Network quasimetric (Liu et al. 2023; the critic distance of temporal metric distillation), or 'iqe' = minus the
    Interval Quasimetric Embedding (Wang & Isola 2022; QRL's critic): stitching levers."""
    symmetric_infonce: bool = False
    """Add the backward (column-wise) InfoNCE term."""
    critic_loss: str = "mc"
    """'mc' = Monte Carlo InfoNCE on relabelled future goals (the paper); 'td' = temporal-difference InfoNCE (Zheng,
    Eysenbach, Salakhutdinov 2024, "Contrastive Difference Predictive Coding"): (1 - gamma) InfoNCE on the next
    state + gamma cross-entropy on random goals against a target critic's soft labels at the next state (in-sample
    next action from the data), a stitching lever; 'mc+td' = the mean of the two losses (both estimate the same
    discounted occupancy ratio: the Monte Carlo positives learn fast within trajectories, the TD bootstrap composes
    them across trajectories, as lambda-returns mix Monte Carlo and TD targets). 'td' and 'mc+td' train from
    datasets (offline) only."""
    target_tau: float = 0.005
    """Polyak rate of the target critic that 'td' bootstraps from (per SGD step)."""
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
        if self.energy == "mrn" and self.repr_dim < 2:
            raise ConfigError(f"energy='mrn' splits the representation in two halves: repr_dim={self.repr_dim} "
                              f"must be >= 2 (e.g. 64)")
        if self.energy == "iqe" and self.repr_dim % IQE_COMPONENT_DIM:
            raise ConfigError(f"energy='iqe' splits the representation in components of {IQE_COMPONENT_DIM}: "
                              f"repr_dim={self.repr_dim} must be a multiple of {IQE_COMPONENT_DIM} (e.g. 64)")
        if self.critic_loss not in CRITIC_LOSSES:
            raise ConfigError(f"critic_loss={self.critic_loss!r} unknown; use one of {list(CRITIC_LOSSES)}")
        if not 0.0 < self.target_tau <= 1.0:
            raise ConfigError(f"target_tau={self.target_tau} must be in (0, 1], e.g. 0.005")
        for name in ("width", "repr_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1 (paper: width 256, repr_dim 64)")
        if not self.log_std_min < self.log_std_max:
            raise ConfigError(f"log_std_min={self.log_std_min} must be < log_std_max={self.log_std_max}")


def require_online_critic(learner: LearnerConfig) -> None:
    """Raise ConfigError unless the critic can train from an online replay (which holds no next transitions)."""
    if learner.agent.critic_loss != "mc":
        raise ConfigError(f"critic_loss={learner.agent.critic_loss!r} trains from datasets only (crl-train "
                          "offline); online and fine-tune runs use --critic-loss mc")


@dataclass(frozen=True)
class LearnerConfig:
    """What any learner needs, whatever feeds it (online replay, a dataset, or both): the agent and its SGD."""

    batch_size: int = 256
    """Transitions per SGD step (also the number of InfoNCE negatives + 1)."""
    sgd_steps: int = 16
    """SGD steps (critic + actor + alpha) per epoch."""
    discount: float = 0.99
    """gamma of the geometric future-goal offset distribution."""
    actor_ema: float = 0.0
    """Per-epoch Polyak coefficient of the actor that evaluates and is exported (ema += actor_ema * (actor - ema)
    after each training epoch); 0 = the live actor. Smooths the epoch-to-epoch flips of a deterministic policy."""
    critic_goals: str = "0,1,0"
    """Critic goal mixture 'current,future,random' (crl.relabel.GoalMixture; append ',uniform' for uniform future
    offsets); the paper and OGBench's CRL (impls/agents/crl.py): all future, geometric."""
    actor_goals: str = ""
    """Actor goal mixture, same syntax; '' = the critic's goals (the paper). OGBench's CRL: 0,1,0,uniform
    (impls/agents/crl.py), 0,0.5,0.5,uniform on its stitch datasets (impls/hyperparameters.sh)."""
    bc_alpha: float = 0.0
    """Behaviour-cloning weight of the actor (DDPG+BC as in OGBench's CRL: -Q/stop_grad(mean|Q|) - alpha log
    pi(a_data|s,g)); 0 = the online objective (maximise the critic with the entropy term)."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    """Networks, losses, optimisers."""

    def critic_mixture(self) -> GoalMixture:
        """The parsed critic goal mixture."""
        return GoalMixture.parse(self.critic_goals, "critic_goals")

    def actor_mixture(self) -> GoalMixture | None:
        """The parsed actor goal mixture, or None when the actor uses the critic's goals."""
        return GoalMixture.parse(self.actor_goals, "actor_goals") if self.actor_goals else None

    def validate(self) -> LearnerConfig:
        """Raise ConfigError for values no learner can use; returns self."""
        self.agent.validate()
        for name in ("batch_size", "sgd_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be >= 2 (InfoNCE needs in-batch negatives); use e.g. 256")
        if not 0.0 <= self.actor_ema <= 1.0:
            raise ConfigError(f"actor_ema={self.actor_ema} must be in [0, 1] (0 = evaluate the live actor)")
        if not 0.0 < self.discount < 1.0:
            raise ConfigError(f"discount={self.discount} must be in (0, 1), e.g. 0.99")
        if self.bc_alpha < 0:
            raise ConfigError(f"bc_alpha={self.bc_alpha} must be >= 0 (OGBench: pointmaze 0.03, antmaze 0.1)")
        self.critic_mixture()
        self.actor_mixture()
        return self


class NestedConfig:
    """Shared construction of the run configs: flat overrides routed to the nested learner / agent configs, and
    dict round trips. A run config has a `learner: LearnerConfig` field."""

    def replace(self, **overrides: Any) -> Any:
        """A copy with fields replaced; LearnerConfig and AgentConfig fields may be given flat (depth=64)."""
        learner_names = {f.name for f in dataclasses.fields(LearnerConfig)} - {"agent"}
        agent_names = {f.name for f in dataclasses.fields(AgentConfig)}
        own_names = {f.name for f in dataclasses.fields(self)}
        learner_kw = {k: overrides.pop(k) for k in list(overrides) if k in learner_names and k not in own_names}
        agent_kw = {k: overrides.pop(k) for k in list(overrides) if k in agent_names and k not in own_names}
        unknown = set(overrides) - own_names
        if unknown:
            raise ConfigError(
                f"unknown config field(s) {sorted(unknown)}; valid: {sorted(own_names | learner_names | agent_names)}")
        cfg = dataclasses.replace(self, **overrides)
        learner = cfg.learner
        if agent_kw:
            learner = dataclasses.replace(learner, agent=dataclasses.replace(learner.agent, **agent_kw))
        if learner_kw:
            learner = dataclasses.replace(learner, **learner_kw)
        return dataclasses.replace(cfg, learner=learner)

    @property
    def agent(self) -> AgentConfig:
        """The learner's agent config (a shortcut: `config.agent.depth`)."""
        return self.learner.agent

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (stored next to outputs and inside checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        """Inverse of to_dict (unknown keys are an error). Reads the flat layout written before 2026-12 too
        (batch_size, sgd_steps, discount, actor_ema and agent at the top level)."""
        d = dict(d)
        learner = dict(d.pop("learner", {}))
        for name in [f.name for f in dataclasses.fields(LearnerConfig)]:
            if name in d:
                learner[name] = d.pop(name)
        try:
            agent = AgentConfig(**learner.pop("agent", {}))
            return cls(learner=LearnerConfig(agent=agent, **learner), **d)
        except TypeError as e:
            raise ConfigError(f"config does not match {cls.__name__}: {e}") from None


@dataclass(frozen=True)
class TrainConfig(NestedConfig):
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
    holds long trajectories across the whole maze from the first epoch (see docs/crl-train.md)."""
    num_envs: int = 64
    """Parallel training environments."""
    unroll_length: int = 50
    """Env steps per environment per epoch."""
    replay_size: int = 200_000
    """Replay capacity in transitions (rounded down to a multiple of num_envs * unroll_length)."""
    min_replay_size: int = 6_400
    """Transitions collected before SGD starts (prefill epochs only collect)."""
    total_env_steps: int = 300_000
    """Training budget in env steps (all envs together)."""
    stop_when_solved: int = 0
    """Stop early once this many evaluations in a row scored eval/success 1.0 (0 = run the whole budget)."""
    eval_every: int = 10
    """Evaluate every this many epochs (and at the end)."""
    num_eval_envs: int = 64
    """Evaluation episodes per evaluation (deterministic policy, separate envs)."""
    checkpoint_every: int = 50
    """Save a checkpoint every this many epochs (and at the end)."""
    seed: int = 0
    """Seed for everything (env, networks, sampling)."""
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    """The learner: agent, batch size, SGD steps per epoch, discount, goals, actor EMA."""

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
        """A named preset ('cpu' default, 'paper') with overrides (learner/agent fields may be given flat)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; use one of {sorted(PRESETS)}")
        base = PRESETS[name]
        if cls is not TrainConfig:  # a subclass (FinetuneConfig) starts from the preset's values
            base = cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(TrainConfig)})
        return base.replace(**overrides)

    def validate(self, episode_length: int | None = None) -> TrainConfig:
        """Raise ConfigError for inconsistent values (message says which would work); returns self."""
        self.learner.validate()
        require_online_critic(self.learner)
        batch_size = self.learner.batch_size
        for name in ("num_envs", "unroll_length", "total_env_steps", "eval_every", "num_eval_envs",
                     "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if self.stop_when_solved < 0:
            raise ConfigError(f"stop_when_solved={self.stop_when_solved} must be >= 0 (0 = never stop early)")
        unknown = set(self.train_env_overrides) - {f.name for f in dataclasses.fields(MazeEnvConfig)}
        if unknown:
            raise ConfigError(f"train_env_overrides: unknown env option(s) {sorted(unknown)}")
        if self.unroll_length < 2:
            raise ConfigError("unroll_length must be >= 2 so a transition can have a future goal; use e.g. 50")
        if self.replay_rows < 2 * self.unroll_length:
            need = 2 * self.env_steps_per_epoch
            raise ConfigError(
                f"replay_size={self.replay_size} holds fewer than two epochs of "
                f"num_envs*unroll_length={self.env_steps_per_epoch} transitions; use replay_size >= {need}"
            )
        if self.min_replay_size < batch_size:
            raise ConfigError(
                f"min_replay_size={self.min_replay_size} is smaller than batch_size={batch_size}: the "
                f"relabelled data cannot fill a batch; use min_replay_size >= {batch_size} "
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


PRESETS: dict[str, TrainConfig] = {
    # CPU default: small, fast-learning; measured on 2-core CPUs (see docs/crl-train.md).
    # Exploring starts + chained goals give the Monte Carlo critic trajectories across the whole maze; a replay that
    # keeps the whole run and a Polyak-averaged actor keep the deterministic policy from flipping late in the run;
    # batch 128 (1.9x batch 256's env steps/s), 192 SGD steps per epoch (128 learned later). 256 envs x 50 steps
    # per epoch (12,800 env steps, 4x the data per SGD step of 64 envs, +14% time per epoch on one core): seeds 0-3
    # first reach 1.0 after 70-85 epochs (64 envs: 85-160, two seeds past the old 125-epoch budget). An evaluation
    # every 5 epochs, a stop after 2 in a row at 1.0 (10 epochs after the first 1.0 at most) and a 100-epoch budget
    # (1.28M env steps) keep the default run within ~6 minutes on a 2-core CPU (docs/crl-train.md: measurements).
    "cpu": TrainConfig(episode_length=250, num_envs=256, total_env_steps=1_280_000, replay_size=1_280_000,
                       stop_when_solved=2, eval_every=5,
                       train_env_overrides={"start_cells": "free", "new_goal_on_success": True},
                       learner=LearnerConfig(batch_size=128, sgd_steps=192, actor_ema=0.1)),
    # scaling-crl / JaxGCRL values (GPU): 512 envs x 62 steps per epoch, batch 512, 1000-step episodes.
    "paper": TrainConfig(
        num_envs=512, unroll_length=62, replay_size=10_000 * 512,
        min_replay_size=1_000 * 512, total_env_steps=100_000_000, eval_every=20, num_eval_envs=256,
        checkpoint_every=100, episode_length=1000,
        learner=LearnerConfig(batch_size=512, sgd_steps=1000, agent=AgentConfig(depth=64, width=256, repr_dim=64)),
    ),
}
