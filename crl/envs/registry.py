"""The env registry: `make(name, **overrides)` builds any registered maze env; names are
`<family>_<layout>_maze` for the built-in layouts, and `<family>_maze` takes `layout=` (a built-in name or a file)."""

from __future__ import annotations

from typing import Any

from crl.envs.config import default_config
from crl.envs.maze import builtin_layouts
from crl.envs.maze_env import MazeEnv
from crl.errors import ConfigError

_LAYOUTS = ("u4", "u5", "big", "hardest")


def _families() -> dict[str, type[MazeEnv]]:
    from crl.envs.point import PointMaze

    families: dict[str, type[MazeEnv]] = {"point": PointMaze}
    try:
        from crl.envs.ant import AntMaze

        families["ant"] = AntMaze
    except ImportError:  # pragma: no cover - family module not present
        pass
    try:
        from crl.envs.humanoid import HumanoidMaze

        families["humanoid"] = HumanoidMaze
    except ImportError:  # pragma: no cover
        pass
    return families


def gym_id(family: str, layout: str) -> str:
    """Gymnasium id of a built-in env, e.g. `crl/PointU4Maze-v0`."""
    return f"crl/{family.capitalize()}{layout.capitalize()}Maze-v0"


def registered_envs() -> list[str]:
    """Every name `make` accepts without a `layout=` override, family-major (point, ant, humanoid)."""
    return [f"{family}_{layout}_maze" for family in _families() for layout in _LAYOUTS]


def _parse(name: str) -> tuple[str, str | None]:
    parts = name.split("_")
    families = _families()
    if len(parts) == 2 and parts[0] in families and parts[1] == "maze":
        return parts[0], None
    if len(parts) == 3 and parts[0] in families and parts[2] == "maze" and parts[1] in builtin_layouts():
        return parts[0], parts[1]
    raise ConfigError(
        f"unknown environment {name!r}; registered: {', '.join(registered_envs())} "
        f"(or <family>_maze with layout=<name or file>)"
    )


def make(name: str, **overrides: Any) -> MazeEnv:
    """Build a registered env with config overrides, e.g. `make("point_u4_maze", episode_length=100)` or
    `make("point_maze", layout="my_maze.txt")`. Unknown names and options raise ConfigError."""
    family, layout = _parse(name)
    if layout is not None and "layout" in overrides and overrides["layout"] != layout:
        raise ConfigError(f"{name!r} fixes layout {layout!r}; use '{family}_maze' with layout={overrides['layout']!r}")
    if layout is not None:
        overrides["layout"] = layout
    config = default_config(family).replace(**overrides)
    if config.layout in builtin_layouts():
        canonical, gid = f"{family}_{config.layout}_maze", gym_id(family, config.layout)
    else:
        canonical, gid = f"{family}_maze", None
    return _families()[family](config, canonical, gid)
