"""`crl-eval`: evaluate policies. `crl-eval goals --policy checkpoint:runs/u`, `crl-eval stitching --policy oracle
--env point_u4_maze`, `crl-eval geodesic --policy checkpoint:runs/u`.

Each command writes `<evaluator>.json` (+ a PNG) into `--out` (default `RUN_DIR/eval` for a checkpoint, else
`eval_results/<kind>_<env>`), prints a short summary, or the whole JSON with `--json`. A user error (missing run,
unknown policy or env, a run that does not fit the env) prints one line and exits 2.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from crl.cli_errors import run_group

POLICY_HELP = "checkpoint:RUN_DIR (a crl-train run folder), oracle (point mazes) or random."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Evaluate goal reaching, stitching distance and geodesicity of policies and critics."""
    from crl import enable_compile_cache

    enable_compile_cache()


def _common(f: Any) -> Any:
    f = click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")(f)
    f = click.option("--out", type=click.Path(file_okay=False), default=None,
                     help="Output folder [default: RUN_DIR/eval, or eval_results/<policy>_<env>].")(f)
    f = click.option("--step", type=int, default=None, help="Checkpoint step of the run [default: latest].")(f)
    f = click.option("--policy", required=True, help=POLICY_HELP)(f)
    return f


def _emit(result: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    from crl.eval.results import dumps

    if as_json:
        click.echo(dumps(result))
        return
    for line in lines:
        click.echo(line)
    for note in result.get("notes", []):
        click.echo(f"note: {note}")
    click.echo(f"wrote {result['json']}" + (f" and {result['png']}" if "png" in result else ""))


def _ci(ci: list[float | None] | None, fmt: str = ".2f") -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f" [{ci[0]:{fmt}}, {ci[1]:{fmt}}]"


@cli.command()
@_common
@click.option("--env", "env_name", default=None, help="Environment name [default: the run's env].")
@click.option("--episodes", type=click.IntRange(min=1), default=None,
              help="Episodes (goal cells cycle) [default: the run's num_eval_envs, else 64].")
@click.option("--seed", type=int, default=None,
              help="Key PRNGKey(SEED) [default for a checkpoint: the trainer's eval key at that step, "
                   "fold_in(PRNGKey(train seed + 1), step), which reproduces the logged eval/*; else 0].")
@click.option("--episode-length", type=click.IntRange(min=2), default=None, help="Override the env's episode length.")
@click.option("--plan-waypoints", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --env ogbench:... and a checkpoint of an offline run: test-time planning, the actor driven "
                   "along a shortest path over this many waypoints of the run's dataset, hops measured by its critic "
                   "(crl.planning; e.g. 800). 0 = the actor alone.")
def goals(policy: str, step: int | None, out: str | None, as_json: bool, env_name: str | None,
          episodes: int | None, seed: int | None, episode_length: int | None, plan_waypoints: int) -> None:
    """Success rate, time at goal and final distance on the env's own task, with 95% CIs and per goal cell.

    With --env ogbench:<dataset or env> (e.g. ogbench:pointmaze-medium-navigate-v0): OGBench's own protocol, its
    5 fixed tasks x --episodes (default 20) in its Gymnasium env, per-task and overall success; --plan-waypoints N
    adds test-time planning over the learned critic (recorded as a deviation from the protocol)."""
    if env_name is not None and env_name.startswith("ogbench:"):  # crl.eval.ogbench_protocol (report helper's)
        from crl.eval.ogbench_protocol import run_ogbench, summary_lines

        r = run_ogbench(policy, env_name, episodes, seed, out, episode_length, step, plan_waypoints=plan_waypoints)
        _emit(r, as_json, summary_lines(r))
        return
    if plan_waypoints:
        raise click.UsageError("--plan-waypoints plans in OGBench's envs only: add --env ogbench:<dataset>")
    from crl.eval.goals import run_goals

    r = run_goals(policy, env_name, episodes, seed, out, episode_length, step)
    ci = r["ci95"]
    lines = [
        f"{r['policy']} on {r['env']}: {r['episodes']} episodes, key {r['key']}",
        f"  success       {r['eval/success']:.3f}{_ci(ci['eval/success'], '.3f')}",
        f"  time at goal  {r['eval/time_at_goal']:.1f}{_ci(ci['eval/time_at_goal'], '.1f')}",
        f"  final dist    {r['eval/final_dist']:.2f}{_ci(ci['eval/final_dist'])}",
        "  goal cell      episodes  success  time@goal  final dist",
    ]
    for row in r["per_goal_cell"]:
        cell = tuple(row["cell"]) if "cell" in row else row["goal_cell"]
        lines.append(f"  {cell!s:13s} {row['episodes']:9d}  {row['success']:7.3f}  {row['time_at_goal']:9.1f}  "
                     f"{row['final_dist']:10.2f}")
    _emit(r, as_json, lines)


@cli.command()
@_common
@click.option("--env", "env_name", default=None, help="Environment name [default: the run's env].")
@click.option("--split", default=None, help="A stitching split id (its evaluation tasks and env) instead of --env.")
@click.option("--episodes-per-pair", type=click.IntRange(min=1), default=1, show_default=True,
              help="Episodes per (start, goal) pair (starts and goals jittered like the env's resets).")
@click.option("--max-pairs-per-distance", type=click.IntRange(min=1), default=None,
              help="Sample at most this many pairs per distance (large mazes) [default: every pair].")
@click.option("--max-cells", type=click.IntRange(min=1), default=None,
              help="Training range to shade and split in/out-of-distribution means by (a split brings its own).")
@click.option("--seed", type=int, default=0, show_default=True, help="Pair sampling and episode key.")
@click.option("--episode-length", type=click.IntRange(min=2), default=None, help="Override the env's episode length.")
def stitching(policy: str, step: int | None, out: str | None, as_json: bool, env_name: str | None,
              split: str | None, episodes_per_pair: int, max_pairs_per_distance: int | None, max_cells: int | None,
              seed: int, episode_length: int | None) -> None:
    """Success as a function of the start-goal cell distance, and the stitching distance."""
    from crl.eval.stitching import run_stitching

    r = run_stitching(policy, env_name, split, episodes_per_pair, max_pairs_per_distance, seed, out,
                      episode_length, max_cells, step)
    lines = [f"{r['policy']} on {r['env']}: {r['pairs']} pairs x {r['episodes_per_pair']} episodes",
             "  distance  pairs  success"]
    for row in r["success_by_distance"]:
        lines.append(f"  {row['distance']:8d}  {row['pairs']:5d}  {row['success']:.3f}{_ci(row['ci95'])}")
    lines.append(f"stitching distance {r['stitching_distance']} (success >= {r['threshold']} at every distance "
                 f"up to it; largest distance {r['max_distance']})")
    for name in ("in_distribution", "out_of_distribution"):
        if name in r:
            b = r[name]
            lines.append(f"  {name.replace('_', ' ')}: success {b['success']:.3f}{_ci(b['ci95'])} over "
                         f"{b['pairs']} pairs")
    _emit(r, as_json, lines)


@cli.command()
@_common
@click.option("--env", "env_name", default=None, help="Environment name [default: the run's env].")
@click.option("--pairs", type=click.IntRange(min=10), default=2000, show_default=True,
              help="Position pairs sampled uniformly over the free space.")
@click.option("--goal", default=None, help="Heatmap goal cell ROW,COL [default: the goal cell farthest from start].")
@click.option("--seed", type=int, default=0, show_default=True, help="Pair sampling and bootstrap seed.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap resamples for the 95% intervals (0 = none).")
def geodesic(policy: str, step: int | None, out: str | None, as_json: bool, env_name: str | None, pairs: int,
             goal: str | None, seed: int, bootstrap: int) -> None:
    """Geodesicity of a checkpoint's critic: Spearman of -logit with geodesic vs Euclidean distance."""
    from crl.eval.geodesic import run_geodesic

    r = run_geodesic(policy, env_name, pairs, goal, seed, out, step, bootstrap)
    lines = [f"{r['policy']} on {r['env']}: {r['pairs']} pairs"]
    for name, b in (("all pairs", r), ("wall pairs", r["wall_pairs"])):
        if b.get("rho_geo") is None:
            lines.append(f"  {name} ({b['pairs']}): too few")
            continue
        ci = b.get("ci95", {})
        lines.append(f"  {name} ({b['pairs']}): rho_geo {b['rho_geo']:+.3f}{_ci(ci.get('rho_geo'))}  "
                     f"rho_euc {b['rho_euc']:+.3f}{_ci(ci.get('rho_euc'))}  "
                     f"index {b['index']:+.3f}{_ci(ci.get('index'))}  (Spearman geo/euc {b['spearman_geo_euc']:+.2f})")
    _emit(r, as_json, lines)


COMMAND_MODULES = ["crl.eval.cmd_report"]
"""Modules whose `COMMANDS` (a list of click commands) are added to the group, in this order (as crl-data's)."""


def register_commands() -> None:
    """Add the commands of COMMAND_MODULES to the group, once (main does; so can a test that walks the group)."""
    for mod in COMMAND_MODULES:
        for cmd in importlib.import_module(mod).COMMANDS:
            if cmd.name not in cli.commands:
                cli.add_command(cmd)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: CrlError or a usage error -> one line on stderr, exit 2."""
    register_commands()
    run_group(cli, "crl-eval", argv)


if __name__ == "__main__":
    main()
