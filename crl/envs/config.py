"""Typed configuration of the maze environments: one frozen dataclass, family defaults, overrides through make()."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from crl.errors import ConfigError

START_CELLS = ("start", "free")
"""Valid values of MazeEnvConfig.start_cells."""


@dataclass(frozen=True)
class MazeEnvConfig:
    """Everything that defines a maze environment; `EnvSpec.config` records the resolved values."""

    layout: str = "u"
    """Built-in layout name (u, u2..u7, big, hardest) or a layout file path."""
    cell_size: float = 4.0
    """World units per maze cell (point and ant 4, humanoid 2, as in JaxGCRL)."""
    episode_length: int = 1000
    """Steps before the episode is truncated."""
    success_threshold: float = 0.5
    """Success when the achieved goal is within this Euclidean distance of the goal."""
    start_cells: str = "start"
    """Where episodes start: 'start' = the layout's S cells (the benchmark task); 'free' = any free cell, uniformly
    (exploring starts: training data that covers the whole maze; evaluation keeps 'start')."""
    start_jitter: float = 0.1
    """Start position = start-cell centre + uniform(-start_jitter, start_jitter) per axis (world units)."""
    goal_jitter: float = 0.0
    """Goal position = goal-cell centre + uniform(-goal_jitter, goal_jitter) per axis (world units)."""
    new_goal_on_success: bool = False
    """OGBench 'navigate' style: on success a new goal is sampled and the episode continues (the step that reached
    the goal reports success and reward against the old goal; its observation already carries the new goal)."""
    dense_reward: bool = False
    """False: reward = success (0/1). True: reward = -distance to the goal."""
    reset_noise_scale: float = 0.1
    """Uniform noise on the initial joint positions / normal noise on velocities (ant, humanoid), JaxGCRL-style."""
    terminate_when_unhealthy: bool = True
    """End the episode when the torso height leaves `healthy_z_range` (ant, humanoid)."""
    healthy_z_range: tuple[float, float] = (0.2, 1.0)
    """Healthy torso heights (JaxGCRL: ant (0.2, 1.0), humanoid (1.0, 2.0)); unused for the point mass."""
    timestep: float = 0.02
    """Physics timestep (seconds)."""
    substeps: int = 5
    """Physics steps per environment step (JaxGCRL n_frames = 5); env dt = timestep * substeps."""
    solver_iterations: int = 1
    """Newton solver iterations (JaxGCRL MJX: 1)."""
    ls_iterations: int = 4
    """Newton line-search iterations (JaxGCRL MJX: 4)."""

    def replace(self, **overrides: Any) -> MazeEnvConfig:
        """A copy with some fields changed; unknown names raise ConfigError listing the valid ones."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(f"unknown env option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(names))}")
        if "healthy_z_range" in overrides:
            overrides["healthy_z_range"] = tuple(float(v) for v in overrides["healthy_z_range"])
        cfg = dataclasses.replace(self, **overrides)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ConfigError on values no environment can run with."""
        if self.episode_length < 1:
            raise ConfigError(f"episode_length must be >= 1, got {self.episode_length}")
        if self.cell_size <= 0 or self.timestep <= 0:
            raise ConfigError("cell_size and timestep must be positive")
        if self.substeps < 1 or self.solver_iterations < 1 or self.ls_iterations < 1:
            raise ConfigError("substeps, solver_iterations and ls_iterations must be >= 1")
        if self.success_threshold <= 0:
            raise ConfigError(f"success_threshold must be positive, got {self.success_threshold}")
        if self.start_cells not in START_CELLS:
            raise ConfigError(f"start_cells={self.start_cells!r} unknown; use one of {', '.join(START_CELLS)}")
        jitters = (self.start_jitter, self.goal_jitter)
        if min(jitters) < 0 or max(jitters) >= self.cell_size / 2:
            raise ConfigError("start_jitter and goal_jitter must lie in [0, cell_size / 2)")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples as lists)."""
        d = dataclasses.asdict(self)
        d["healthy_z_range"] = list(self.healthy_z_range)
        return d


def default_config(family: str) -> MazeEnvConfig:
    """The defaults of one env family (`point`, `ant`, `humanoid`), matching JaxGCRL where it defines them."""
    if family == "point":
        return MazeEnvConfig(cell_size=4.0, reset_noise_scale=0.0, terminate_when_unhealthy=False, timestep=0.02)
    if family == "ant":
        return MazeEnvConfig(cell_size=4.0, healthy_z_range=(0.2, 1.0), timestep=0.01)
    if family == "humanoid":
        return MazeEnvConfig(cell_size=2.0, healthy_z_range=(1.0, 2.0), timestep=0.003, reset_noise_scale=0.0)
    raise ConfigError(f"unknown env family {family!r}; known: point, ant, humanoid")
