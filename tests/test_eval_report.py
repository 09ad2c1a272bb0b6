"""`crl-eval report` on two tiny real runs: HTML (images embedded) and Markdown (PNGs beside it), the comparison
table, the per-(run, step, evaluator, settings) cache, the Dask fan-out, the CLI; (slow) the page in Chromium."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_TRAIN

from crl.eval.report import ReportSettings, make_report, read_run

REPO = Path(__file__).resolve().parents[1]
GOALS = ReportSettings(evaluators=("goals",))
"""The CLI's defaults for goals (the trainer's eval key and num_eval_envs), so `crl-eval report --evaluators goals`
finds what make_report cached."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_trainer) -> list[Path]:
    """Two 3-epoch point_u_maze runs (seeds 0 and 1) on the shared tiny trainer (tests/conftest.py: traced once per
    test process), a checkpoint and an evaluation every epoch."""
    from crl.train import run

    root = tmp_path_factory.mktemp("runs")
    out = []
    for seed in (0, 1):
        cfg = TINY_TRAIN.replace(total_env_steps=120, eval_every=1, checkpoint_every=1, seed=seed)
        run(cfg, None, root / f"s{seed}", progress=False, trainer=tiny_trainer)
        out.append(root / f"s{seed}")
    return out


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = f"from crl.eval.cli import main; main({list(args)!r})"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def _logged_success(run: Path, epoch: int) -> float:
    return next(r["eval/success"] for r in read_run(run).records if r["epoch"] == epoch)


