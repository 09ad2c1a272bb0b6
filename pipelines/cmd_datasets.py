"""`crl-data list | show | verify | rm`: inspect and maintain the versions under the dataset root."""

from __future__ import annotations

import json

import click

from crl.datasets.ids import parse_id
from crl.pipelines.cli import get_store


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


@click.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also list unfinished (staging) versions.")
@click.pass_context
def list_cmd(ctx: click.Context, show_all: bool) -> int:
    """One row per committed version: id, episodes, transitions, size, env, created, note (splits say what they
    split). A version whose manifest cannot be read is listed as BROKEN (details on stderr) and the exit status
    is 1; the others are listed as usual."""
    store = get_store(ctx)
    manifests, broken = store.scan()
    staged = [store.staging(str(i)) for i in store.staging_ids()] if show_all else []
    if not manifests and not staged and not broken:
        click.echo(f"no datasets under {store.root}", err=True)
        return 0
    rows = [("ID", "EPISODES", "TRANSITIONS", "SIZE", "ENV", "CREATED", "NOTE")]
    bad = dict(broken)
    hashes = {m["id"]: m["content_hash"] for m in manifests}
    for m in sorted([*manifests, *({"id": i} for i in bad)], key=lambda m: parse_id(m["id"])):
        if m["id"] in bad:
            rows.append((m["id"], "-", "-", "-", "-", "-", "BROKEN manifest"))
            continue
        t = m["totals"]
        note = ""
        if m.get("kind") == "split":
            pid = m["parent"]["id"]
            note = f"split of {pid} (max {m['split']['max_cells']} cells)"
            if hashes.get(pid) != m["parent"]["content_hash"]:
                note += "; PARENT GONE" if pid not in hashes else "; PARENT CHANGED"
        rows.append((m["id"], str(t["episodes"]), str(t["transitions"]), human_bytes(t["bytes"]),
                     str(m["env_spec"].get("name", "?")), m["created"], note))
    for st in staged:
        done = st.completed().values()
        nbytes = sum(r["bytes"] for r in st.shard_records())
        state, who = store.writer_status(str(st.id))
        note = f"being written by {who}" if state == "live" else "writer gone: resume it or rm it"
        rows.append((f"{st.id} (staging)", str(sum(d["episodes"] for d in done)), str(sum(d["rows"] for d in done)),
                     human_bytes(nbytes), str(st.env_spec.get("name", "?")), st.info.get("started", "?"), note))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for i, why in broken:
        click.echo(f"crl-data: {i} is damaged: {' '.join(why.split())}; restore its manifest.json or remove it "
                   f"with `crl-data rm {i}`", err=True)
    return 1 if broken else 0


@click.command("show")
@click.argument("dataset_id")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--map", "map_path", type=click.Path(dir_okay=False), default=None,
              help="Also draw a coverage map (PNG/PDF/SVG): maze walls, a histogram of visited positions, episode "
                   "starts and goals (a split: its test tasks), per-cell visit counts, the episode length "
                   "histogram; computed with Dask over the shards.")
@click.pass_context
def show_cmd(ctx: click.Context, dataset_id: str, as_json: bool, map_path: str | None) -> None:
    """Describe one version (DATASET_ID is namespace/name-vN)."""
    m = get_store(ctx).manifest(dataset_id)
    if map_path is not None:
        from crl.pipelines.coverage import check_writable, compute_coverage, draw_coverage

        out = check_writable(map_path)
        cov = compute_coverage(get_store(ctx), dataset_id)
        draw_coverage(cov, out)
    if as_json:
        click.echo(json.dumps(m, indent=2))
        return
    t, env = m["totals"], m["env_spec"]
    parent = m["parent"]["id"] if m.get("parent") else "-"
    click.echo(f"id           {m['id']}")
    click.echo(f"created      {m['created']}  (code {m['code_version']})")
    click.echo(f"parent       {parent}")
    click.echo(f"env          {env.get('name')} (gym id {env.get('gym_id') or '-'}, layout {env.get('layout')})")
    click.echo(f"sizes        state {env.get('state_size')}, action {env.get('action_size')}, "
               f"goal {env.get('goal_size')} (indices {env.get('goal_indices')}), nq {env.get('nq')}, "
               f"nv {env.get('nv')}")
    click.echo(f"totals       {t['episodes']} episodes, {t['transitions']} transitions, {t['shards']} shards, "
               f"{human_bytes(t['bytes'])} ({m['compression']})")
    click.echo(f"content hash {m['content_hash']}")
    if m.get("kind") == "split":
        sp = m["split"]
        click.echo(f"split        {sp['method']} of {m['parent']['id']}: {sp['rule']}")
        click.echo(f"             {sp['segments']} segments ({sp['transitions']} of {sp['parent_transitions']} "
                   f"transitions); dropped {sp['dropped_segments']} segments shorter than {sp['min_length']} and "
                   f"{sp['dropped_transitions']} transitions in all; {sp['tasks']} evaluation tasks "
                   f"({sp['test_tasks']} beyond {sp['max_cells']} cells, diameter {sp['diameter']})")
    if m.get("provenance"):
        click.echo("provenance   " + json.dumps(m["provenance"], sort_keys=True))
    click.echo("fields       " + ", ".join(f"{k} {v['dtype']}{v['shape']}" for k, v in m["fields"].items()))
    if map_path is not None:
        visited = (f"{cov.summary()['cells_visited']}/{len(cov.free_cells)} free cells visited "
                   f"({cov.fraction_visited:.0%}), cell entropy {cov.entropy:.2f} of uniform"
                   if cov.fraction_visited is not None and cov.entropy is not None else "no maze layout")
        click.echo(f"map          {out}: {visited}; {cov.shards} shards in {cov.seconds:.2f} s")


