"""`crl-data export minari`, `crl-data import minari | ogbench` and `crl-data generate ogbench`."""

from __future__ import annotations

import click

from crl.pipelines.cli import get_store


@click.group("export")
def export_group() -> None:
    """Export a version to another format."""


@export_group.command("minari")
@click.argument("dataset_id")
@click.option("--minari-id", default=None, help="Minari dataset id (default: the same namespace/name-vN).")
@click.option("--format", "data_format", type=click.Choice(["hdf5", "arrow"]), default="hdf5", show_default=True)
@click.option("--author", default=None, help="Author (default: provenance 'author', else 'crl').")
@click.option("--author-email", default=None)
@click.option("--code-permalink", default=None, help="Link to the code (default: provenance, else code version).")
@click.option("--description", default=None)
@click.pass_context
def export_minari_cmd(ctx: click.Context, dataset_id: str, minari_id: str | None, data_format: str,
                      author: str | None, author_email: str | None, code_permalink: str | None,
                      description: str | None) -> None:
    """Write DATASET_ID as a Minari dataset into MINARI_DATASETS_PATH (share it with `minari upload`)."""
    from crl.datasets.minari_io import export_minari

    reader = get_store(ctx).open(dataset_id)
    mid = export_minari(reader, minari_id, data_format, author, author_email, code_permalink, description)
    click.echo(mid)


@click.group("import")
def import_group() -> None:
    """Import another format as the next version of a dataset."""


@import_group.command("minari")
@click.argument("minari_id")
@click.option("--dataset", "name", required=True, help="Target namespace/name; the next version is created.")
@click.option("--goal-indices", default=None,
              help="Box observations: state dims that form the achieved goal, e.g. 0,1.")
@click.option("--goal-dims", type=int, default=0, show_default=True,
              help="Box observations: the last N dims are the commanded goal (0: none; hindsight goals).")
@click.option("--success-threshold", type=float, default=0.5, show_default=True,
              help="Distance for success labels when the infos carry none.")
@click.option("--parent", default=None, help="Lineage: the crl dataset id this data derives from.")
@click.pass_context
def import_minari_cmd(ctx: click.Context, minari_id: str, name: str, goal_indices: str | None, goal_dims: int,
                      success_threshold: float, parent: str | None) -> None:
    """Import a local Minari dataset (Box or goal-Dict observations); prints the new id."""
    from crl.datasets.ids import parse_name
    from crl.datasets.importing import parse_indices
    from crl.datasets.minari_io import import_minari

    parse_name(name)
    m = import_minari(get_store(ctx), minari_id, name, parse_indices(goal_indices), goal_dims,
                      success_threshold, parent)
    click.echo(m["id"])


@import_group.command("ogbench")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dataset", "name", required=True, help="Target namespace/name; the next version is created.")
@click.option("--goal-indices", default="0,1", show_default=True, help="Observation dims of the achieved goal.")
@click.option("--success-threshold", type=float, default=0.5, show_default=True)
@click.option("--env-name", default=None,
              help="Env name for the manifest (default ogbench:<file stem>; a locomaze dataset name is normalised "
                   "to the -v0 name OGBench's protocol accepts, and its maze layout recorded).")
@click.option("--val/--no-val", "with_val", default=True, show_default=True,
              help="Also import the sibling FILE-val.npz (if present) as the following version, child of the first.")
@click.pass_context
def import_ogbench_cmd(ctx: click.Context, file: str, name: str, goal_indices: str, success_threshold: float,
                       env_name: str | None, with_val: bool) -> None:
    """Import an OGBench .npz (observations, actions, terminals, qpos, qvel); prints the new id(s)."""
    from crl.datasets.ids import parse_name
    from crl.datasets.importing import parse_indices
    from crl.datasets.ogbench_io import import_ogbench, load_npz, val_file

    parse_name(name)
    gi = parse_indices(goal_indices) or (0, 1)
    val = val_file(file) if with_val else None
    if val is not None:
        load_npz(val)  # validate both inputs before writing anything
    store = get_store(ctx)
    m = import_ogbench(store, file, name, gi, success_threshold, env_name)
    click.echo(m["id"])
    if val is not None:
        try:
            mv = import_ogbench(store, val, name, gi, success_threshold, env_name, parent=m["id"])
        except BaseException:
            store.remove(m["id"])  # all or nothing
            raise
        click.echo(mv["id"])


@click.group("generate")
def generate_group() -> None:
    """Generate a dataset with another benchmark's own recipe."""


@generate_group.command("ogbench")
@click.argument("env")
@click.option("--dataset", "name", default=None,
              help="Target namespace/name (default ogbench/<env without -v0>); the next version is created.")
@click.option("--episodes", type=int, default=None,
              help="Episodes (default OGBench's: navigate 1000, stitch 5000).")
@click.option("--episode-steps", type=int, default=None,
              help="Steps per episode, rows in OGBench's layout (default OGBench's: navigate 1001, stitch 201).")
@click.option("--noise", type=float, default=None, help="Gaussian action noise of the expert (default 0.5).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the whole dataset.")
@click.pass_context
def generate_ogbench_cmd(ctx: click.Context, env: str, name: str | None, episodes: int | None,
                         episode_steps: int | None, noise: float | None, seed: int) -> None:
    """Regenerate OGBench's point-maze dataset ENV (e.g. pointmaze-medium-navigate-v0) as OGBench's
    data_gen_scripts/generate_locomaze.py does, in OGBench's own env (needs the `ogbench` extra); prints the id.

    \b
    Example (OGBench's pointmaze-medium-stitch-v0: 5000 episodes of 201 steps, ~1M rows):
      crl-data generate ogbench pointmaze-medium-stitch-v0
    """
    from crl.datasets.ids import parse_name
    from crl.datasets.ogbench_gen import generate, make_spec
    from crl.ogbench_tasks import require_ogbench

    spec = make_spec(env, episodes, episode_steps, noise, seed)
    target = name or f"ogbench/{spec.dataset_name.rsplit('-v', 1)[0]}"
    parse_name(target)
    require_ogbench()
    m = generate(get_store(ctx), spec, target)
    click.echo(m["id"])
    t = m["totals"]
    click.echo(f"{t['episodes']} episodes, {t['transitions']} transitions of {spec.dataset_name} "
               f"(seed {seed}, noise {spec.noise})", err=True)


COMMANDS = [export_group, import_group, generate_group]
