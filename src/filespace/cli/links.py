"""External files one at a time or by directory: link, link-url, unlink, files list/count."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer

from filespace import (
    Filespace,
    Filesystem,
    LinkExistsError,
    MissingParentError,
    validate_checksum,
    validate_http_url,
    validate_object_key,
)
from filespace.cli import context, output
from filespace.cli.context import fs_path
from filespace.cli.params import DryRunOpt, JsonOpt, ParentsOpt, StoreOpt, YesOpt

files_app = typer.Typer(help="The files linked from a data store.", no_args_is_help=True)

PathArg = Annotated[str, typer.Argument(help="Filespace path of the link.")]
SizeOpt = Annotated[
    int | None,
    typer.Option("--size", min=0, metavar="BYTES", help="Size in bytes (skips the lookup)."),
]


def _parents(fs: Filesystem, path: str, parents: bool, dry_run: bool) -> list[str]:
    """Make (or with ``dry_run`` list) the missing parents of ``path``; check it is free."""
    if fs.exists(path):
        raise LinkExistsError(path)
    parent = context.dirname(path)
    if parents:
        return fs.create_dir(parent, parents=True, dry_run=dry_run)
    if not fs.dir_exists(parent):
        raise MissingParentError(path)
    return []


def _undo(fs: Filesystem, created: list[str]) -> None:
    """Remove the directories made for a link that then failed."""
    for directory in reversed(created):
        with contextlib.suppress(OSError):
            fs.delete_dir(directory)


def link(
    ctx: typer.Context,
    path: PathArg,
    store: StoreOpt,
    key: Annotated[str, typer.Option("--key", "-k", help="Object key in the store's bucket.")],
    size: SizeOpt = None,
    checksum: Annotated[
        str | None,
        typer.Option("--checksum", metavar="ETAG", help="The object's ETag (with --size)."),
    ] = None,
    parents: ParentsOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Link one S3 object as a read-only file (no bytes are copied)."""
    if (size is None) != (checksum is None):
        raise typer.BadParameter("give both --size and --checksum, or neither")
    target = fs_path(path)
    with context.opened(ctx) as fsp:
        validate_object_key(key)
        if dry_run:
            fsp.connect.data_store(store)  # the store exists and Connect is on
        # The directories a link makes: listed here, made by link_file itself.
        created = _parents(fsp.fs, target, parents, dry_run=True)
        if dry_run:
            if size is None:
                size, checksum = fsp.connect.head_object(store, key)
            else:
                checksum = validate_checksum(checksum)
        else:
            fsp.connect.link_file(target, store, key, size, checksum or "", create_parents=parents)
            info = fsp.connect.get_external_file(target)
            size, checksum = info.size, info.checksum
    doc = {"dry_run": dry_run, "path": target, "store": store, "key": key, "size": size}
    doc.update({"checksum": checksum, "created_dirs": created})
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
        return
    for directory in created:
        output.say(f"{'would create' if dry_run else 'created'} {directory}")
    action = "would link" if dry_run else "linked"
    output.say(f"{action} {target} -> {store}:{key} ({output.human_size(size or 0)})")


