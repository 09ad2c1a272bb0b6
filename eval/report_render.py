"""Rendering of `crl-eval report`: one list of blocks (headings, paragraphs, tables, images) written twice, as a
self-contained HTML page (PNGs embedded as base64 data URIs, inline CSS, no scripts) and as Markdown with the PNGs
beside it in `images/`; plus `report.json` with every number the page shows."""

from __future__ import annotations

import base64
import html
import math
import shutil
import time
from pathlib import Path
from typing import Any

Block = tuple[Any, ...]
"""("h", level, text) | ("p", text) | ("table", headers, rows) | ("img", file name in images/, caption) |
("list", items)."""

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.2em}h2{border-bottom:1px solid #eee;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:right;overflow-wrap:anywhere}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
code{background:#f6f6f6;padding:0 .2em}.muted{color:#666}
"""


def fmt(x: Any, nd: int = 3) -> str:
    """A number as the report shows it (thousands separated, `nd` decimals, a dash for none)."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "–"
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{nd}f}"
    return str(x)


def ci_text(ci: Any, nd: int = 2) -> str:
    """` [lo, hi]` of a 95% interval, or nothing."""
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f" [{ci[0]:.{nd}f}, {ci[1]:.{nd}f}]"


def _last(records: list[dict[str, Any]], key: str) -> Any:
    for r in reversed(records):
        if key in r:
            return r[key]
    return None


def _steps(x: float, _pos: int) -> str:
    return f"{x / 1e6:g}M" if abs(x) >= 1e6 else f"{x / 1e3:g}k" if abs(x) >= 1e3 else f"{x:g}"


# ---- figures -------------------------------------------------------------------------------------------------------
def plot_comparison(runs: list[Any], path: Path, legend: bool = True) -> bool:
    """Overlaid curves of every run: eval/success vs env steps and vs SGD steps, critic/accuracy vs SGD steps.
    False (nothing written) when no run logged anything."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    panels = [("env_steps", "eval/success", "eval success vs env steps"),
              ("sgd_steps", "eval/success", "eval success vs SGD steps"),
              ("sgd_steps", "critic/accuracy", "critic accuracy vs SGD steps")]
    if not any(rr.info.records for rr in runs):
        return False
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, (xk, yk, title) in zip(axes, panels, strict=True):
        drawn = False
        for n, rr in enumerate(runs):
            pts = [(r[xk], r[yk]) for r in rr.info.records if xk in r and yk in r and r[xk] is not None]
            if yk == "critic/accuracy":
                pts = [p for p in pts if p[0] > 0]  # prefill epochs log zeros
            if not pts:
                continue
            x, y = zip(*pts, strict=True)
            ax.plot(x, y, marker="." if len(pts) < 40 else None, label=rr.info.label, color=f"C{n % 10}")
            drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="0.5")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(FuncFormatter(_steps))
        ax.set_xlabel(xk.replace("_", " "))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if yk == "eval/success":
            ax.set_ylim(-0.03, 1.03)
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[1].get_legend_handles_labels()
    if not legend:
        handles, labels = [], []
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.09 if handles else 0, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_bars(runs: list[Any], path: Path) -> bool:
    """Goal-reaching success of each run with its 95% interval (the comparison at a glance)."""
    rows = []
    for rr in runs:
        g = rr.results.get("goals")
        if g:
            r = g["result"]
            rows.append((rr.info.label, r["eval/success"], (r.get("ci95") or {}).get("eval/success")))
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rows) + 2), 3.2))
    labels = [r[0] for r in rows]
    s = [r[1] for r in rows]
    err = [[max(0.0, v - (ci[0] if ci else v)) for v, (_l, _s, ci) in zip(s, rows, strict=True)],
           [max(0.0, (ci[1] if ci else v) - v) for v, (_l, _s, ci) in zip(s, rows, strict=True)]]
    ax.bar(range(len(rows)), s, yerr=err, capsize=4, color=[f"C{i % 10}" for i in range(len(rows))])
    ax.set_xticks(range(len(rows)), labels, rotation=15 if len(rows) > 3 else 0, fontsize=9)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("goal success")
    ax.set_title("goal-reaching success (95% CI)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# ---- blocks --------------------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:60]


TRANSPOSE_AT = 3
"""From this many runs on, the comparison table has one column per run (it then fits the page at any count)."""


def comparison_rows(runs: list[Any]) -> tuple[list[str], list[list[str]]]:
    """The comparison table: one row per run (`transposed` turns it for 3+ runs)."""
    from crl.eval.registry import evaluators

    registry = evaluators()
    shown = [name for name in registry if any(name in rr.results or name in rr.skipped or name in rr.errors
                                              for rr in runs)]
    headers = ["run", "trained", "env", "depth", "width", "batch", "checkpoint", "env steps", "SGD steps",
               "trainer eval/success", *(registry[n].column for n in shown)]
    rows = []
    for rr in runs:
        i = rr.info
        note = {k: "skipped" for k in rr.skipped} | {k: "error" for k in rr.errors}
        cells = []
        for n in shown:
            rec = rr.results.get(n)
            cells.append(registry[n].cell(rec["result"]) if rec else note.get(n, "–"))
        rows.append([
            i.label, i.trained, i.env_name, fmt(i.agent_field("depth")), fmt(i.agent_field("width")),
            fmt(i.agent_field("batch_size")), fmt(rr.step) if rr.step is not None else
            ("none (records)" if i.records_only else "–"), fmt(_last(i.records, "env_steps")),
            fmt(_last(i.records, "sgd_steps")), fmt(_last(i.records, "eval/success")), *cells])
    return headers, rows


def transposed(headers: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """The table turned: one row per field, one column per run (headed by the run labels)."""
    return ["", *(r[0] for r in rows)], [[h, *(r[k] for r in rows)] for k, h in enumerate(headers) if k > 0]


def _evaluator_blocks(name: str, rec: dict[str, Any], images: dict[str, Path], run_slug: str) -> list[Block]:
    from crl.eval.registry import evaluators

    out: list[Block] = list(evaluators()[name].blocks(rec["result"]))
    entry = Path(rec.get("_entry", ""))
    for img in rec.get("images", []):
        src = entry / img
        if src.is_file():
            fname = f"{run_slug}_{name}_{img}"
            images[fname] = src
            out.append(("img", fname, f"{name}: {img}"))
    if rec.get("from_records"):
        settings = ", ".join(f"{k} {v}" for k, v in sorted((rec.get("settings") or {}).items())) or "as stored"
        out.append(("p", f"_step {fmt(rec.get('step'))}, a result stored in the run folder (`{entry.name}`; "
                         f"settings: {settings}), not evaluated now_"))
    else:
        out.append(("p", f"_step {rec['step']}, {rec.get('seconds', 0):.1f} s to evaluate, cache entry "
                         f"`{entry.name}`_"))
    return out


def build_blocks(runs: list[Any], settings: Any, cache: dict[str, int], title: str, out: Path,
                 images: dict[str, Path]) -> list[Block]:
    """Every block of the report; PNGs it draws go to `out/images` and are listed in `images`."""
    from crl import code_version
    from crl.eval.registry import evaluators, sections

    img_dir = out / "images"
    blocks: list[Block] = [("h", 1, title), (
        "p", f"{len(runs)} run(s); generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by crl "
             f"{code_version()}. Evaluations: {cache['hits']} from the cache, {cache['evaluated']} run now"
             + (f", {cache['errors']} failed" if cache.get("errors") else "") + ".")]
    headers, rows = comparison_rows(runs)
    if len(runs) >= TRANSPOSE_AT:
        headers, rows = transposed(headers, rows)
    blocks += [("h", 2, "Comparison"), ("table", headers, rows)]
    if len(runs) > 1 and plot_comparison(runs, img_dir / "comparison_curves.png"):
        images["comparison_curves.png"] = img_dir / "comparison_curves.png"
        blocks.append(("img", "comparison_curves.png", "learning curves of every run (from metrics.jsonl)"))
    if len(runs) > 1 and plot_bars(runs, img_dir / "comparison_goals.png"):
        images["comparison_goals.png"] = img_dir / "comparison_goals.png"
        blocks.append(("img", "comparison_goals.png", "goal-reaching success of every run"))
    for rr in runs:
        i = rr.info
        slug = _slug(i.label)
        blocks.append(("h", 2, f"Run {i.label}"))
        blocks.append(("p", f"`{i.path}`: {i.trained}, env `{i.env_name}`, checkpoint step {fmt(rr.step)} "
                            f"(of {i.steps or 'none'})."))
        blocks += [("p", f"_{note}_") for note in rr.notes]
        cfg_rows = [[k, fmt(v)] for k, v in (
            ("depth", i.agent_field("depth")), ("width", i.agent_field("width")),
            ("batch size", i.agent_field("batch_size")), ("SGD steps / epoch", i.agent_field("sgd_steps")),
            ("num envs", i.config.get("num_envs")), ("total env steps", i.config.get("total_env_steps")),
            ("seed", i.config.get("seed")), ("env steps (last log)", _last(i.records, "env_steps")),
            ("SGD steps (last log)", _last(i.records, "sgd_steps")),
            ("trainer eval/success (last)", _last(i.records, "eval/success")),
            ("critic/accuracy (last)", _last(i.records, "critic/accuracy"))) if v is not None]
        if cfg_rows:
            blocks.append(("table", ["", "value"], cfg_rows))
        fname = f"{slug}_learning_curve.png"
        if plot_comparison([rr], img_dir / fname, legend=False):
            images[fname] = img_dir / fname
            blocks.append(("img", fname, "learning curve (metrics.jsonl)"))
        for ev in evaluators():
            if ev in rr.results:
                blocks.append(("h", 3, ev))
                blocks += _evaluator_blocks(ev, rr.results[ev], images, slug)
        for section in sections().values():
            try:
                part = section.blocks(i, img_dir)
            except Exception as e:  # noqa: BLE001 - a section that fails is named, the report still written
                part = [("list", [f"{section.name} FAILED: {type(e).__name__}: {e}"])]
            for b in part:
                if b[0] == "img":
                    images[b[1]] = img_dir / b[1]
            blocks += part
        if rr.skipped:
            blocks.append(("list", [f"{ev} skipped: {why}" for ev, why in rr.skipped.items()]))
        if rr.errors:
            blocks.append(("list", [f"{ev} FAILED: {why}" for ev, why in rr.errors.items()]))
    return blocks


# ---- writers -------------------------------------------------------------------------------------------------------
def _inline(text: str) -> str:
    """Escape, then `code`, **bold** and _italic_ spans (the subset the blocks use)."""
    import re

    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
    return re.sub(r"(?<![\w/])_([^_]+)_(?![\w/])", r'<span class="muted">\1</span>', t)


def to_html(blocks: list[Block], images: dict[str, Path], title: str) -> str:
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body>"]
    for b in blocks:
        if b[0] == "h":
            parts.append(f"<h{b[1]}>{_inline(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            parts.append(f"<p>{_inline(b[1])}</p>")
        elif b[0] == "list":
            parts.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in b[1]) + "</ul>")
        elif b[0] == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in b[1])
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in b[2])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b[0] == "img":
            data = base64.b64encode(images[b[1]].read_bytes()).decode()
            parts.append(f"<figure><img alt=\"{html.escape(b[2])}\" src=\"data:image/png;base64,{data}\">"
                         f"<figcaption>{_inline(b[2])}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def to_markdown(blocks: list[Block]) -> str:
    def cell(x: str) -> str:
        return x.replace("|", "\\|")

    parts = []
    for b in blocks:
        if b[0] == "h":
            parts.append(f"{'#' * b[1]} {b[2]}")
        elif b[0] == "p":
            parts.append(b[1])
        elif b[0] == "list":
            parts.append("\n".join(f"- {x}" for x in b[1]))
        elif b[0] == "table":
            lines = ["| " + " | ".join(cell(h) or " " for h in b[1]) + " |",
                     "|" + "|".join(":--" if n == 0 else "--:" for n in range(len(b[1]))) + "|"]
            lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in b[2]]
            parts.append("\n".join(lines))
        elif b[0] == "img":
            parts.append(f"![{b[2]}](images/{b[1]})")
    return "\n\n".join(parts) + "\n"


def write_report(runs: list[Any], out: Path, settings: Any, cache: dict[str, int], title: str
                 ) -> tuple[Path, Path, Path]:
    """Write report.html, report.md (+ images/) and report.json into `out`; returns their paths."""
    from crl.eval.report import settings_dict
    from crl.eval.results import write_json

    out.mkdir(parents=True, exist_ok=True)
    img_dir = out / "images"
    if img_dir.exists():
        shutil.rmtree(img_dir)
    img_dir.mkdir()
    images: dict[str, Path] = {}
    blocks = build_blocks(runs, settings, cache, title, out, images)
    for name, src in images.items():  # evaluator PNGs live in the cache: copy them beside the Markdown
        if src.parent != img_dir:
            shutil.copyfile(src, img_dir / name)
            images[name] = img_dir / name
    html_path, md_path = out / "report.html", out / "report.md"
    html_path.write_text(to_html(blocks, images, title))
    md_path.write_text(to_markdown(blocks))
    doc = {"title": title, "settings": settings_dict(settings), "cache": cache, "images": sorted(images),
           "runs": [{"run": str(rr.info.path), "label": rr.info.label, "env": rr.info.env_name, "step": rr.step,
                     "results": {k: v["result"] for k, v in rr.results.items()},
                     "skipped": rr.skipped, "errors": rr.errors, "notes": rr.notes} for rr in runs],
           "comparison": dict(zip(["headers", "rows"], comparison_rows(runs), strict=True))}
    json_path = write_json(out, "report", doc)
    return html_path, md_path, json_path
