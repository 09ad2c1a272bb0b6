"""`crl-data`: the dataset command line. This module defines the click group and the error policy; commands live
in their own modules (`cmd_datasets`, `cmd_interop`, ...) and are registered on the group in `COMMAND_MODULES`.

Error policy: a CrlError (bad id, unknown dataset, wrong shapes, existing version...) prints one line on stderr
and exits 2; click usage errors exit 2 as well; `verify` exits 1 when it finds mismatching shards.
"""

from __future__ import annotations

import importlib

import click

from crl.cli_errors import run_group
from crl.datasets.store import DatasetStore

#: Modules whose `COMMANDS` (a list of click commands/groups) are added to the group, in this order.
COMMAND_MODULES = ["crl.pipelines.cmd_datasets", "crl.pipelines.cmd_interop", "crl.pipelines.cmd_collect",
                   "crl.pipelines.cmd_split"]


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
    """Versioned, sharded Zarr trajectory datasets: collect, list, show, verify, rm, split, export, import."""
    ctx.obj = {"root": root}


def get_store(ctx: click.Context) -> DatasetStore:
    """The DatasetStore for the group's --root (created on first use)."""
    obj = ctx.find_root().obj
    if "store" not in obj:
        obj["store"] = DatasetStore(obj["root"])
    return obj["store"]


def register_commands() -> None:
    """Add the commands of COMMAND_MODULES to the group (main does; so can a test that walks the group)."""
    for mod in COMMAND_MODULES:
        for cmd in importlib.import_module(mod).COMMANDS:
            cli.add_command(cmd)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the group, turning CrlError into a one-line message and exit status 2."""
    register_commands()
    run_group(cli, "crl-data", argv)


if __name__ == "__main__":
    main()
