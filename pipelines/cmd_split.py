"""`crl-data split stitch`: derive a stitching split (an index over a parent version, no copied data)."""

from __future__ import annotations

import click

from crl.pipelines.cli import get_store


@click.group("split")
def split_group() -> None:
    """Derive split versions: index-only versions that read their data from a parent version.

    A split copies none of its parent's data: it stores which parent rows form its episodes (plus, for
    stitching, the evaluation tasks). It lists, shows, verifies, opens and exports like any version; the parent
    cannot be removed while splits depend on it (`crl-data rm --force` overrides).
    """


@split_group.command("stitch")
@click.argument("dataset_id")
@click.option("--max-cells", "-k", type=int, required=True,
              help="K: every pair of states in a segment is at most K maze cells apart (BFS over free cells). "
                   "1 <= K < maze diameter; the paper trains on K=3.")
@click.option("--dataset", "name", default=None,
              help="Target namespace/name (default <parent namespace>/<parent name>-stitch<K>); the next version "
                   "is created.")
@click.option("--min-length", type=int, default=2, show_default=True,
              help="Drop segments with fewer transitions than this (the manifest counts what was dropped).")
@click.pass_context
def stitch_cmd(ctx: click.Context, dataset_id: str, max_cells: int, name: str | None, min_length: int) -> None:
    """Cut DATASET_ID's episodes into segments whose states are all within K maze cells of each other.

    Every (state, future goal) pair a learner draws from a segment is then at most K cells apart: the
    stitching setting (train on nearby pairs, test on pairs further apart). Cuts are greedy, left to right: a
    new segment starts at the transition whose next state would break the rule. The split also ships the
    evaluation tasks: every ordered pair of free cells, grouped by BFS distance 1..diameter, flagged
    in-distribution when the distance is at most K (`crl.datasets.stitch_split.load_tasks`).

    Prints the new id. The parent's env spec must describe a crl maze; a split of a split is refused (split
    its parent instead).

    \b
    Example (the paper's U4 maze, diameter 10: train on pairs <= 3 cells apart, test at 4..10):
      crl-data split stitch crl/point-u4-v0 --max-cells 3
      crl-data show crl/point-u4-stitch3-v0
    """
    from crl.datasets.stitch_split import stitch_split

    m = stitch_split(get_store(ctx), dataset_id, max_cells, name=name, min_length=min_length)
    sp = m["split"]
    click.echo(m["id"])
    click.echo(f"{sp['segments']} segments, {sp['transitions']} of {sp['parent_transitions']} transitions "
               f"(dropped {sp['dropped_segments']} short segments, {sp['dropped_transitions']} transitions); "
               f"{sp['tasks']} tasks, {sp['test_tasks']} beyond {sp['max_cells']} cells", err=True)


COMMANDS = [split_group]
