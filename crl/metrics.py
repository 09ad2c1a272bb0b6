"""Run logs: metrics.jsonl (one JSON object per log step) and the learning-curve PNG drawn from it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def to_host(metrics: dict[str, Any]) -> dict[str, float]:
    """Device scalars -> Python floats."""
    return {k: float(np.asarray(v)) for k, v in metrics.items()}


def all_finite(metrics: dict[str, float]) -> bool:
    """True when every value is finite and params are finite."""
    return all(math.isfinite(v) for v in metrics.values()) and metrics.get("params/finite", 1.0) == 1.0


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl."""
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_learning_curve(
    records: list[dict[str, Any]], path: Path, title: str = "", x: str = "env_steps",
) -> list[str]:
    """eval/success, eval/time_at_goal and critic/accuracy against `x` (env steps or SGD steps), saved as a PNG; a
    panel without data is left out, and runs evaluated with OGBench's tasks get a panel with one line per task.
    Returns the titles of the panels drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    def steps(x: float, _pos: int) -> str:
        return f"{x / 1e6:g}M" if abs(x) >= 1e6 else f"{x / 1e3:g}k" if abs(x) >= 1e3 else f"{x:g}"

    tasks = sorted({k for r in records for k in r if k.startswith("eval/task") and k.endswith("_success")},
                   key=lambda k: int(k[len("eval/task"):-len("_success")]))
    panels = [("eval/success", "eval success", ["eval/success"]),
              ("eval/time_at_goal", "eval time at goal", ["eval/time_at_goal"]),
              ("tasks", "eval success per task", tasks), ("critic/accuracy", "critic accuracy", ["critic/accuracy"])]
    panels = [p for p in panels if any(k in r and x in r for k in p[2] for r in records)] or panels[:1]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (_, label, keys) in zip(axes[0], panels, strict=True):
        for key in keys:
            pts = [(r[x], r[key]) for r in records if key in r and x in r]
            if pts:
                xs, ys = zip(*pts, strict=True)
                name = key[len("eval/"):-len("_success")] if len(keys) > 1 else None
                ax.plot(xs, ys, marker="." if len(pts) < 50 else None, label=name)
        if len(keys) > 1:
            ax.legend(fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(FuncFormatter(steps))
        ax.set_xlabel(x.replace("_", " "))
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [label for _, label, _ in panels]
