"""The report's coverage section: the coverage map of the dataset a run trained on (offline, fine-tune with a
dataset) or recorded (a collector's dataset version), drawn from the dataset alone (no checkpoint).

The dataset is looked up in the run's own root when the run folder sits inside one (a dataset version folder),
else in the default dataset root ($CRL_DATA_DIR), where `crl-train` found it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from crl.errors import CrlError
from crl.eval.registry import Block, Section, register_section


def _dataset_of(info: Any) -> tuple[str | None, str | None]:
    """(dataset id, root) the run trained on or recorded; (None, None) for runs without a dataset."""
    for folder in [info.path, *list(info.path.parents)[:4]]:  # a dataset version folder, or a worker folder in one
        manifest = folder / "manifest.json"
        if manifest.is_file():
            try:
                did = json.loads(manifest.read_text())["id"]
            except (ValueError, KeyError, OSError):
                return None, None
            return did, str(folder.parents[2])
    did = info.config.get("dataset")
    return (str(did), None) if did and info.kind in ("offline", "finetune") else (None, None)


_DRAWN: dict[tuple[str, str | None, str], tuple[str, list[str]]] = {}
"""Maps already drawn into a report's images folder: (images folder, root, dataset id) -> (first run, facts)."""


def coverage_blocks(info: Any, images_dir: Path) -> list[Block]:
    """A heading, the map and its summary figures; a one-line note when the dataset cannot be read. Runs that
    trained on the same dataset share one map: the first run's section shows it, the others point to it (a study's
    nine learners on one split drew nine identical 68 kB maps into one page)."""
    from crl.datasets import DatasetStore
    from crl.pipelines.coverage import compute_coverage, draw_coverage

    did, root = _dataset_of(info)
    if did is None:
        return []
    seen = _DRAWN.get((str(images_dir), root, did))
    if seen is not None:
        first, facts = seen
        return [("h", 3, "dataset coverage"), ("list", [f"{did}: the dataset of {first}, mapped there", *facts])]
    try:
        store = DatasetStore(root)
        cov = compute_coverage(store, did)
    except CrlError as e:
        return [("h", 3, "dataset coverage"), ("list", [f"coverage map of {did} not drawn: {e}"])]
    key = hashlib.sha256(f"{root}|{did}".encode()).hexdigest()[:10]
    fname = f"coverage_{key}.png"
    draw_coverage(cov, images_dir / fname)
    s = cov.summary()
    unit = "segments" if cov.kind == "split" else "episodes"
    facts = [f"{s['transitions']:,} transitions in {s['episodes']:,} {unit}"]
    if s["fraction_visited"] is not None:
        facts.append(f"free cells visited: {s['cells_visited']}/{s['free_cells']} ({s['fraction_visited']:.0%})")
        if s["entropy"] is not None:
            facts.append(f"cell entropy: {s['entropy']:.2f} of uniform")
    if s["episode_length"]:
        e = s["episode_length"]
        facts.append(f"episode length: min {e['min']}, median {e['median']:.0f}, max {e['max']}")
    _DRAWN[(str(images_dir), root, did)] = (info.path.name, facts)
    return [("h", 3, "dataset coverage"), ("img", fname, f"coverage of {did} (crl-data show {did} --map)"),
            ("list", facts)]


register_section(Section("coverage", coverage_blocks))
