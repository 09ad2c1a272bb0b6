"""The error policy every `crl-*` command line shares: user errors are one line on stderr and exit status 2."""

from __future__ import annotations

import sys

import click

from crl.errors import CrlError


def run_group(group: click.Group, prog_name: str, argv: list[str] | None = None) -> None:
    """Run a click group as a console script.

    A CrlError (bad id, unknown env, inconsistent config, existing version...), a click usage error and a lost
    connection to a storage server (`crl.datasets.location.connection_failure`) print `<prog>: error: <one line>`
    and exit 2 (no traceback); Ctrl-C / an aborted prompt exits 1.
    """
    try:
        rv = group.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except CrlError as e:
        click.echo(f"{prog_name}: error: {' '.join(str(e).split())}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo(f"{prog_name}: aborted", err=True)
        sys.exit(1)
    except click.UsageError as e:  # one line too, with where to look
        where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        click.echo(f"{prog_name}: error: {' '.join(e.format_message().split())}{where}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except Exception as e:  # a storage server that went away mid-command is a user-facing error too
        from crl.datasets.location import connection_failure

        lost = connection_failure(e)
        if lost is None:
            raise
        click.echo(f"{prog_name}: error: {' '.join(str(lost).split())}", err=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)