def test_report_two_runs_html_markdown_and_cache(runs: list[Path], tmp_path: Path) -> None:
    not_a_run = tmp_path / "notes"
    not_a_run.mkdir()
    rep = make_report([*runs, not_a_run], tmp_path / "rep", GOALS, title="two seeds")
    assert rep.cache == {"hits": 0, "misses": 2, "evaluated": 2, "errors": 0}
    s0, s1, notes = rep.runs
    assert notes.skipped["goals"].startswith("no config.json (not a crl-train run folder)") and not notes.results
    for rr, run in ((s0, runs[0]), (s1, runs[1])):
        assert rr.step == 3
        g = rr.results["goals"]["result"]
        # the default key is the trainer's: the report reproduces the eval/success logged at that epoch
        assert g["eval/success"] == pytest.approx(_logged_success(run, 3))
        assert g["checkpoint_step"] == 3 and g["episodes"] == TINY_TRAIN.num_eval_envs
        assert len(list((run / "eval_cache").glob("goals-step3-*/result.json"))) == 1

    html = rep.html.read_text()
    imgs = re.findall(r'<img alt="[^"]*" src="([^"]+)"', html)
    # comparison curves, comparison bars, two learning curves, two goal maps; all inline PNGs
    assert len(imgs) == 6 and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert all(base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n" for src in imgs)
    assert "images/" not in html.split("<body>", 1)[1].replace("data:image", "")  # nothing linked from outside
    table = html.split("<h2>Comparison</h2>", 1)[1].split("</table>", 1)[0]
    head = table.split("</thead>", 1)[0]  # three folders: one column each
    assert head.count("<th>") == 4 and all(f"<th>{label}</th>" in head for label in ("s0", "s1", "notes"))
    row = next(r for r in table.split("<tr>") if r.startswith("<td>goals success"))
    assert all(f"{rr.results['goals']['result']['eval/success']:.3f}" in row for rr in (s0, s1))
    assert "<td>env</td><td>point_u_maze</td><td>point_u_maze</td>" in table

    md = rep.markdown.read_text()
    linked = re.findall(r"!\[[^\]]*\]\((images/[^)]+)\)", md)
    assert len(linked) == 6 and all((rep.markdown.parent / p).stat().st_size > 5_000 for p in linked)
    assert "| env | point_u_maze | point_u_maze | ? |" in md
    assert "goals skipped: no config.json" in md
    doc = json.loads(rep.json.read_text())
    assert [r["label"] for r in doc["runs"]] == ["s0", "s1", "notes"]

    # second run: every evaluation comes from the cache (counted, not timed), same numbers
    again = make_report(runs, tmp_path / "rep2", GOALS)
    assert again.cache == {"hits": 2, "misses": 0, "evaluated": 0, "errors": 0}
    assert [rr.results["goals"]["result"] for rr in again.runs] == [s0.results["goals"]["result"],
                                                                    s1.results["goals"]["result"]]
    # other settings are another cache entry
    other = make_report(runs[:1], tmp_path / "rep3", ReportSettings(evaluators=("goals",), goals_episodes=8))
    assert other.cache["misses"] == 1 and other.runs[0].results["goals"]["result"]["episodes"] == 8

    # the command line finds the same cache entries
    p = _cli("report", *map(str, runs), "--out", str(tmp_path / "cli"), "--evaluators", "goals")
    assert p.returncode == 0, p.stderr
    assert "2 cache hits, 0 evaluated, 0 failed" in p.stdout
    assert (tmp_path / "cli" / "report.html").is_file()


def test_report_fans_out_on_dask(runs: list[Path], tmp_path: Path) -> None:
    from dask.distributed import Client, LocalCluster

    cache = tmp_path / "cache"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        rep = make_report(runs, tmp_path / "rep", GOALS, cache_dir=cache, client=client)
        workers = set(client.scheduler_info()["workers"])
    assert rep.cache == {"hits": 0, "misses": 2, "evaluated": 2, "errors": 0}
    assert all(rr.results["goals"]["evaluated_on"] in workers for rr in rep.runs)  # ran as Dask tasks
    assert len(list(cache.glob("*/goals-step3-*/result.json"))) == 2  # --cache-dir, one folder per run
    for rr, run in zip(rep.runs, runs, strict=True):
        assert rr.results["goals"]["result"]["eval/success"] == pytest.approx(_logged_success(run, 3))
    again = make_report(runs, tmp_path / "rep2", GOALS, cache_dir=cache)
    assert again.cache["hits"] == 2 and again.cache["evaluated"] == 0


def test_user_errors_exit_2(runs: list[Path], tmp_path: Path) -> None:
    p = _cli("report", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "no run folder" in p.stderr
    p = _cli("report", str(tmp_path), "--out", str(tmp_path / "o"), "--evaluators", "goals,speed")
    assert p.returncode == 2 and "unknown evaluator(s) ['speed']" in p.stderr
    if importlib.util.find_spec("ogbench") is not None:  # a crl-maze run does not fit an OGBench env
        p = _cli("goals", "--policy", f"checkpoint:{runs[0]}", "--env", "ogbench:pointmaze-medium-navigate-v0")
        assert p.returncode == 2 and "state size 4 (env observation: 2)" in p.stderr, p.stderr


def _records_only(run: Path, dest: Path, keep_cache: bool = True) -> Path:
    """A copy of `run` as committed results keep it: no checkpoints (and, unless `keep_cache`, no stored results)."""
    ignore = {"checkpoints"} | (set() if keep_cache else {"eval_cache"})
    shutil.copytree(run, dest, ignore=lambda _d, names: [n for n in names if n in ignore])
    return dest


def test_report_from_records_alone_and_a_table_that_fits_at_three_runs(runs: list[Path], tmp_path: Path) -> None:
    from crl.eval.report import NEEDS_CHECKPOINT

    live_copy = tmp_path / "committed" / "stored"
    shutil.copytree(runs[0], live_copy, ignore=lambda _d, names: [n for n in names if n == "eval_cache"])
    want = make_report([live_copy], tmp_path / "first", GOALS).runs[0].results["goals"]["result"]
    shutil.rmtree(live_copy / "checkpoints")  # as committed results keep it: records and the stored result
    stored = live_copy
    bare = _records_only(runs[0], tmp_path / "committed" / "bare", keep_cache=False)
    rep = make_report([stored, bare, runs[1]], tmp_path / "rep", GOALS)
    assert rep.cache["misses"] + rep.cache["hits"] == 1  # only the run with checkpoints is evaluated
    s, b, live = rep.runs
    assert s.step is None and s.results["goals"]["from_records"] and s.results["goals"]["result"] == want
    assert "drawn from its records" in s.notes[0] and s.info.records[-1]["epoch"] == 3
    assert b.skipped == {"goals": NEEDS_CHECKPOINT} and not b.results and live.step == 3
    html = rep.html.read_text()
    assert "a result stored in the run folder" in html and NEEDS_CHECKPOINT.replace("'", "&#x27;") in html
    assert html.count('alt="learning curve (metrics.jsonl)"') == 3  # every run's curve, from its records
    # 3 runs: one column per run, so the table's width grows with runs, not with fields
    table = html.split("<h2>Comparison</h2>", 1)[1].split("</table>", 1)[0]
    head = table.split("</thead>", 1)[0]
    assert head.count("<th>") == 4 and all(f"<th>{lab}</th>" in head for lab in ("stored", "bare", "s1"))
    assert "<td>goals success [95% CI]</td>" in table and f"{want['eval/success']:.3f}" in table
    assert "overflow-wrap:anywhere" in html and "white-space:nowrap" not in html
    assert json.loads(rep.json.read_text())["runs"][1]["skipped"] == {"goals": NEEDS_CHECKPOINT}


def test_report_options_reach_the_recorded_settings(runs: list[Path], tmp_path: Path) -> None:
    committed = _records_only(runs[0], tmp_path / "committed")
    out, cache = tmp_path / "o", tmp_path / "cache"
    p = _cli("report", str(committed), str(runs[1]), "--out", str(out), "--evaluators", "goals,stitching",
             "--step", "3", "--episodes", "5", "--seed", "2", "--episodes-per-pair", "2",
             "--max-pairs-per-distance", "4", "--geodesic-pairs", "50", "--bootstrap", "10",
             "--ogbench-max-steps", "100", "--cache-dir", str(cache), "--title", "options walk", "--no-progress")
    assert p.returncode == 0, p.stderr
    doc = json.loads((out / "report.json").read_text())
    assert doc["title"] == "options walk" and "<title>options walk</title>" in (out / "report.html").read_text()
    assert doc["settings"] == {"evaluators": ["goals", "stitching"], "step": 3, "goals_episodes": 5, "seed": 2,
                               "stitching_episodes_per_pair": 2, "stitching_max_pairs_per_distance": 4,
                               "geodesic_pairs": 50, "geodesic_bootstrap": 10, "ogbench_max_episode_steps": 100}
    live = doc["runs"][1]
    assert live["results"]["goals"]["episodes"] == 5 and live["results"]["goals"]["checkpoint_step"] == 3
    assert live["results"]["stitching"]["episodes_per_pair"] == 2
    assert len(list(cache.glob("*/goals-step3-*/result.json"))) == 1  # --cache-dir, not RUN/eval_cache
    assert "cache hit" not in p.stderr and "evaluating" not in p.stderr  # --no-progress


# ---- slow: the page in a real browser ------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PROBE = """<script>
window.__errs=[];window.addEventListener('error',e=>window.__errs.push(String(e.message||e.type)),true);
window.addEventListener('load',()=>{const imgs=[...document.images];document.body.setAttribute('data-probe',
JSON.stringify({n:imgs.length,bad:imgs.filter(i=>!(i.complete&&i.naturalWidth>0)).map(i=>i.alt),errs:window.__errs}));});
</script>"""


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *args],
                          capture_output=True, text=True, timeout=180)


def _probe(page: Path) -> dict:
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    p = _chromium("--dump-dom", probe.as_uri())
    assert p.returncode == 0, p.stderr[-2000:]
    m = re.search(r'data-probe="([^"]*)"', p.stdout)
    assert m, p.stdout[-2000:]
    console_errors = [ln for ln in p.stderr.splitlines() if ":CONSOLE(" in ln]  # the page itself logs nothing
    return {**json.loads(m.group(1).replace("&quot;", '"')), "console": console_errors}


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="no Chromium at /usr/bin/chromium (apt-get install chromium)")
def test_report_renders_in_chromium(runs: list[Path], tmp_path: Path) -> None:
    rep = make_report(runs, tmp_path / "rep", GOALS, title="crl report: two point_u_maze seeds")
    got = _probe(rep.html)
    assert got["n"] == 6 and got["bad"] == [] and got["errs"] == [] and got["console"] == [], got
    # the probe does catch a broken image
    broken = tmp_path / "broken" / "report.html"
    broken.parent.mkdir()
    broken.write_text(rep.html.read_text().replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA", 1))
    assert len(_probe(broken)["bad"]) == 1
    shot = tmp_path / "report.png"
    p = _chromium(f"--screenshot={shot}", "--window-size=1280,1600", rep.html.as_uri())
    assert p.returncode == 0 and shot.stat().st_size > 20_000, p.stderr[-2000:]
    if os.environ.get("CRL_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, REPO / "docs" / "report_screenshot.png")
