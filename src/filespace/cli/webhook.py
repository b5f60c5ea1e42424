"""``filespace connect webhook-token set|clear``: the bearer token a webhook ``follow`` requires.

The token never goes through argv and is never printed. ``set`` reads it, in
order, from ``--token-file PATH`` (``-``: stdin; one line), the
``FILESPACE_WEBHOOK_TOKEN`` environment variable, or a hidden prompt on a
terminal. It is stored sealed under the filespace key (a keyholder
only); setting it again replaces it (rotation), ``clear`` removes it, and a
webhook listener then refuses to start.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from filespace.cli import context, output
from filespace.cli.errors import MIN_MASKED_LENGTH, CliError, register_secret
from filespace.cli.params import JsonOpt

TOKEN_ENV = "FILESPACE_WEBHOOK_TOKEN"  # noqa: S105 - a variable name, not a token

app = typer.Typer(
    help="The bearer token a webhook follow requires (sealed; never shown).",
    no_args_is_help=True,
)


def _one_line(text: str, where: str) -> str:
    token = text[:-1] if text.endswith("\n") else text
    token = token.removesuffix("\r")
    if not token:
        raise CliError(f"{where} held no token")
    if "\n" in token:
        raise CliError(f"{where}: the token must be a single line")
    return token


def _read(token_file: str | None) -> str:
    """The token from the first source that has one (registered for redaction)."""
    if token_file == "-":  # noqa: S105 - the name for stdin, not a token
        if sys.stdin.isatty():
            token = str(typer.prompt("Webhook token", hide_input=True, err=True))
        else:
            token = _one_line(sys.stdin.read(), "stdin")
    elif token_file is not None:
        try:
            text = Path(token_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read the token from {token_file}: {exc}") from None
        token = _one_line(text, token_file)
    elif os.environ.get(TOKEN_ENV):
        token = os.environ[TOKEN_ENV]
    elif sys.stdin.isatty():
        token = str(typer.prompt("Webhook token", hide_input=True, err=True))
    else:
        raise CliError(f"no token: give --token-file PATH (- for stdin) or set {TOKEN_ENV}")
    if len(token) >= MIN_MASKED_LENGTH:  # a shorter one is refused, and never printed
        register_secret(token)
    return token


@app.command("set")
def set_token(
    ctx: typer.Context,
    token_file: Annotated[
        str | None,
        typer.Option(
            "--token-file",
            metavar="PATH",
            help=f"Read the token from this file (- for stdin); else {TOKEN_ENV}, "
            "else a hidden prompt.",
            show_default=False,
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Set the webhook's bearer token, or replace it (16-256 of A-Z a-z 0-9 . _ ~ + / = -)."""
    _store(ctx, _read(token_file), "set", json_)


@app.command("clear")
def clear_token(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Remove the webhook's bearer token: a webhook follow then refuses to start."""
    _store(ctx, None, "cleared", json_)


def _store(ctx: typer.Context, token: str | None, done: str, json_: bool) -> None:
    """Store ``token`` (``None``: remove it) and say so (``done``: what happened)."""
    with context.opened(ctx) as fsp:
        fsp.connect.set_webhook_token(token)
        name = fsp.name
    if context.wants_json(ctx, json_):
        output.emit_json({"webhook_token": done})
        return
    output.say(f"webhook token {done} on {name!r}")


def register(connect_app: typer.Typer) -> None:
    """Add ``webhook-token`` to the ``connect`` group."""
    connect_app.add_typer(app, name="webhook-token")
