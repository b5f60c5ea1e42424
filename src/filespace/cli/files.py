"""Looking at and changing the tree: ls, stat, tree, mkdir, rm, mv."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Annotated, Any

import typer

from filespace import DirEntry, Filesystem
from filespace.cli import context, output
from filespace.cli.context import fs_path, join
from filespace.cli.errors import CliError
from filespace.cli.escape import escape
from filespace.cli.params import DryRunOpt, JsonOpt, ParentsOpt, YesOpt

if TYPE_CHECKING:
    from rich.tree import Tree

PathArg = Annotated[str, typer.Argument(help="A filespace path.")]
PathsArg = Annotated[list[str], typer.Argument(help="Filespace paths.")]


def entry_doc(fs: Filesystem, path: str, entry: DirEntry) -> dict[str, Any]:
    """An entry as JSON; ``external`` says where a linked file's bytes come from."""
    doc: dict[str, Any] = {
        "path": path,
        "name": entry.name,
        "type": entry.type,
        "size": entry.size,
        "mtime": entry.mtime,
        "ctime": entry.ctime,
        "file_id": entry.file_id,
        "external": None,
    }
    if entry.is_link():
        doc["target"] = fs.read_symlink(path)
    link = entry.external
    if link is not None:
        doc["external"] = {
            "kind": link.kind,
            "store": link.data_store_name,
            "key": link.object_id,
            "url": link.url,
            "checksum": link.checksum,
            "linked_at": link.linked_at,
        }
    return doc


def kind(doc: dict[str, Any]) -> str:
    """``dir``, ``file``, ``link`` (symlink), or ``s3`` / ``http`` for external files."""
    external = doc["external"]
    return str(external["kind"]) if external else str(doc["type"])


def source(doc: dict[str, Any]) -> str:
    """Where an entry points: ``store:key``, a URL, or a symlink's target."""
    external = doc["external"]
    if external is not None:
        if external["kind"] == "s3":
            return f"{external['store']}:{external['key']}"
        return str(external["url"])
    return f"-> {doc['target']}" if "target" in doc else ""


