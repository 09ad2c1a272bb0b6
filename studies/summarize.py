"""Tables and figures of the study (docs/REPRODUCTION.md) from committed records only: each claim's run folders under
studies/results/<claim>/ (config.json, metrics.jsonl, evaluator JSON), never checkpoints.

    python studies/summarize.py claim1 studies/results/claim1

writes <dir>/summary.json, <dir>/summary.md and the claim's PNGs beside them. Wall-clock seconds are training
seconds read off metrics.jsonl (each record's throughput figure x its units: the epochs themselves, evaluations and
checkpoints excluded, so the evaluation cadence does not tilt the comparison); each run's whole wall time,
compile and evaluations included, is in its wall_s.txt.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from crl.goal_rollouts import wilson_ci
from crl.metrics import read_jsonl


def run_records(run: Path) -> dict[str, Any]:
    """One run: its config, its evaluation records with training seconds so far, its whole wall time."""
    config = json.loads((run / "config.json").read_text())
    records = read_jsonl(run / "metrics.jsonl")
    x_key = "env_steps" if any("env_steps" in r for r in records) else "sgd_steps"
    rate_key = next((k for k in (records[-1] if records else {}) if k.endswith("_per_s")), None)
    seconds, prev_x, evals = 0.0, 0, []
    for r in records:
        x = r.get(x_key, 0)
        if rate_key and r.get(rate_key) and r.get("epoch", 0) > 0:
            units = r.get("env_steps", x) - prev_x if x_key == "env_steps" else x - prev_x
            seconds += units / r[rate_key]
        prev_x = x
        if "eval/success" in r:
            evals.append({"x": x, "seconds": seconds, "success": r["eval/success"],
                          "time_at_goal": r.get("eval/time_at_goal", math.nan), **{
                              k: v for k, v in r.items() if k.startswith("eval/success_")}})
    wall = run / "wall_s.txt"
    return {"name": run.name, "config": config, "x_key": x_key, "evals": evals, "train_seconds": seconds,
            "stopped_early": any(r.get("stopped_early") for r in records),
            "wall_s": sum(int(v) for v in wall.read_text().split()) if wall.exists() else None,
            "depth": config["config"]["learner"]["agent"]["depth"], "seed": config["config"]["seed"],
            "actor_depth": config["config"]["learner"]["agent"].get("actor_depth")}


def runs_in(folder: Path) -> list[dict[str, Any]]:
    """Every run folder (holding metrics.jsonl) directly under `folder`, sorted by depth then seed."""
    runs = [run_records(p) for p in sorted(folder.iterdir()) if (p / "metrics.jsonl").exists()]
    return sorted(runs, key=lambda r: (r["depth"], r["seed"]))


def mean_spread(values: list[float]) -> dict[str, float]:
    """Mean, min, max and count of a list of per-seed values."""
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "min": float(a.min()), "max": float(a.max()), "n": int(a.size)}


def fmt(ms: dict[str, float], digits: int = 2) -> str:
    """'mean (min-max)' of mean_spread's output."""
    if ms["n"] == 1:
        return f"{ms['mean']:.{digits}f}"
    return f"{ms['mean']:.{digits}f} ({ms['min']:.{digits}f}-{ms['max']:.{digits}f})"


def at_or_before(evals: list[dict[str, Any]], key: str, limit: float) -> dict[str, Any] | None:
    """The last evaluation with `key` <= limit."""
    kept = [e for e in evals if e[key] <= limit]
    return kept[-1] if kept else None


def depth_label(run: dict[str, Any]) -> str:
    """'64', or '64 (actor 4)' when the actor's depth differs from the critic's."""
    actor = run.get("actor_depth")
    return str(run["depth"]) if actor in (None, run["depth"]) else f"{run['depth']} (actor {actor})"