@click.command("verify")
@click.argument("dataset_id")
@click.option("--scheduler", default=None,
              help="Dask scheduler: an address (tcp://host:8786) or threads|processes|sync (default threads).")
@click.pass_context
def verify_cmd(ctx: click.Context, dataset_id: str, scheduler: str | None) -> int:
    """Recompute every shard hash in parallel (Dask); list mismatching shards and exit 1 if any."""
    from crl.pipelines.verify import verify

    report = verify(get_store(ctx), dataset_id, scheduler=scheduler)
    for s in report.bad:
        why = s.error or f"sha256 {s.actual} != manifest {s.expected}"
        click.echo(f"MISMATCH {report.id} {s.path}: {why}")
    rate = report.bytes / max(report.seconds, 1e-9) / 2**20
    status = "OK" if report.ok else f"FAILED ({len(report.bad)} of {len(report.shards)} checks)"
    inherited = sum(s.version is not None for s in report.shards)
    what = f"{len(report.shards) - inherited} own + {inherited} parent" if inherited else f"{len(report.shards)}"
    click.echo(f"{status} {report.id}: {what} shards, {human_bytes(report.bytes)} "
               f"in {report.seconds:.2f} s ({rate:.0f} MiB/s)")
    return 0 if report.ok else 1


@click.command("rm")
@click.argument("dataset_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Remove even a version that splits read their data from (they then "
              "cannot be read until it is restored), or a staging version whose lease says its writer is alive.")
@click.pass_context
def rm_cmd(ctx: click.Context, dataset_id: str, yes: bool, force: bool) -> None:
    """Delete a committed version (or an unfinished staging version) of DATASET_ID.

    A version that splits depend on, and a staging version another live writer is writing, are refused (naming
    them) unless --force."""
    store = get_store(ctx)
    dsid = parse_id(dataset_id)
    if not store.exists(dataset_id) and dsid.version not in store.staging_versions(dsid.full_name):
        store.remove(dataset_id)  # raises the unknown-dataset error
    committed = store.exists(dataset_id)
    what = "version" if committed else "unfinished staging version"
    if not committed and not force and store.writer_status(dataset_id)[0] == "live":
        store.remove(dataset_id)  # raises the refusal naming the live writer
    deps = store.dependents(dataset_id) if committed else []
    if deps and not force:
        store.remove(dataset_id)  # raises the refusal naming the splits
    kids = store.children(dataset_id) if committed else []
    if kids:
        click.echo(f"note: {', '.join(kids)} name {dsid} as parent; their lineage will point at a removed version"
                   + (f" and the splits {', '.join(deps)} cannot be read" if deps else ""), err=True)
    if not yes:
        click.confirm(f"delete {what} {dsid} under {store.root}?", abort=True, err=True)
    store.remove(dataset_id, force=force)
    click.echo(f"removed {dsid}")


@click.command("copy")
@click.argument("dataset_id")
@click.option("--to", "dest", required=True, metavar="ROOT",
              help="Destination root: a folder or an fsspec URL (s3://bucket/prefix); the source is --root.")
@click.pass_context
def copy_cmd(ctx: click.Context, dataset_id: str, dest: str) -> None:
    """Copy a committed version to another root, with its manifest and lineage, checking every shard's hash there.

    Works both ways and between any two roots. The destination keeps the id; an identical version already there
    is left as it is, a different one is refused (versions are immutable). A split needs its parent copied first.

    \b
    Example (share a local dataset through a bucket, then fetch it on another machine):
      crl-data copy crl/point-u4-v0 --to s3://team-bucket/crl
      crl-data --root s3://team-bucket/crl copy crl/point-u4-v0 --to ./data
    """
    import time

    from crl.datasets.store import DatasetStore
    from crl.datasets.transfer import copy_version

    t0 = time.perf_counter()
    m, copied = copy_version(get_store(ctx), dataset_id, DatasetStore(dest))
    if not copied:
        click.echo(f"{m['id']} is already under {dest} (same content hash); nothing copied")
        return
    seconds = time.perf_counter() - t0
    nbytes = m["totals"]["bytes"]
    click.echo(f"copied {m['id']} to {dest}: {human_bytes(nbytes)} in {seconds:.1f} s, every shard hash checked there")


COMMANDS = [list_cmd, show_cmd, verify_cmd, rm_cmd, copy_cmd]
