"""The root ``filespace`` command: global options, sub-commands, error handling.

Commands raise; :func:`run` turns any error into one ``error: ...`` line on
stderr and exit code 1 (with ``--debug``, the traceback first). Usage errors
are Typer's and exit with 2.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

import filespace
from filespace.cli import (
    cache,
    connectstate,
    context,
    files,
    follow,
    keys,
    links,
    mirror,
    mount,
    space,
    stores,
    transfer,
    unmount,
    webhook,
)
from filespace.cli.errors import format_traceback, message
from filespace.cli.helptext import HumanGroup

app = typer.Typer(
    cls=HumanGroup,
    name="filespace",
    help="A file tree with its metadata in a database and zero-copy links to S3 objects.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"filespace {filespace.__version__}\n")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    location: Annotated[
        str | None,
        typer.Option(
            "--filespace",
            "-f",
            envvar="FILESPACE",
            metavar="LOCATION",
            help="The filespace: a directory or an engine URL.",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="FILESPACE_DEBUG", help="Show tracebacks of errors."),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document (any command).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Work with a filespace: its files, its data stores and its links to S3 objects."""
    context.current.location = location
    context.current.debug = debug
    context.current.json = json_output
    ctx.obj = context.current


space.register(app)
files.register(app)
transfer.register(app)
links.register(app)
mirror.register(app)
follow.register(app)
mount.register(app)
unmount.register(app)
cache.register(app)
connectstate.register(space.connect_app)
webhook.register(space.connect_app)
app.add_typer(space.connect_app, name="connect")
app.add_typer(stores.app, name="store")
app.add_typer(links.files_app, name="files")
app.add_typer(keys.app, name="key")


def run() -> None:
    """Run the command line; never let a traceback out unless ``--debug``."""
    try:
        app(prog_name="filespace")
    except Exception as exc:  # noqa: BLE001 - the one place every error ends up
        if context.current.debug:
            sys.stderr.write(format_traceback(exc))
        sys.stderr.write(f"error: {message(exc)}\n")
        sys.exit(1)
