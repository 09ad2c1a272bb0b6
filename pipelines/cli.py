"""`crl-data`: the dataset command line. This module defines the click group and the error policy; commands live
in their own modules (`cmd_datasets`, `cmd_interop`, ...) and are registered on the group in `COMMAND_MODULES`.

Error policy: a CrlError (bad id, unknown dataset, wrong shapes, existing version...) prints one line on stderr
and exits 2; click usage errors exit 2 as well; `verify` exits 1 when it finds mismatching shards.
"""

from __future__ import annotations

import importlib
import sys

import click

from crl.datasets.store import DatasetStore
from crl.errors import CrlError

#: Modules whose `COMMANDS` (a list of click commands/groups) are added to the group, in this order.
COMMAND_MODULES = ["crl.pipelines.cmd_datasets", "crl.pipelines.cmd_interop", "crl.pipelines.cmd_collect"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    envvar="CRL_DATA_DIR",
    default="./data",
    show_default=True,
    help="Dataset root: a folder or an fsspec URL zarr supports (env: CRL_DATA_DIR).",
)
@click.pass_context
def cli(ctx: click.Context, root: str) -> None:
    """Versioned, sharded Zarr trajectory datasets: collect, list, show, verify, rm, export, import."""
    ctx.obj = {"root": root}


def get_store(ctx: click.Context) -> DatasetStore:
    """The DatasetStore for the group's --root (created on first use)."""
    obj = ctx.find_root().obj
    if "store" not in obj:
        obj["store"] = DatasetStore(obj["root"])
    return obj["store"]


def _register() -> None:
    for mod in COMMAND_MODULES:
        for cmd in importlib.import_module(mod).COMMANDS:
            cli.add_command(cmd)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the group, turning CrlError into a one-line message and exit status 2."""
    _register()
    try:
        rv = cli.main(args=argv, prog_name="crl-data", standalone_mode=False)
    except CrlError as e:
        click.echo(f"crl-data: error: {' '.join(str(e).split())}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("crl-data: aborted", err=True)
        sys.exit(1)
    except click.UsageError as e:  # one line too, with where to look
        where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        click.echo(f"crl-data: error: {' '.join(e.format_message().split())}{where}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
