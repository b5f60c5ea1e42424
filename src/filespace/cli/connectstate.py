"""``filespace connect status`` and ``connect disable``: is Connect on, and turning it off."""

from __future__ import annotations

from typing import Any

import typer

import filespace
from filespace import FIRST_CONNECT_FORMAT, ConnectInUseError
from filespace.cli import context, output
from filespace.cli.errors import CliError
from filespace.cli.params import DryRunOpt, JsonOpt


def _in_use(count: int) -> CliError:
    return CliError(
        f"Connect is still in use: {output.counted(count, 'linked file')}; nothing was changed "
        "(unlink them first: filespace unlink --all / --yes)"
    )


def _status(fsp: filespace.Filespace) -> dict[str, Any]:
    """What ``connect status`` shows, as its JSON document."""
    stats = fsp.fs.get_statistics()
    enabled = fsp.connect.are_data_stores_available()
    stores = []
    if enabled:
        for info in fsp.connect.list_data_stores():
            linked = fsp.connect.count_external_files(info.name)
            stores.append({"name": info.name, "bucket": info.bucket_name, "linked_files": linked})
    return {
        "format_version": fsp.format_version,
        "supported": fsp.format_version >= FIRST_CONNECT_FORMAT,
        "enabled": enabled,
        "data_stores": stores if enabled else None,
        "linked_files": stats.external_files_count,
        "linked_size": stats.external_files_size,
    }


def status(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Show the format, whether Connect is on, its data stores and how many files are linked."""
    with context.opened(ctx) as fsp:
        doc = _status(fsp)
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
        return
    if not doc["supported"]:
        state = f"unavailable: format {doc['format_version']} (run filespace upgrade)"
    elif doc["enabled"]:
        state = "enabled"
    else:
        state = "not enabled (run filespace connect enable)"
    stores = doc["data_stores"]
    output.fields(
        [
            ("format", str(doc["format_version"])),
            ("connect", state),
            ("data stores", "-" if stores is None else str(len(stores))),
            (
                "linked files",
                f"{doc['linked_files']} ({output.human_size(doc['linked_size'])})",
            ),
        ]
    )
    if stores:
        output.say()
        rows = [[s["name"], s["bucket"], str(s["linked_files"])] for s in stores]
        output.table(["store", "bucket", "linked files"], rows)


def disable(ctx: typer.Context, dry_run: DryRunOpt = False, json_: JsonOpt = False) -> None:
    """Turn Connect off; refused while any file is linked. Data stores are kept for later."""
    with context.opened(ctx) as fsp:
        was = fsp.connect.are_data_stores_available()
        linked = fsp.fs.get_statistics().external_files_count
        if linked:
            raise _in_use(linked)
        if was and not dry_run:
            try:
                fsp.connect.disable()
            except ConnectInUseError as busy:  # linked meanwhile by another client
                raise _in_use(busy.count) from None
        name = fsp.name
    if context.wants_json(ctx, json_):
        output.emit_json({"dry_run": dry_run, "was_enabled": was, "enabled": was and dry_run})
    elif not was:
        output.say(f"Connect is not enabled on {name!r}")
    else:
        output.say(f"{'would disable' if dry_run else 'disabled'} Connect on {name!r}")


def register(connect_app: typer.Typer) -> None:
    """Add ``status`` and ``disable`` to the ``connect`` group."""
    connect_app.command("status")(status)
    connect_app.command("disable")(disable)
