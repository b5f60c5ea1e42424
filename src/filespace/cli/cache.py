"""``filespace cache info`` and ``filespace cache prune``: the block caches on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

import filespace
from filespace.cli import context, output
from filespace.cli.params import DryRunOpt, JsonOpt

app = typer.Typer(help="The block caches of linked files on this machine (one per filespace).")

CacheDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="FILESPACE_CACHE_DIR",
        metavar="DIR",
        help="The cache root (default: $XDG_CACHE_HOME/filespace or ~/.cache/filespace).",
        show_default=False,
    ),
]


def _document(cache: filespace.CacheInfo) -> dict[str, Any]:
    return {
        "filespace_id": cache.filespace_id,
        "directory": cache.directory,
        "location": cache.location,
        "size": cache.size,
        "blocks": cache.blocks,
        "last_used": cache.last_used,
        "budget_mb": cache.budget_mb,
        "in_use": cache.in_use,
        "refused": cache.refused,
    }


def _state(cache: filespace.CacheInfo) -> str:
    if cache.refused is not None:
        return f"refused: {cache.refused}"
    return "in use" if cache.in_use else ""


@app.command("info")
def info(ctx: typer.Context, cache_dir: CacheDirOpt = None, json_: JsonOpt = False) -> None:
    """Show the cache root and each filespace's cache: size, blocks, last use."""
    root = filespace.cache_root(cache_dir)
    caches = filespace.cache_info(cache_dir)
    if context.wants_json(ctx, json_):
        output.emit_json({"root": str(root), "caches": [_document(c) for c in caches]})
        return
    output.say(f"cache root: {root}")
    if not caches:
        output.say("no caches")
        return
    rows = [
        [
            c.filespace_id,
            c.location or "(not recorded)",
            output.human_size(c.size),
            str(c.blocks),
            output.timestamp(int(c.last_used)),
            _state(c),
        ]
        for c in caches
    ]
    output.table(["filespace id", "location", "size", "blocks", "last used", ""], rows)


@app.command("prune")
def prune(
    ctx: typer.Context,
    all_: Annotated[
        bool, typer.Option("--all", help="Remove every cache not in use by an open filespace.")
    ] = False,
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            min=0,
            metavar="DAYS",
            help="Remove caches unused for longer than this.",
        ),
    ] = 30,
    no_check: Annotated[
        bool,
        typer.Option(
            "--no-check", help="Do not ask each cache's location whether its filespace is there."
        ),
    ] = False,
    cache_dir: CacheDirOpt = None,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Remove caches nobody needs: unused for a while, or of filespaces that are gone.

    A cache in use by an open filespace (a mount, any process) is never removed.
    """
    pruned = filespace.prune_caches(
        older_than,
        everything=all_,
        check_locations=not no_check,
        dry_run=dry_run,
        cache_dir=cache_dir,
    )
    freed = sum(p.cache.size for p in pruned)
    if context.wants_json(ctx, json_):
        output.emit_json(
            {
                "dry_run": dry_run,
                "freed": freed,
                "pruned": [{**_document(p.cache), "reason": p.reason} for p in pruned],
            }
        )
        return
    verb = "would remove" if dry_run else "removed"
    for p in pruned:
        where = p.cache.location or p.cache.directory
        size = output.human_size(p.cache.size)
        output.say(f"{verb} {p.cache.filespace_id} ({size}, {where}): {p.reason}")
    output.say(f"{verb} {output.counted(len(pruned), 'cache')}, {output.human_size(freed)}")


def register(app_: typer.Typer) -> None:
    """Add ``cache`` to ``app_``."""
    app_.add_typer(app, name="cache")
