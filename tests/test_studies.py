"""The study scripts (studies/claim*.sh, docs/REPRODUCTION.md) at toy size: every step of every claim runs through the
product's CLIs, the summaries are drawn from the copied records alone, and a second run resumes (skips) every step.
Marked slow: minutes of compiles (two depths of a tiny trainer, a collector, offline learners, evaluators)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # five claims' compiles: ~10-20 min cold

REPO = Path(__file__).resolve().parents[1]
CLAIMS = ("claim1_depth", "claim3_stitching", "claim2_collector", "claim4_geodesic", "claim5_finetune")


def run_script(name: str, quick_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRL_STUDY_QUICK_DIR": str(quick_dir),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(REPO / "studies" / f"{name}.sh"), "--quick", "--core", "none"], env=env,
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    quick = tmp_path_factory.mktemp("study")
    for name in CLAIMS:
        proc = run_script(name, quick)
        assert proc.returncode == 0, f"{name} --quick failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return quick


def test_every_claim_publishes_records_and_summaries(quick_study: Path) -> None:
    results = quick_study / "results"
    c1 = json.loads((results / "claim1" / "summary.json").read_text())
    (table,) = c1["budgets"].values()  # one budget at toy size (no phase-2 continuation)
    assert sorted(int(d) for d in table["depths"]) == [4, 8]
    assert (results / "claim1" / "claim1_curves.png").stat().st_size > 1000
    assert (results / "claim1" / "report" / "report.html").exists()
    for run in ("d4-s0", "d8-s0"):  # the committed records: config + metrics, never checkpoints
        folder = results / "claim1" / run
        assert {p.name for p in folder.iterdir()} >= {"config.json", "metrics.jsonl", "wall_s.txt"}
        assert not (folder / "checkpoints").exists()
    c3 = json.loads((results / "claim3" / "summary.json").read_text())
    for row in c3["depths"].values():  # every start-goal distance of the maze, 1..its diameter
        assert row["distances"] == list(range(1, max(row["distances"]) + 1)) and max(row["distances"]) > 3
        assert 0.0 <= row["out_of_distribution"]["success"] <= 1.0
    c2 = json.loads((results / "claim2" / "summary.json").read_text())
    assert len(c2["cells"]) == 4  # collector depth x learner depth
    c4 = json.loads((results / "claim4" / "summary.json").read_text())
    assert {r["claim"] for r in c4["runs"]} == {"claim1", "claim3"}
    assert all(-2.0 <= r["index"] <= 2.0 for r in c4["runs"])
    c5 = json.loads((results / "claim5" / "summary.json").read_text())
    assert {r["run"] for r in c5["runs"]} >= {"d4-s0-plain", "d4-s0-mix"}


def test_rerun_skips_finished_steps(quick_study: Path) -> None:
    before = (quick_study / "runs" / "claim1" / "d4-s0" / "metrics.jsonl").read_text()
    proc = run_script("claim1_depth", quick_study)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("done already") >= 3  # two runs and the report
    assert (quick_study / "runs" / "claim1" / "d4-s0" / "metrics.jsonl").read_text() == before


def test_bad_option_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "CRL_STUDY_QUICK_DIR": str(tmp_path)}
    proc = subprocess.run([str(REPO / "studies" / "claim1_depth.sh"), "--fast"], env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert "unknown option --fast" in proc.stderr
