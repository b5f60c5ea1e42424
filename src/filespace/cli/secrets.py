"""Getting an S3 secret key without it ever having to be on the command line.

In order: ``--secret-key-stdin`` (one line read from stdin), ``--secret-key``
(works, but warns: other users can see a process's arguments), the
``FILESPACE_S3_SECRET_KEY`` environment variable, a hidden prompt on a
terminal (also for ``--secret-key-stdin`` when stdin is one). Whatever the
source, the secret is registered for redaction.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from filespace.cli import output
from filespace.cli.errors import CliError, register_secret

SECRET_ENV = "FILESPACE_S3_SECRET_KEY"  # noqa: S105 - a variable name, not a secret

SecretStdinOpt = Annotated[
    bool,
    typer.Option("--secret-key-stdin", help="Read the secret key from stdin (one line)."),
]
SecretArgOpt = Annotated[
    str | None,
    typer.Option(
        "--secret-key",
        help=f"The secret key itself: visible to other users, prefer --secret-key-stdin "
        f"or {SECRET_ENV}.",
        show_default=False,
    ),
]


def _from_stdin() -> str:
    if sys.stdin.isatty():  # typed, not piped: do not echo it
        return str(typer.prompt("Secret key", hide_input=True, err=True))
    text = sys.stdin.read()
    secret = text[:-1] if text.endswith("\n") else text
    secret = secret.removesuffix("\r")
    if not secret:
        raise CliError("--secret-key-stdin: stdin held no secret key")
    if "\n" in secret:
        raise CliError("--secret-key-stdin: the secret key must be a single line")
    return secret


def read_secret(*, from_stdin: bool, given: str | None) -> str:
    """The secret key from the first source that has one."""
    if from_stdin and given is not None:
        raise typer.BadParameter("give --secret-key-stdin or --secret-key, not both")
    if from_stdin:
        secret = _from_stdin()
    elif given is not None:
        register_secret(given)
        output.warn(
            "a secret key given with --secret-key is visible to other users of this "
            f"machine; use --secret-key-stdin or {SECRET_ENV} instead"
        )
        secret = given
    elif os.environ.get(SECRET_ENV):
        secret = os.environ[SECRET_ENV]
    elif sys.stdin.isatty():
        secret = str(typer.prompt("Secret key", hide_input=True, err=True))
    else:
        raise CliError(f"no secret key: pipe it in with --secret-key-stdin or set {SECRET_ENV}")
    register_secret(secret)
    return secret