def claim1(folder: Path) -> dict[str, Any]:
    """Depth vs online goal reaching: final success / time at goal per depth, equal env steps and equal wall
    clock, curves against both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = runs_in(folder)
    by_depth: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(runs, key=lambda r: (r["depth"], r["actor_depth"] or r["depth"], r["seed"])):
        by_depth[depth_label(r)].append(r)
    shallow = next(iter(by_depth))
    budgets = sorted({r["evals"][-1]["x"] for r in runs if not r["stopped_early"]})
    tables, lines = {}, []
    for budget in budgets:
        # runs that got this far (or stopped early, solved, before it), read at their last evaluation <= budget
        upto = {d: [r | {"evals": [e for e in r["evals"] if e["x"] <= budget]} for r in rs
                    if r["evals"][-1]["x"] >= budget or r["stopped_early"]] for d, rs in by_depth.items()}
        upto = {d: rs for d, rs in upto.items() if rs}
        if shallow not in upto:
            continue
        # equal wall clock: the training seconds the slowest depth-4 run needed for this budget
        t_equal = max(r["evals"][-1]["seconds"] for r in upto[shallow])
        rows = {}
        for depth, rs in upto.items():
            final = [r["evals"][-1] for r in rs]
            equal_t = [at_or_before(r["evals"], "seconds", t_equal) for r in rs]
            rows[depth] = {
                "seeds": [r["seed"] for r in rs],
                "final_env_steps": [e["x"] for e in final],
                "final_success": mean_spread([e["success"] for e in final]),
                "final_time_at_goal": mean_spread([e["time_at_goal"] for e in final]),
                "best_success": mean_spread([max(e["success"] for e in r["evals"]) for r in rs]),
                "success_at_equal_wall": mean_spread([e["success"] if e else 0.0 for e in equal_t]),
                "train_seconds": mean_spread([e["seconds"] for e in final]),
            }
        tables[budget] = {"equal_wall_seconds": t_equal, "depths": rows}
        lines += [f"At {budget:,} env steps; equal wall clock = {t_equal / 60:.1f} training minutes (the slowest "
                  f"depth-{shallow} run's time for this budget).", "",
                  "| depth | seeds | success | time at goal | best success so far | success at equal wall clock "
                  "| training minutes |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for depth, row in rows.items():
            lines.append(f"| {depth} | {','.join(map(str, row['seeds']))} | {fmt(row['final_success'])} | "
                         f"{fmt(row['final_time_at_goal'], 1)} | {fmt(row['best_success'])} | "
                         f"{fmt(row['success_at_equal_wall'])} | {row['train_seconds']['mean'] / 60:.1f} |")
        lines.append("")
    t_equal = tables[budgets[0]]["equal_wall_seconds"] if budgets else 0.0
    summary = {"budgets": tables,
               "runs": [{k: r[k] for k in ("name", "depth", "seed", "train_seconds", "wall_s", "stopped_early")} |
                        {"final": r["evals"][-1]} for r in runs]}

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharey="row")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (depth, rs) in enumerate(by_depth.items()):
        for j, r in enumerate(rs):
            xs = [e["x"] / 1e3 for e in r["evals"]]
            ts = [e["seconds"] / 60 for e in r["evals"]]
            label = f"depth {depth}" if j == 0 else None
            for row, key in enumerate(("success", "time_at_goal")):
                ys = [e[key] for e in r["evals"]]
                axes[row, 0].plot(xs, ys, color=colors[i], alpha=0.8, label=label)
                axes[row, 1].plot(ts, ys, color=colors[i], alpha=0.8, label=label)
    axes[1, 0].set_xlabel("env steps (thousands)")
    axes[1, 1].set_xlabel("training wall clock (minutes, one core)")
    axes[0, 0].set_ylabel("eval success")
    axes[1, 0].set_ylabel("time at goal (steps of 250)")
    axes[0, 1].axvline(t_equal / 60, color="grey", ls=":", lw=1)
    axes[1, 1].axvline(t_equal / 60, color="grey", ls=":", lw=1)
    axes[0, 0].legend(loc="upper left", fontsize=8)
    fig.suptitle("point_u4_maze, online CRL: one line per seed")
    fig.tight_layout()
    fig.savefig(folder / "claim1_curves.png", dpi=80)
    plt.close(fig)

    return write(folder, summary, lines)


def claim2(folder: Path) -> dict[str, Any]:
    """Collector depth x learner depth: the 2x2 table of final success and time at goal over seeds."""
    runs = [run_records(p) | {"folder": p.name} for p in sorted(folder.iterdir()) if (p / "metrics.jsonl").exists()]
    cells: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:  # folders are c<collector depth>-l<learner depth>-s<seed>
        c, l_, _ = r["folder"].split("-")
        cells[(int(c[1:]), int(l_[1:]))].append(r)
    collectors = {}
    for p in sorted(folder.glob("collector-d*-manifest.json")):
        m = json.loads(p.read_text())
        prov = m.get("provenance", {}).get("collector", {})
        collectors[p.name.split("-")[1]] = {"transitions": m.get("totals", {}).get("transitions"),
                                            "episodes": m.get("totals", {}).get("episodes"),
                                            "final_eval": prov.get("final_eval")}
    rows = {f"collector d{c} / learner d{l_}": {
        "seeds": [r["seed"] for r in rs],
        "final_success": mean_spread([r["evals"][-1]["success"] for r in rs]),
        "final_time_at_goal": mean_spread([r["evals"][-1]["time_at_goal"] for r in rs]),
        "sgd_steps": rs[0]["evals"][-1]["x"]} for (c, l_), rs in sorted(cells.items())}
    lines = ["| collector | learner | seeds | final success | final time at goal | SGD steps |",
             "| --- | --- | --- | --- | --- | --- |"]
    for c, l_ in sorted(cells):
        row = rows[f"collector d{c} / learner d{l_}"]
        lines.append(f"| depth {c} | depth {l_} | {','.join(map(str, row['seeds']))} | {fmt(row['final_success'])} | "
                     f"{fmt(row['final_time_at_goal'], 1)} | {row['sgd_steps']:,} |")
    if collectors:
        lines += ["", "Collectors: " + "; ".join(
            f"{k}: {v['transitions']:,} transitions, {v['episodes']} episodes, final eval {v['final_eval']}"
            for k, v in collectors.items())]
    return write(folder, {"cells": rows, "collectors": collectors}, lines)


def claim3(folder: Path) -> dict[str, Any]:
    """Stitching: success by start-goal distance per depth, stitching distance, in- vs out-of-distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = runs_in(folder)
    by_depth: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        st = folder / r["name"] / "eval" / "stitching.json"
        if st.exists():
            by_depth[r["depth"]].append(r | {"stitching": json.loads(st.read_text())})
    rows: dict[int, Any] = {}
    fig, ax = plt.subplots(figsize=(7, 4))
    for depth, rs in sorted(by_depth.items()):
        dists = [row["distance"] for row in rs[0]["stitching"]["success_by_distance"]]
        per_d = np.array([[row["success"] for row in r["stitching"]["success_by_distance"]] for r in rs])
        ins = [r["stitching"]["in_distribution"] for r in rs]
        outs = [r["stitching"]["out_of_distribution"] for r in rs]
        # pooled over seeds: episodes add up, the Wilson interval of the pooled count
        pooled = {}
        for name, parts in (("in", ins), ("out", outs)):
            k = sum(p["success"] * p["episodes"] for p in parts)
            n = sum(p["episodes"] for p in parts)
            pooled[name] = {"success": k / n if n else math.nan, "episodes": n, "ci95": list(wilson_ci(k, n))}
        rows[depth] = {
            "seeds": [r["seed"] for r in rs], "distances": dists,
            "success_by_distance_mean": per_d.mean(0).tolist(),
            "success_by_distance_per_seed": per_d.tolist(),
            "stitching_distance": mean_spread([r["stitching"]["stitching_distance"] for r in rs]),
            "in_distribution": pooled["in"], "out_of_distribution": pooled["out"],
            "training_eval_success": mean_spread([r["evals"][-1]["success"] for r in rs]),
        }
        ax.plot(dists, per_d.mean(0), marker="o", label=f"depth {depth} ({len(rs)} seeds)")
        ax.fill_between(dists, per_d.min(0), per_d.max(0), alpha=0.15)
    max_cells = next(iter(by_depth.values()))[0]["stitching"].get("max_cells") if by_depth else None
    if max_cells:
        ax.axvspan(0.5, max_cells + 0.5, color="grey", alpha=0.1, label=f"trained on <= {max_cells} cells")
    ax.set_xlabel("start-goal distance (BFS maze cells)")
    ax.set_ylabel("success (mean over seeds; band: min-max)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "claim3_success_by_distance.png", dpi=80)
    plt.close(fig)
    lines = ["| depth | seeds | in-distribution (<= 3) | out-of-distribution (4..10) | stitching distance | "
             "success by distance 1..10 (mean over seeds) |", "| --- | --- | --- | --- | --- | --- |"]
    for depth, row in rows.items():
        i, o = row["in_distribution"], row["out_of_distribution"]
        lines.append(
            f"| {depth} | {','.join(map(str, row['seeds']))} | {i['success']:.2f} [{i['ci95'][0]:.2f}, "
            f"{i['ci95'][1]:.2f}] | {o['success']:.2f} [{o['ci95'][0]:.2f}, {o['ci95'][1]:.2f}] | "
            f"{fmt(row['stitching_distance'], 1)} | {' '.join(f'{v:.2f}' for v in row['success_by_distance_mean'])} |")
    return write(folder, {"depths": rows}, lines)


def claim4(folder: Path, *sources: Path) -> dict[str, Any]:
    """Geodesicity index against depth for the online (claim 1) and offline (claim 3) runs, heatmaps side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    rows, heatmaps = [], []
    for src in sources:
        for r in runs_in(src):
            g = src / r["name"] / "eval" / "geodesic.json"
            if not g.exists():
                continue
            geo = json.loads(g.read_text())
            rows.append({"claim": src.name, "run": r["name"], "depth": depth_label(r), "seed": r["seed"],
                         "index": geo["index"], "index_ci95": geo.get("ci95", {}).get("index"),
                         "wall_index": geo["wall_pairs"]["index"],
                         "wall_index_ci95": geo["wall_pairs"].get("ci95", {}).get("index"),
                         "success": r["evals"][-1]["success"]})
            png = g.with_name("geodesic.png")
            if png.exists() and r["seed"] == 0:
                heatmaps.append((f"{src.name} depth {depth_label(r)}", png))
    lines = ["| runs | depth | seeds | index, all pairs | index, wall pairs | final success |",
             "| --- | --- | --- | --- | --- | --- |"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["claim"], row["depth"])].append(row)
    table = {}
    for (claim, depth), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], int(kv[0][1].split()[0]), kv[0][1])):
        entry = {"seeds": [r["seed"] for r in rs], "index": mean_spread([r["index"] for r in rs]),
                 "wall_index": mean_spread([r["wall_index"] for r in rs]),
                 "success": mean_spread([r["success"] for r in rs])}
        table[f"{claim} d{depth}"] = entry
        lines.append(f"| {claim} | {depth} | {','.join(map(str, entry['seeds']))} | {fmt(entry['index'])} | "
                     f"{fmt(entry['wall_index'])} | {fmt(entry['success'])} |")
    if heatmaps:
        fig, axes = plt.subplots(1, len(heatmaps), figsize=(3.2 * len(heatmaps), 3.6))
        for ax, (title, png) in zip(np.atleast_1d(axes), heatmaps, strict=True):
            ax.imshow(mpimg.imread(png))
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(folder / "claim4_heatmaps.png", dpi=70)
        plt.close(fig)
    return write(folder, {"runs": rows, "groups": table}, lines)


def claim5(folder: Path, online: Path) -> dict[str, Any]:
    """Fine-tuning from offline learners: env steps until the online-from-scratch runs' final level is reached."""
    online_runs = runs_in(online)
    # the online runs' common budget (some were continued past it): their level is read there
    budget = min(r["evals"][-1]["x"] for r in online_runs if not r["stopped_early"])
    level: dict[int, float] = {}
    scratch: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in online_runs:
        if depth_label(r) == str(r["depth"]):  # same-depth actor only (claim 1's variants are not baselines)
            scratch[r["depth"]].append(r | {"evals": [e for e in r["evals"] if e["x"] <= budget]})
    for depth, rs in scratch.items():
        level[depth] = float(np.mean([r["evals"][-1]["success"] for r in rs]))

    def steps_to(evals: list[dict[str, Any]], target: float) -> int | None:
        hit = [e["x"] for e in evals if e["success"] >= target]
        return hit[0] if hit else None

    rows = []
    for r in runs_in(folder):
        target = level.get(r["depth"])
        rows.append({"run": r["name"], "depth": r["depth"], "target": target,
                     "epoch0_success": r["evals"][0]["success"], "final_success": r["evals"][-1]["success"],
                     "env_steps_to_target": None if target is None else steps_to(r["evals"], target),
                     "budget": r["evals"][-1]["x"]})
    for depth, rs in sorted(scratch.items()):
        for r in rs:
            rows.append({"run": f"online-from-scratch {r['name']}", "depth": depth, "target": level[depth],
                         "epoch0_success": None, "final_success": r["evals"][-1]["success"],
                         "env_steps_to_target": steps_to(r["evals"], level[depth]), "budget": r["evals"][-1]["x"]})
    lines = ["| run | depth | target (online final, mean) | success at start | final success | env steps to "
             "target |", "| --- | --- | --- | --- | --- | --- |"]
    for row in sorted(rows, key=lambda r: (r["depth"], r["run"])):
        start = "" if row["epoch0_success"] is None else f"{row['epoch0_success']:.2f}"
        reach = "not reached" if row["env_steps_to_target"] is None else f"{row['env_steps_to_target']:,}"
        lines.append(f"| {row['run']} | {row['depth']} | {row['target']:.2f} | {start} | {row['final_success']:.2f} "
                     f"| {reach} |")
    lines = [f"Target: the online runs' mean final success at their common budget of {budget:,} env steps.", "",
             *lines]
    return write(folder, {"online_budget": budget, "targets": level, "runs": rows}, lines)


def write(folder: Path, summary: dict[str, Any], lines: list[str]) -> dict[str, Any]:
    """summary.json + summary.md in `folder`."""
    (folder / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    (folder / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return summary


CLAIMS = {"claim1": claim1, "claim2": claim2, "claim3": claim3, "claim4": claim4, "claim5": claim5}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in CLAIMS:
        print(f"usage: summarize.py {{{','.join(CLAIMS)}}} RESULTS_DIR [SOURCE_DIR...]", file=sys.stderr)
        return 2
    CLAIMS[argv[0]](*map(Path, argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
