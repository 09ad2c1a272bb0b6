"""The env registry: `make(name, **overrides)` builds any registered maze env; names are
`<family>_<layout>_maze` for the built-in layouts, and `<family>_maze` takes `layout=` (a built-in name or a file)."""

from __future__ import annotations

from typing import Any

from crl.envs.base import EnvSpec
from crl.envs.config import default_config
from crl.envs.maze import Maze, builtin_layouts, load_layout
from crl.envs.maze_env import MazeEnv
from crl.errors import ConfigError, CrlError

# Registered layouts: `u` = the 5x5 U_MAZE of JaxGCRL / scaling-crl; `u2`..`u7`, `big`, `hardest` = scaling-crl's
# U2_MAZE.. U7_MAZE, BIG_MAZE, HARDEST_MAZE (envs/ant_maze.py), so `ant_u4_maze` is the paper's "Ant U4".
LAYOUTS = ("u", "u2", "u3", "u4", "u5", "u6", "u7", "big", "hardest")
LEGACY_LAYOUT_NAMES = {"u4": "u"}
"""Built-in names whose meaning changed (2026-12-01: `u4` became scaling-crl's 7x5 U4; the 5x5 U is now `u`). An
env spec without `layout_text` (written before then) resolves its layout name through this map."""


def families() -> dict[str, type[MazeEnv]]:
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
    """Gymnasium id of a built-in env, e.g. `crl/PointUMaze-v0`."""
    return f"crl/{family.capitalize()}{layout.capitalize()}Maze-v0"


def registered_envs() -> list[str]:
    """Every name `make` accepts without a `layout=` override, family-major (point, ant, humanoid)."""
    return [f"{family}_{layout}_maze" for family in families() for layout in LAYOUTS]


def _parse(name: str) -> tuple[str, str | None]:
    parts = name.split("_")
    known = families()
    if len(parts) == 2 and parts[0] in known and parts[1] == "maze":
        return parts[0], None
    if len(parts) == 3 and parts[0] in known and parts[2] == "maze" and parts[1] in builtin_layouts():
        return parts[0], parts[1]
    raise ConfigError(
        f"unknown environment {name!r}; registered: {', '.join(registered_envs())} "
        f"(or <family>_maze with layout=<name or file>)"
    )


def make(name: str, **overrides: Any) -> MazeEnv:
    """Build a registered env with config overrides, e.g. `make("point_u_maze", episode_length=100)` or
    `make("point_maze", layout="my_maze.txt")`. Unknown names and options raise ConfigError."""
    family, layout = _parse(name)
    if layout is not None and "layout" in overrides and overrides["layout"] != layout:
        raise ConfigError(f"{name!r} fixes layout {layout!r}; use '{family}_maze' with layout={overrides['layout']!r}")
    if layout is not None:
        overrides["layout"] = layout
    config = default_config(family).replace(**overrides)
    if "\n" in config.layout:  # layout text (from a manifest): a built-in's text takes the built-in's name
        name = load_layout(config.layout).name
        if name in builtin_layouts():
            config = config.replace(layout=name)
    if config.layout in builtin_layouts():
        canonical, gid = f"{family}_{config.layout}_maze", gym_id(family, config.layout)
    else:
        canonical, gid = f"{family}_maze", None
    return families()[family](config, canonical, gid)


def _spec_dict(spec: EnvSpec | dict[str, Any]) -> dict[str, Any]:
    return spec.to_dict() if isinstance(spec, EnvSpec) else dict(spec)


def spec_layout_text(spec: EnvSpec | dict[str, Any]) -> str:
    """The maze layout text an env spec stands for: its `layout_text`, or (older specs) its layout name resolved
    as it was when written (LEGACY_LAYOUT_NAMES). Raises ConfigError when the spec names no crl maze."""
    d = _spec_dict(spec)
    if d.get("layout_text"):
        return d["layout_text"]
    name = (d.get("config") or {}).get("layout", d.get("layout"))
    if d.get("family") not in families() or not name:
        raise ConfigError(f"env {d.get('name')!r} (family {d.get('family')!r}) is not a crl maze env: it has no "
                          f"maze layout; name a crl env explicitly")
    try:
        return load_layout(LEGACY_LAYOUT_NAMES.get(name, name)).to_text()
    except CrlError as e:
        raise ConfigError(f"env {d.get('name')!r}: its layout {name!r} cannot be found ({e}); "
                          f"it was written without its layout text") from None


def maze_from_spec(spec: EnvSpec | dict[str, Any]) -> Maze:
    """The maze of an env spec (layout text and cell size), e.g. from a dataset manifest."""
    d = _spec_dict(spec)
    cell_size = float((d.get("config") or {}).get("cell_size", 1.0))
    return load_layout(spec_layout_text(d), cell_size)


def env_from_spec(spec: EnvSpec | dict[str, Any], **overrides: Any) -> MazeEnv:
    """Rebuild the env an env spec (e.g. a dataset manifest's) describes, maze included, with config overrides."""
    d = _spec_dict(spec)
    config = dict(d.get("config") or {})
    config["layout"] = spec_layout_text(d)
    config.update(overrides)
    return make(f"{d['family']}_maze", **config)


def task_env_from_spec(spec: EnvSpec | dict[str, Any], **overrides: Any) -> MazeEnv:
    """The env's task rebuilt from a spec: one goal per episode, whatever goal schedule the spec's producer ran.

    A dataset collected with `--goal-schedule navigate` (or a collector's checkpoint) records new_goal_on_success;
    evaluated with it, the goal moves once reached and time at goal / final distance measure a random next goal."""
    return env_from_spec(spec, **{"new_goal_on_success": False, **overrides})