def ls(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="A directory or file.")] = "/",
    long: Annotated[
        bool, typer.Option("-l", "--long", help="Kind, size, time; external files' source.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """List a directory."""
    target = fs_path(path)
    with context.opened(ctx) as fsp:
        fs = fsp.fs
        if fs.dir_exists(target):
            found = [(join(target, e.name), e) for e in fs.read_dir(target)]
        else:
            found = [(target, fs.get_entry(target))]
        docs = [entry_doc(fs, p, e) for p, e in found]
    if context.wants_json(ctx, json_):
        output.emit_json({"path": target, "entries": docs})
    elif long:
        rows = [
            [
                kind(d),
                str(d["size"]),
                output.timestamp(d["mtime"]),
                d["name"] or d["path"],
                source(d),
            ]
            for d in docs
        ]
        output.table(["kind", "size", "modified", "name", "source"], rows)
    else:
        for doc in docs:
            output.say(doc["name"] or doc["path"])


def stat(ctx: typer.Context, path: PathArg, json_: JsonOpt = False) -> None:
    """Show everything about one entry."""
    target = fs_path(path)
    with context.opened(ctx) as fsp:
        doc = entry_doc(fsp.fs, target, fsp.fs.get_entry(target))
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
        return
    pairs = [
        ("path", target),
        ("kind", kind(doc)),
        ("size", f"{doc['size']} ({output.human_size(doc['size'])})"),
        ("modified", output.timestamp(doc["mtime"])),
        ("changed", output.timestamp(doc["ctime"])),
        ("file id", doc["file_id"]),
    ]
    if "target" in doc:
        pairs.append(("target", doc["target"]))
    external = doc["external"]
    if external is not None:
        if external["kind"] == "s3":
            pairs += [("store", external["store"]), ("key", external["key"])]
        else:
            pairs.append(("url", external["url"]))
        pairs += [
            ("checksum", external["checksum"] or "-"),
            ("linked", output.timestamp(external["linked_at"])),
        ]
    output.fields(pairs)


def _subtree(fs: Filesystem, path: str, entry: DirEntry, levels: int | None) -> dict[str, Any]:
    doc = entry_doc(fs, path, entry)
    if entry.is_dir() and (levels is None or levels > 0):
        deeper = None if levels is None else levels - 1
        doc["children"] = [
            _subtree(fs, join(path, child.name), child, deeper) for child in fs.read_dir(path)
        ]
    return doc


def _render(doc: dict[str, Any], node: Tree, counts: dict[str, int]) -> None:
    from rich.text import Text

    for child in doc.get("children", []):
        label = child["name"] + ("/" if child["type"] == "dir" else "")
        where = source(child)
        if where:
            label += f"  [{kind(child)}] {where}" if child["external"] else f" {where}"
        counts["dirs" if child["type"] == "dir" else "files"] += 1
        _render(child, node.add(Text(escape(label))), counts)


def tree(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="The directory to show.")] = "/",
    level: Annotated[
        int | None, typer.Option("--level", "-L", min=1, help="Descend at most this deep.")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Show a directory tree; external files are marked with their source."""
    target = fs_path(path)
    with context.opened(ctx) as fsp:
        entry = fsp.fs.get_entry(target)
        if not fsp.fs.dir_exists(target):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", target)
        doc = _subtree(fsp.fs, target, entry, level)
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
        return
    from rich.text import Text
    from rich.tree import Tree

    root = Tree(Text(escape(target)), guide_style="dim")
    counts = {"dirs": 0, "files": 0}
    _render(doc, root, counts)
    output.show(root)
    dirs = output.counted(counts["dirs"], "directory", "directories")
    output.say(f"{dirs}, {output.counted(counts['files'], 'file')}")


def mkdir(
    ctx: typer.Context,
    paths: PathsArg,
    parents: ParentsOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Create directories (-p: with their parents, and no error if they exist)."""
    created: list[str] = []
    with context.opened(ctx) as fsp:
        for path in paths:
            created += fsp.fs.create_dir(fs_path(path), parents, dry_run=dry_run)
    if context.wants_json(ctx, json_):
        output.emit_json({"dry_run": dry_run, "created": created})
        return
    for directory in created:
        output.say(f"{'would create' if dry_run else 'created'} {directory}")


def rm(
    ctx: typer.Context,
    paths: PathsArg,
    recursive: Annotated[
        bool, typer.Option("-r", "-R", "--recursive", help="Remove directories and their content.")
    ] = False,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Remove files, links and (with -r) directories. External objects are never deleted."""
    removed: list[dict[str, Any]] = []
    with context.opened(ctx) as fsp:
        fs = fsp.fs
        for path in map(fs_path, paths):
            entry = fs.get_entry(path)
            inside = 0
            if entry.is_dir():
                if not recursive:
                    advice = f"is a directory (use {context.hint('rm -r')})"
                    raise IsADirectoryError(errno.EISDIR, advice, path)
                if path == "/":
                    raise CliError("/: refusing to remove the root directory")
                inside = fs.delete_dir(path, recursive=True, dry_run=True)
            removed.append({"path": path, "type": entry.type, "entries_inside": inside})
        dirs = [d for d in removed if d["type"] == "dir"]
        if dirs and not dry_run:
            total = sum(d["entries_inside"] for d in dirs)
            names = ", ".join(d["path"] for d in dirs)
            context.confirm(f"remove {names} and the {total} entries inside", yes=yes)
        for doc in [] if dry_run else removed:
            if doc["type"] == "dir":
                doc["entries_inside"] = fs.delete_dir(doc["path"], recursive=True)
            else:
                fs.delete(doc["path"])
    if context.wants_json(ctx, json_):
        output.emit_json({"dry_run": dry_run, "removed": removed})
        return
    for doc in removed:
        extra = f" and {doc['entries_inside']} entries inside" if doc["type"] == "dir" else ""
        output.say(f"{'would remove' if dry_run else 'removed'} {doc['path']}{extra}")


def mv(
    ctx: typer.Context,
    src: PathArg,
    dst: Annotated[str, typer.Argument(help="New path, or an existing directory to move into.")],
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Rename or move an entry (external files keep their link)."""
    source_path, target = fs_path(src), fs_path(dst)
    with context.opened(ctx) as fsp:
        fs = fsp.fs
        if source_path == "/":
            raise CliError("/: the root directory cannot be moved")
        fs.get_entry(source_path)
        if fs.dir_exists(target):  # as mv(1): into an existing directory
            target = join(target, context.basename(source_path))
        fs.move(source_path, target, dry_run=dry_run)
    if context.wants_json(ctx, json_):
        output.emit_json({"dry_run": dry_run, "source": source_path, "destination": target})
    else:
        output.say(f"{'would move' if dry_run else 'moved'} {source_path} -> {target}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    for command in (ls, stat, tree, mkdir, rm, mv):
        app.command(command.__name__)(command)
