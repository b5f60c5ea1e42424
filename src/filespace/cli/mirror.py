"""``filespace mirror``: make a directory hold one link per object under a prefix."""

from __future__ import annotations

from typing import Annotated

import typer

from filespace import MirrorReport
from filespace.cli import context, output
from filespace.cli.context import fs_path
from filespace.cli.params import DryRunOpt, JsonOpt, NoStripPrefixOpt, PrefixOpt, StoreOpt

_SKIPPED_SHOWN = 20


def _counts(report: MirrorReport) -> str:
    return (
        f"{report.added} added, {report.updated} updated, {report.removed} removed, "
        f"{report.unchanged} unchanged, {len(report.skipped)} skipped"
    )


def mirror(
    ctx: typer.Context,
    directory: Annotated[str, typer.Argument(help="The directory to fill with links.")],
    store: StoreOpt,
    prefix: PrefixOpt = "",
    no_strip_prefix: NoStripPrefixOpt = False,
    no_delete: Annotated[
        bool, typer.Option("--no-delete", help="Keep links whose object is gone.")
    ] = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Link every object under a prefix into DIR; re-link changed ones, drop vanished ones."""
    target = fs_path(directory)
    with context.opened(ctx) as fsp:
        label = f"mirroring {store}:{prefix or '*'} into {target}"
        with output.progress(label) as bar:
            report = fsp.connect.mirror(
                store,
                prefix,
                target,
                strip_prefix=not no_strip_prefix,
                delete=not no_delete,
                dry_run=dry_run,
                progress=lambda so_far: bar.update(description=f"{label}: {_counts(so_far)}"),
            )
    doc = {
        "dry_run": report.dry_run,
        "store": store,
        "prefix": prefix,
        "directory": target,
        "added": report.added,
        "updated": report.updated,
        "removed": report.removed,
        "unchanged": report.unchanged,
        "skipped": [{"key": s.object_id, "reason": s.reason} for s in report.skipped],
    }
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
        return
    verb = "would mirror" if dry_run else "mirrored"
    output.say(f"{verb} {store}:{prefix} into {target}: {_counts(report)}")
    for skipped in report.skipped[:_SKIPPED_SHOWN]:
        output.say(f"  skipped {skipped.object_id!r}: {skipped.reason}")
    if len(report.skipped) > _SKIPPED_SHOWN:
        output.say(f"  ... and {len(report.skipped) - _SKIPPED_SHOWN} more (--json lists all)")


def register(app: typer.Typer) -> None:
    """Add ``mirror`` to ``app``."""
    app.command("mirror")(mirror)
