"""The layers of the package, read from the source (every import, including those inside functions).

Data flows one way (ARCHITECTURE.md): the core (`crl`) and the dataset format (`crl.datasets`) never import the jobs
(`crl.pipelines`) or the evaluators (`crl.eval`), and the jobs never import the evaluators. A library module never
imports a command-line module (`cli*`, `cmd_*`), and no module imports another module's private name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"crl": "crl", "datasets": "crl.datasets", "pipelines": "crl.pipelines", "eval": "crl.eval"}
RANK = {"crl": 0, "crl.datasets": 0, "crl.pipelines": 1, "crl.eval": 2}


def layer(module: str) -> str:
    """The layer of a dotted module name: crl.datasets / crl.pipelines / crl.eval, or crl (the core)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and ".".join(parts[:2]) in RANK else "crl"


def is_cli(module: str) -> bool:
    name = module.rsplit(".", 1)[-1]
    return name.startswith("cli") or name.startswith("cmd_")


def modules() -> list[tuple[str, Path]]:
    out = []
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out.append((".".join([package, *parts]), path))
    return out


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names imported from it) of every absolute `crl` import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "crl"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "crl":
            out.append((node.lineno, node.module, [a.name for a in node.names]))
    return out


def violations(module: str, path: Path) -> list[str]:
    where, found = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path), []
    for line, target, names in imports(path):
        targets = [target] + [f"{target}.{n}" for n in names if f"{target}.{n}" in KNOWN]
        for t in targets:
            if RANK[layer(t)] > RANK[layer(module)]:
                found.append(f"{where}:{line}: {layer(module)} imports {t} (a layer above it)")
            if is_cli(t) and not is_cli(module):
                found.append(f"{where}:{line}: library module imports the command-line module {t}")
        if target != module:
            found += [f"{where}:{line}: imports the private name {target}.{n}" for n in names
                      if n.startswith("_") and not n.startswith("__")]
    return found


KNOWN = {m for m, _ in modules()}


def test_the_walk_sees_the_package() -> None:
    assert {"crl.loop", "crl.learners", "crl.datasets.reader", "crl.pipelines.cli", "crl.eval.report"} <= KNOWN
    assert layer("crl.envs.maze") == "crl" and layer("crl.eval.goals") == "crl.eval"


@pytest.mark.parametrize("module,path", modules(), ids=[m for m, _ in modules()])
def test_no_upward_or_private_import(module: str, path: Path) -> None:
    assert violations(module, path) == []


def test_the_checks_catch_what_they_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from crl.pipelines.sink import EpisodeSink\n    import crl.eval.report\n"
                   "from crl.eval import cli\nfrom crl.datasets.reader import _private\n")
    found = violations("crl.loop", bad)
    assert {int(f.split(":")[1]) for f in found} == {2, 3, 4, 5}, found
    assert any("command-line module crl.eval.cli" in f for f in found)
    assert violations("crl.eval.cli", bad) == [f"{bad}:5: imports the private name crl.datasets.reader._private"]
    assert not any("private" in f for f in violations("crl.datasets.reader", bad))  # its own private name
