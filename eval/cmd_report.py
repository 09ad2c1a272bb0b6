"""`crl-eval report RUN_DIR... --out DIR`: evaluate runs (cached, fanned out on Dask) and write an HTML page with
its Markdown twin (`crl.eval.report`). Registered on the `crl-eval` group by `crl.eval.cli.COMMAND_MODULES`."""

from __future__ import annotations

import sys

import click

from crl.eval.report import EVALUATORS


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Folder for report.html (self-contained), report.md + images/, report.json.")
@click.option("--evaluators", default=",".join(EVALUATORS), show_default=True,
              help="Comma-separated evaluators to run where they apply (goals everywhere; stitching and geodesic on "
                   "crl mazes).")
@click.option("--step", type=int, default=None, help="Checkpoint step to evaluate [default: each run's latest].")
@click.option("--episodes", type=click.IntRange(min=1), default=None,
              help="Goal episodes [default: the run's num_eval_envs; OGBench runs: 20 per task].")
@click.option("--seed", type=int, default=None,
              help="Evaluation seed [default: goals use the trainer's eval key (matches the logged eval/*), others 0].")
@click.option("--episodes-per-pair", type=click.IntRange(min=1), default=1, show_default=True,
              help="Stitching: episodes per (start, goal) pair.")
@click.option("--max-pairs-per-distance", type=click.IntRange(min=1), default=32, show_default=True,
              help="Stitching: pairs sampled per cell distance.")
@click.option("--geodesic-pairs", type=click.IntRange(min=10), default=2000, show_default=True,
              help="Geodesic: position pairs.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=200, show_default=True,
              help="Geodesic: bootstrap resamples for the intervals.")
@click.option("--ogbench-max-steps", type=click.IntRange(min=1), default=None,
              help="OGBench runs: episode limit [default: the protocol's 1000]; recorded as a deviation.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Where evaluations are cached [default: RUN_DIR/eval_cache of each run].")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Evaluations at once on a Dask LocalCluster (1: in this process).")
@click.option("--scheduler", default=None, help="Address of an existing Dask scheduler (tcp://host:8786).")
@click.option("--title", default="crl report", show_default=True, help="Page title.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Log cache hits and evaluations.")
def report_cmd(run_dirs: tuple[str, ...], out: str, evaluators: str, step: int | None, episodes: int | None,
               seed: int | None, episodes_per_pair: int, max_pairs_per_distance: int, geodesic_pairs: int,
               bootstrap: int, ogbench_max_steps: int | None, cache_dir: str | None, workers: int,
               scheduler: str | None, title: str, progress: bool) -> None:
    """Evaluate runs and write one report comparing them.

    \b
    For each RUN_DIR (a crl-train run folder): goal reaching (OGBench's 5-task protocol for runs trained on an
    imported OGBench dataset), stitching and geodesicity where the env is a crl maze; learning curves from
    metrics.jsonl; a comparison table and overlaid curves for several runs. Results are cached per run,
    checkpoint step, evaluator and settings, so a re-run evaluates nothing. Exits 1 when an evaluation failed
    (the report is still written and names it).

    \b
    Example:
      crl-eval report runs/d4 runs/d16 runs/d64 --out reports/depth --workers 2
    """
    from crl.eval.report import ReportSettings, make_report

    settings = ReportSettings(
        evaluators=tuple(e.strip() for e in evaluators.split(",") if e.strip()), step=step, goals_episodes=episodes,
        seed=seed, stitching_episodes_per_pair=episodes_per_pair,
        stitching_max_pairs_per_distance=max_pairs_per_distance, geodesic_pairs=geodesic_pairs,
        geodesic_bootstrap=bootstrap, ogbench_max_episode_steps=ogbench_max_steps)
    r = make_report(list(run_dirs), out, settings, cache_dir, workers, scheduler, title=title, progress=progress)
    c = r.cache
    click.echo(f"wrote {r.html}, {r.markdown} and {r.json}")
    click.echo(f"evaluations: {c['hits']} cache hits, {c['evaluated']} evaluated, {c['errors']} failed")
    for rr in r.runs:
        for ev, why in rr.skipped.items():
            click.echo(f"  {rr.info.label}: {ev} skipped ({why})")
        for ev, why in rr.errors.items():
            click.echo(f"  {rr.info.label}: {ev} FAILED: {why}", err=True)
    if c["errors"]:
        sys.exit(1)


COMMANDS = [report_cmd]
