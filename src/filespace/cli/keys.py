"""``filespace key rotate``: every secret of a filespace sealed under a new key."""

from __future__ import annotations

import typer

from filespace.cli import context, output
from filespace.cli.params import JsonOpt, YesOpt

app = typer.Typer(help="The filespace key, which seals every secret the filespace stores.")


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    json_: JsonOpt = False,
    yes: YesOpt = False,
) -> None:
    """Seal every secret under a new random key and replace the key file with it.

    Every other client needs the new key file (or FILESPACE_KEY) afterwards.
    """
    with context.opened(ctx) as fsp:
        context.confirm(f"replace the key of filespace {fsp.name!r}", yes=yes)
        fsp.rotate_key()  # the new key goes to the key file only, never to the output
        doc = {"id": fsp.id, "name": fsp.name, "key_file": str(fsp.key_file)}
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
        return
    output.say(f"rotated the key of filespace {doc['name']!r}; the new key is in {doc['key_file']}")
    output.say("give every other client that file (or FILESPACE_KEY): the old key no longer opens")
