"""What `crl-eval report` can put in a run's section: evaluators (run on a checkpoint, cached) and sections (drawn
from a run's records alone), each registered by the module that implements it.

An evaluator module calls `register(Evaluator(...))` at import and is named in EVALUATOR_MODULES; a module adding a
report section calls `register_section(Section(...))` and is named in SECTION_MODULES. The report imports those
modules on first use, so adding one is a new module plus one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Block = tuple[Any, ...]
"""A report block (crl.eval.report_render): ("h", level, text) | ("p", text) | ("table", headers, rows) |
("img", file name, caption) | ("list", items)."""

EVALUATOR_MODULES = ["crl.eval.goals", "crl.eval.stitching", "crl.eval.geodesic"]
"""Modules that register evaluators, in report order."""
SECTION_MODULES: list[str] = ["crl.eval.coverage"]
"""Modules that register record-only sections (e.g. a dataset's coverage map)."""


@dataclass(frozen=True)
class Evaluator:
    """One evaluator as the report runs it."""

    name: str
    skip_reason: Callable[[Any], str | None]
    """`skip_reason(run_info)`: why it does not apply to a run (crl.eval.runs.RunInfo), or None."""
    settings: Callable[[Any, Any], dict[str, Any]]
    """`settings(report_settings, run_info)`: what one evaluation depends on (its cache key and its call)."""
    run: Callable[[str, int, dict[str, Any], Path], dict[str, Any]]
    """`run(policy, step, settings, out_dir)`: the result dict (a `png` key names its figure in out_dir)."""
    blocks: Callable[[dict[str, Any]], list[Block]]
    """The result as report blocks (figures are added by the report)."""
    column: str
    """Its column in the comparison table."""
    cell: Callable[[dict[str, Any]], str]
    """The result's number in that column."""


@dataclass(frozen=True)
class Section:
    """A part of each run's section drawn from its folder alone (no checkpoint): `blocks(run_info, images_dir)`
    returns blocks and may write PNGs into images_dir (listed by file name in the blocks)."""

    name: str
    blocks: Callable[[Any, Path], list[Block]]


_EVALUATORS: dict[str, Evaluator] = {}
_SECTIONS: dict[str, Section] = {}


def register(evaluator: Evaluator) -> Evaluator:
    """Add an evaluator (called by its module at import)."""
    _EVALUATORS[evaluator.name] = evaluator
    return evaluator


def register_section(section: Section) -> Section:
    """Add a record-only section (called by its module at import)."""
    _SECTIONS[section.name] = section
    return section


def evaluators() -> dict[str, Evaluator]:
    """Every registered evaluator, in EVALUATOR_MODULES order."""
    for mod in EVALUATOR_MODULES:
        importlib.import_module(mod)
    return dict(_EVALUATORS)


def sections() -> dict[str, Section]:
    """Every registered record-only section."""
    for mod in SECTION_MODULES:
        importlib.import_module(mod)
    return dict(_SECTIONS)


def needs_crl_maze(name: str) -> Callable[[Any], str | None]:
    """The skip rule of evaluators that need a crl maze (cell grid, BFS distances)."""

    def reason(info: Any) -> str | None:
        if info.is_ogbench:
            return f"{name} needs a crl maze (cell grid, BFS distances); {info.env_name} is an OGBench env"
        if not info.is_crl_maze:
            return f"{name} needs a crl maze env; {info.env_name!r} is not one"
        return None

    return reason
