"""`crl-data export minari` and `crl-data import minari | ogbench`."""

from __future__ import annotations

import click


@click.group("export")
def export_group() -> None:
    """Export a version to another format."""


@click.group("import")
def import_group() -> None:
    """Import another format as the next version of a dataset."""


COMMANDS = [export_group, import_group]
