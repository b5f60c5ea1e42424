"""Commands about the filespace as a whole: init, info, upgrade, connect enable/config."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

import filespace
from filespace import CURRENT_FORMAT, FIRST_CONNECT_FORMAT, OLDEST_FORMAT
from filespace.cli import context, output
from filespace.cli.errors import CliError
from filespace.cli.params import DryRunOpt, JsonOpt
from filespace.cli.secrets import SECRET_ENV, read_secret

connect_app = typer.Typer(help="Connect: link S3 objects as read-only files.", no_args_is_help=True)


def _default_name(location: str) -> str:
    return Path(location.rstrip("/")).name or "filespace"


def init(
    ctx: typer.Context,
    location: Annotated[
        str | None,
        typer.Argument(
            help="A new or empty directory, or an engine URL (default: --filespace / FILESPACE).",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Name of the filespace (default: the directory's).")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            metavar="URL",
            help="Block store for native files: file:///dir or s3://bucket/p.",
        ),
    ] = None,
    format_version: Annotated[
        int,
        typer.Option(
            "--format",
            min=OLDEST_FORMAT,
            max=CURRENT_FORMAT,
            metavar="VERSION",
            help="On-disk format.",
        ),
    ] = CURRENT_FORMAT,
    data_region: Annotated[
        str, typer.Option("--data-region", help="Region of the s3:// block store's bucket.")
    ] = "us-east-1",
    data_endpoint: Annotated[
        str,
        typer.Option(
            "--data-endpoint",
            metavar="URL",
            help="S3 endpoint URL of the block store (default: AWS).",
        ),
    ] = "",
    data_access_key: Annotated[
        str | None,
        typer.Option(
            "--data-access-key", help="Access key for the s3:// block store.", show_default=False
        ),
    ] = None,
    data_secret_key_stdin: Annotated[
        bool,
        typer.Option(
            "--data-secret-key-stdin",
            help=f"Read the block store's secret key from stdin (else {SECRET_ENV}).",
        ),
    ] = False,
    data_virtual_addressing: Annotated[
        bool, typer.Option("--data-virtual-addressing", help="Use bucket.host URLs.")
    ] = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Create a filespace."""
    location = location or context.location(ctx)
    shown = filespace.public_location(location)  # a URL's password is never printed
    name = name or _default_name(shown)
    on_s3 = data is not None and data.startswith("s3:")
    s3_flags = (data_access_key, data_secret_key_stdin, data_endpoint, data_virtual_addressing)
    if not on_s3 and (s3_flags != (None, False, "", False) or data_region != "us-east-1"):
        raise CliError("the --data-* options are for an s3:// block store (--data s3://...)")
    if on_s3 and not data_access_key:
        raise CliError(f"--data {data} needs --data-access-key and the secret key")
    if dry_run:
        filespace.check_new_location(location)
        doc: dict[str, Any] = {"dry_run": True, "location": shown, "name": name}
        doc["format_version"] = format_version
        if context.wants_json(ctx, json_):
            output.emit_json(doc)
        else:
            output.say(f"would create filespace {name!r} (format {format_version}) at {shown}")
        return
    secret = read_secret(from_stdin=data_secret_key_stdin, given=None) if on_s3 else None
    with filespace.create(
        location,
        name=name,
        data=data,
        format_version=format_version,
        data_region=data_region,
        data_endpoint=data_endpoint,
        data_access_key=data_access_key,
        data_secret_key=secret,
        data_virtual_addressing=data_virtual_addressing,
    ) as fsp:
        doc = {
            "dry_run": False,
            "location": shown,
            "id": fsp.id,
            "name": fsp.name,
            "format_version": fsp.format_version,
            "key_file": str(fsp.key_file),
        }
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
        return
    output.say(f"created filespace {name!r} (id {doc['id']}, format {format_version}) at {shown}")
    output.say(f"its key is in {doc['key_file']}: back it up, data-store secrets need it")
    if format_version >= FIRST_CONNECT_FORMAT:
        output.say(f"to link S3 objects: filespace -f {shown} connect enable")


def _connect_status(fsp: filespace.Filespace) -> tuple[str, int | None]:
    if fsp.format_version < FIRST_CONNECT_FORMAT:
        return f"unavailable (format {fsp.format_version}: run filespace upgrade)", None
    if not fsp.connect.are_data_stores_available():
        return "not enabled (run filespace connect enable)", None
    return "enabled", len(fsp.connect.list_data_stores())