def link_url(
    ctx: typer.Context,
    path: PathArg,
    url: Annotated[str, typer.Argument(help="http:// or https:// URL.")],
    size: SizeOpt = None,
    parents: ParentsOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Link an HTTP(S) URL as a read-only file."""
    target = fs_path(path)
    with context.opened(ctx) as fsp:
        fsp.connect.list_data_stores()  # raises unless Connect is on
        validate_http_url(url)
        created = _parents(fsp.fs, target, parents, dry_run=dry_run)
        if not dry_run:
            try:
                fsp.connect.link_http_file(target, url, size=size)
            except BaseException:
                _undo(fsp.fs, created)
                raise
            size = fsp.connect.get_external_file(target).size
    doc = {"dry_run": dry_run, "path": target, "url": url, "size": size, "created_dirs": created}
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
        return
    for directory in created:
        output.say(f"{'would create' if dry_run else 'created'} {directory}")
    shown = "size learned when linked" if size is None else output.human_size(size)
    output.say(f"{'would link' if dry_run else 'linked'} {target} -> {url} ({shown})")


def _links_under(fsp: Filespace, top: str, store: str | None) -> list[dict[str, Any]]:
    """The links ``unlink --all --dry-run`` shows (a real run counts them in the engine)."""
    found = []
    for path, entry in fsp.fs.walk(top):
        link = entry.external
        if link is not None and (store is None or link.data_store_name == store):
            found.append(
                {
                    "path": path,
                    "store": link.data_store_name,
                    "key": link.object_id,
                    "url": link.url,
                }
            )
    return found


def unlink(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="The link, or with --all a directory.")],
    all_links: Annotated[
        bool, typer.Option("--all", help="Unlink every external file under the directory.")
    ] = False,
    store: Annotated[
        str | None, typer.Option("--store", "-s", help="With --all: only this store's links.")
    ] = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Remove links (never native files, never the objects themselves)."""
    if store is not None and not all_links:
        raise typer.BadParameter("--store goes with --all")
    target = fs_path(path)
    if all_links:
        _unlink_all(ctx, target, store, yes=yes, dry_run=dry_run, json_=json_)
        return
    with context.opened(ctx) as fsp:
        info = fsp.connect.get_external_file(target)
        if not dry_run:
            fsp.connect.unlink_file(target)
    origin = f"{info.data_store_name}:{info.object_id}" if info.data_store_name else info.url
    doc = {"path": target, "store": info.data_store_name, "key": info.object_id, "url": info.url}
    if context.wants_json(ctx, json_):
        output.emit_json({"dry_run": dry_run, "unlinked": [doc]})
    else:
        output.say(f"{'would unlink' if dry_run else 'unlinked'} {target} ({origin})")


def _unlink_all(
    ctx: typer.Context, target: str, store: str | None, *, yes: bool, dry_run: bool, json_: bool
) -> None:
    """``unlink --all``: one engine operation; a dry run lists what it would remove."""
    with context.opened(ctx) as fsp:
        count = fsp.connect.unlink_tree(target, data_store_name=store, dry_run=True)
        found = _links_under(fsp, target, store) if dry_run else []
        if count and not dry_run:
            files = output.counted(count, "external file")
            context.confirm(f"unlink {files} under {target}", yes=yes)
            with output.progress("unlinking", None):
                count = fsp.connect.unlink_tree(target, data_store_name=store)
    if context.wants_json(ctx, json_):
        doc: dict[str, Any] = {"dry_run": dry_run, "directory": target, "count": count}
        if dry_run:
            doc["unlinked"] = found
        output.emit_json(doc)
    elif dry_run:
        for link in found:
            origin = f"{link['store']}:{link['key']}" if link["store"] else link["url"]
            output.say(f"would unlink {link['path']} ({origin})")
    else:
        output.say(f"unlinked {output.counted(count, 'external file')} under {target}")


@files_app.command("list")
def files_list(
    ctx: typer.Context,
    store: StoreOpt,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Page size.")] = 100,
    cursor: Annotated[str, typer.Option("--cursor", help="Where the last page ended.")] = "",
    every: Annotated[bool, typer.Option("--all", help="Every page, not just one.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Print the paths linked from a store; the next page's cursor goes to stderr."""
    as_json = context.wants_json(ctx, json_)
    paths: list[str] = []
    ids: list[int] = []
    with context.opened(ctx) as fsp:
        while True:
            page = fsp.connect.list_external_files(store, limit=limit, cursor=cursor)
            cursor = page.cursor
            if as_json:
                paths += page.file_paths
                ids += page.file_ids
            else:
                for found in page.file_paths:
                    output.say(found)
            if not (every and page.has_more):
                break
    if as_json:
        more = bool(cursor)
        output.emit_json(
            {
                "store": store,
                "file_paths": paths,
                "file_ids": ids,
                "has_more": more,
                "cursor": cursor,
            }
        )
    elif cursor:
        output.note(f"next cursor: {cursor}")


@files_app.command("count")
def files_count(ctx: typer.Context, store: StoreOpt, json_: JsonOpt = False) -> None:
    """How many files are linked from a store."""
    with context.opened(ctx) as fsp:
        count = fsp.connect.count_external_files(store)
    if context.wants_json(ctx, json_):
        output.emit_json({"store": store, "count": count})
    else:
        output.say(str(count))


def register(app: typer.Typer) -> None:
    """Add this module's top-level commands to ``app``."""
    app.command("link")(link)
    app.command("link-url")(link_url)
    app.command("unlink")(unlink)
