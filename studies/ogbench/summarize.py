"""Table of the issue-21 runs: per config and dataset, the final OGBench success (mean, std, min-max over seeds), the
curve (success at each evaluation) and the per-task means, read from the committed `results/<config>/<dataset>/s<seed>`
records (config.json, metrics.jsonl, wall.json). "last 3" is OGBench's reported figure (the mean of the last three
evaluations). Prints markdown: python studies/ogbench/summarize.py [CONFIG ...] [--at SGD_STEPS] [--seeds 0,1]
(`--at` reads every run at that evaluation instead of its last: configs compared at one budget; `--seeds` keeps
those seeds only: a one-seed screen against the same seed of another config).
`summarize.py --planning [CONFIG ...]`: test-time planning against the actor alone (results/planning/).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent / "results"
DATASETS = ["pointmaze-medium-navigate", "pointmaze-large-navigate", "pointmaze-medium-stitch",
            "pointmaze-large-stitch"]


def runs(config: str, dataset: str, at: int | None = None, seeds: set[str] | None = None) -> list[dict]:
    """The finished runs of one cell: final eval record (or the one at `at` SGD steps), curve, wall time, config."""
    out = []
    for d in sorted((ROOT / config / dataset).glob("s*")):
        if seeds is not None and d.name[1:] not in seeds:
            continue
        recs = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines() if x.strip()]
        evals = [r for r in recs if "eval/success" in r]
        if at is not None:
            evals = [r for r in evals if r["sgd_steps"] <= at]
            if not evals or evals[-1]["sgd_steps"] != at:
                continue
        if not evals:
            continue
        wall = json.loads((d / "wall.json").read_text())["wall_s"] if (d / "wall.json").exists() else None
        cfg = json.loads((d / "config.json").read_text())["config"]
        out.append({"seed": d.name, "final": evals[-1], "last3": np.mean([r["eval/success"] for r in evals[-3:]]),
                    "curve": [(r["sgd_steps"], r["eval/success"]) for r in evals],
                    "wall": wall, "config": cfg})
    return out


def main(configs: list[str], at: int | None = None, seeds: set[str] | None = None) -> None:
    print("| config | dataset | seeds | SGD steps | batch | success % mean ± std (min-max) | last 3 evals % "
          "| curve (steps: mean %) | per task % | wall s/run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for c in configs:
        for ds in DATASETS:
            rs = runs(c, ds, at, seeds)
            if not rs:
                continue
            s = np.array([r["final"]["eval/success"] for r in rs]) * 100
            steps = sorted({p[0] for r in rs for p in r["curve"]})
            curve = ", ".join(f"{k}: {np.nanmean([dict(r['curve']).get(k, np.nan) for r in rs]) * 100:.0f}"
                              for k in steps)
            tasks = " / ".join(f"{np.mean([r['final'][f'eval/task{t}_success'] for r in rs]) * 100:.0f}"
                               for t in range(1, 6))
            walls = [r["wall"] for r in rs if r["wall"]]
            wall = f"{np.mean(walls):.0f}" if walls else "-"
            last3 = np.array([r["last3"] for r in rs]) * 100
            print(f"| {c} | {ds} | {len(rs)} | {rs[0]['final']['sgd_steps']} | "
                  f"{rs[0]['config']['learner']['batch_size']} | {s.mean():.0f} ± {s.std():.0f} "
                  f"({s.min():.0f}-{s.max():.0f}) | {last3.mean():.0f} ± {last3.std():.0f} | {curve} | {tasks} | "
                  f"{wall} |")


def planning(configs: list[str]) -> None:
    """Test-time planning against the actor alone on the same checkpoints (results/planning/, plan_evals.sh)."""
    print("| config | dataset | seeds | actor alone % mean ± std (min-max) | per task % | with planning % mean ± std "
          "(min-max) | per task % | waypoints | wall s/eval (planning) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for c in configs:
        for ds in DATASETS:
            cells: dict[str, list[dict]] = {}
            for seed_dir in sorted((ROOT / "planning" / c / ds).glob("s*")):
                modes = {m.name: json.loads((m / "goals.json").read_text()) for m in seed_dir.iterdir()
                         if (m / "goals.json").exists()}
                if "actor" in modes and len(modes) == 2:
                    for name, r in modes.items():
                        cells.setdefault("actor" if name == "actor" else "plan", []).append(
                            {**r, "wall": json.loads((seed_dir / name / "wall.json").read_text())["wall_s"]})
            if not cells:
                continue

            def row(rs: list[dict]) -> str:
                s = np.array([r["overall_success"] for r in rs]) * 100
                tasks = " / ".join(f"{np.mean([r['tasks'][t]['success'] for r in rs]) * 100:.0f}" for t in range(5))
                return f"{s.mean():.0f} ± {s.std():.0f} ({s.min():.0f}-{s.max():.0f}) | {tasks}"

            plan = cells["plan"]
            print(f"| {c} | {ds} | {len(plan)} | {row(cells['actor'])} | {row(plan)} | "
                  f"{plan[0]['policy_info']['planner']['waypoints']} | {np.mean([r['wall'] for r in plan]):.0f} |")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--planning"]:
        planning(args[1:] or sorted(p.name for p in (ROOT / "planning").iterdir() if p.is_dir()))
        sys.exit(0)
    at_step = None
    if "--at" in args:
        i = args.index("--at")
        at_step = int(args[i + 1])
        del args[i:i + 2]
    only = None
    if "--seeds" in args:
        i = args.index("--seeds")
        only = set(args[i + 1].split(","))
        del args[i:i + 2]
    main(args or sorted(p.name for p in ROOT.iterdir() if p.is_dir()), at_step, only)