def info(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Show the filespace: id, name, format, engine, block store, Connect, statistics."""
    with context.opened(ctx) as fsp:
        status, stores = _connect_status(fsp)
        stats = fsp.fs.get_statistics()
        doc = {
            "id": fsp.id,
            "name": fsp.name,
            "full_name": fsp.full_name,
            "format_version": fsp.format_version,
            "engine_url": fsp.engine_url,
            "data_url": fsp.data_url,
            "connect": {"enabled": status == "enabled", "status": status, "data_stores": stores},
            "statistics": dataclasses.asdict(stats),
        }
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
        return
    size = output.human_size
    connect = status if stores is None else f"{status} ({output.counted(stores, 'data store')})"
    output.fields(
        [
            ("id", fsp.id),
            ("name", fsp.name),
            ("full name", str(doc["full_name"])),
            ("format", str(doc["format_version"])),
            ("engine", str(doc["engine_url"])),
            ("block store", str(doc["data_url"])),
            ("connect", connect),
            ("files", str(stats.file_count)),
            ("directories", str(stats.directory_count)),
            ("symlinks", str(stats.symlink_count)),
            ("data size", size(stats.data_size)),
            ("storage size", size(stats.storage_size)),
            ("external files", f"{stats.external_files_count} ({size(stats.external_files_size)})"),
        ]
    )


def upgrade(
    ctx: typer.Context,
    location: Annotated[
        str | None,
        typer.Argument(help="The filespace to upgrade (default: --filespace / FILESPACE)."),
    ] = None,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Migrate a filespace to the current format in place."""
    where = location or context.location(ctx)
    shown = filespace.public_location(where)  # a URL's password is never printed
    with filespace.open(where) as fsp:
        before = fsp.format_version
    after = before if dry_run else filespace.upgrade(where)
    doc = {"dry_run": dry_run, "location": shown, "from": before, "to": CURRENT_FORMAT}
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
    elif before >= CURRENT_FORMAT:
        output.say(f"{shown} is already at format {before}")
    elif dry_run:
        output.say(f"would upgrade {shown} from format {before} to {CURRENT_FORMAT}")
    else:
        output.say(f"upgraded {shown} from format {before} to {after}")


@connect_app.command("enable")
def enable(ctx: typer.Context, dry_run: DryRunOpt = False, json_: JsonOpt = False) -> None:
    """Turn Connect on, so data stores can be added and objects linked."""
    with context.opened(ctx) as fsp:
        was = fsp.connect.are_data_stores_available()
        if fsp.format_version < FIRST_CONNECT_FORMAT:
            fsp.connect.enable()  # raises, saying how to upgrade
        if not dry_run and not was:
            fsp.connect.enable()
        name = fsp.name
    if context.wants_json(ctx, json_):
        output.emit_json({"dry_run": dry_run, "was_enabled": was, "enabled": was or not dry_run})
    elif was:
        output.say(f"Connect is already enabled on {name!r}")
    else:
        output.say(f"{'would enable' if dry_run else 'enabled'} Connect on {name!r}")


_PRIVATE_URLS = {
    True: "allowed (HTTP links may reach loopback, private and link-local addresses)",
    False: "refused (HTTP links reach public addresses only)",
}


@connect_app.command("config")
def config(
    ctx: typer.Context,
    allow_private_urls: Annotated[
        bool | None,
        typer.Option(
            "--allow-private-urls/--no-allow-private-urls",
            help="Let HTTP links reach loopback, private and link-local (metadata) addresses.",
            show_default=False,
        ),
    ] = None,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Show Connect's settings, or change them (needs the filespace key)."""
    with context.opened(ctx) as fsp:
        before = fsp.connect.get_settings()
        after = before
        if allow_private_urls is not None:
            after = dataclasses.replace(before, allow_private_urls=allow_private_urls)
            if not dry_run:
                after = fsp.connect.configure(allow_private_urls=allow_private_urls)
        name = fsp.name
    changed = after != before
    if context.wants_json(ctx, json_):
        output.emit_json(
            {"dry_run": dry_run, "changed": changed, "settings": dataclasses.asdict(after)}
        )
        return
    if allow_private_urls is None:
        output.fields([("private URLs", _PRIVATE_URLS[after.allow_private_urls])])
        return
    verb, done = ("allow", "allowed") if after.allow_private_urls else ("refuse", "refused")
    if not changed:
        output.say(f"private URLs are already {done} on {name!r}")
    else:
        action = f"would {verb}" if dry_run else done
        output.say(f"{action} private URLs for HTTP links on {name!r}")


def register(app: typer.Typer) -> None:
    """Add this module's top-level commands to ``app``."""
    app.command("init")(init)
    app.command("info")(info)
    app.command("upgrade")(upgrade)
