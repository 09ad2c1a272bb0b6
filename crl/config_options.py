"""Command-line options generated from the config dataclasses: one place defines a field, its type and its help.

`config_options(TrainConfig, LearnerConfig, AgentConfig, exclude=...)` decorates a click command with one option per
field (`--batch-size`, `--layer-norm/--no-layer-norm`, ...), its help taken from the field's docstring in the
source, every default None so that only the options given override the preset. `given(options)` returns those.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

import click

from crl.losses import ENERGIES
from crl.networks import ACTIVATIONS

CHOICES: dict[str, list[str]] = {"activation": sorted(ACTIVATIONS), "energy": list(ENERGIES)}
"""Fields whose values come from a fixed list."""


@cache
def field_docs(cls: type) -> dict[str, str]:
    """{field: first sentence-ish of its docstring} for a dataclass and its bases (attribute docstrings)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)):
                docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def _base_type(tp: Any) -> Any:
    """int | None -> int; leaves other types alone."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return tp


def config_options(*classes: type, exclude: tuple[str, ...] = (), rename: dict[str, str] | None = None,
                   ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding one click option per scalar field of `classes` (nested config fields and dicts are
    skipped; `exclude` names more). `rename` maps a field to another option name (e.g. env -> --env)."""
    rename = rename or {}

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        seen: set[str] = set()
        specs = []
        for cls in classes:
            hints = typing.get_type_hints(cls)
            docs = field_docs(cls)
            for f in dataclasses.fields(cls):
                tp = _base_type(hints[f.name])
                if f.name in seen or f.name in exclude or tp not in (int, float, str, bool):
                    continue
                seen.add(f.name)
                flag = "--" + rename.get(f.name, f.name).replace("_", "-")
                helptext = docs.get(f.name, "")
                if tp is bool:
                    specs.append(click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=helptext))
                elif f.name in CHOICES:
                    specs.append(click.option(flag, f.name, type=click.Choice(CHOICES[f.name]), help=helptext))
                else:
                    specs.append(click.option(flag, f.name, type=tp, help=helptext))
        for spec in reversed(specs):
            fn = spec(fn)
        return fn

    return decorate


def given(options: dict[str, Any]) -> dict[str, Any]:
    """The options the user gave (not None)."""
    return {k: v for k, v in options.items() if v is not None}
