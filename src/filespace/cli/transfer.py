"""Data in and out: cat, get, put. Bytes are streamed in chunks, never held whole."""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO, Annotated

import typer

from filespace.cli import context, output
from filespace.cli.context import fs_path, join
from filespace.cli.params import DryRunOpt, JsonOpt

CHUNK = 1024 * 1024
LARGE = 8 * CHUNK
"""Copies at least this big get a progress bar (on a terminal)."""


def _copy(reader: IO[bytes], writer: IO[bytes], bar: output.Bar) -> int:
    copied = 0
    while chunk := reader.read(CHUNK):
        writer.write(chunk)
        copied += len(chunk)
        bar.advance(len(chunk))
    return copied


def _size_of(stream: IO[bytes]) -> int:
    end = stream.seek(0, os.SEEK_END)
    stream.seek(0)
    return end


def cat(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files to print, in order.")],
) -> None:
    """Write files' bytes to stdout."""
    out = sys.stdout.buffer
    with context.opened(ctx) as fsp:
        for path in paths:
            with fsp.fs.open(fs_path(path), "rb") as reader:
                _copy(reader, out, output.Bar())
        out.flush()


def _partial_file(destination: Path) -> tuple[IO[bytes], Path]:
    """A new file next to ``destination`` to copy into, then rename over it.

    Its name is unpredictable and it is created exclusively, never through a
    link (``mkstemp``: ``O_CREAT | O_EXCL | O_NOFOLLOW``), so nobody can plant
    a symlink there to make ``get`` write elsewhere. It gets the mode ``cp``
    would give: that of the file it replaces, else 0666 less the umask.
    """
    fd, name = tempfile.mkstemp(
        prefix=f".{destination.name[:40]}.", suffix=".filespace-part", dir=destination.parent
    )
    try:
        os.fchmod(fd, _mode_for(destination))
        return os.fdopen(fd, "wb"), Path(name)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise


def _mode_for(destination: Path) -> int:
    try:
        existing = destination.stat()
    except OSError:
        existing = None
    if existing is not None and stat.S_ISREG(existing.st_mode):
        return stat.S_IMODE(existing.st_mode)
    umask = os.umask(0)  # the only way to read it; this process runs one command
    os.umask(umask)
    return 0o666 & ~umask


def get(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="The filespace file.")],
    local: Annotated[str, typer.Argument(help="Local file or directory; - for stdout.")],
    json_: JsonOpt = False,
) -> None:
    """Copy a file out of the filespace (replacing LOCAL, like cp)."""
    if local == "-":
        cat(ctx, [path])
        return
    source = fs_path(path)
    destination = Path(local)
    if destination.is_dir():
        destination = destination / context.basename(source)
    if not destination.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such directory", str(destination.parent))
    with context.opened(ctx) as fsp, fsp.fs.open(source, "rb") as reader:
        size = _size_of(reader)
        writer, partial = _partial_file(destination)
        try:
            with (
                writer,
                output.progress(f"get {source}", size if size >= LARGE else None, data=True) as bar,
            ):
                copied = _copy(reader, writer, bar)
            os.replace(partial, destination)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    doc = {"source": source, "destination": str(destination), "bytes": copied}
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
    else:
        output.say(f"copied {source} -> {destination} ({output.human_size(copied)})")


def put(
    ctx: typer.Context,
    local: Annotated[str, typer.Argument(help="Local file; - for stdin.")],
    path: Annotated[str, typer.Argument(help="Filespace file or existing directory.")],
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Copy a local file into the filespace (replacing a native file at PATH)."""
    if local != "-" and Path(local).is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", local)
    reader: IO[bytes] = sys.stdin.buffer if local == "-" else open(local, "rb")  # noqa: SIM115
    with reader, context.opened(ctx) as fsp:
        destination = fs_path(path)
        if fsp.fs.dir_exists(destination):
            if local == "-":
                raise IsADirectoryError(errno.EISDIR, "is a directory", destination)
            destination = join(destination, Path(local).name)
        size = os.fstat(reader.fileno()).st_size if local != "-" else 0
        if dry_run:
            fsp.fs.check_writable(destination)
            copied = size
        else:
            label = f"put {destination}"
            with (
                fsp.fs.open(destination, "wb") as writer,
                output.progress(label, size if size >= LARGE else None, data=True) as bar,
            ):
                copied = _copy(reader, writer, bar)
    doc = {"dry_run": dry_run, "source": local, "destination": destination, "bytes": copied}
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
    elif dry_run:
        output.say(f"would copy {local} -> {destination} ({output.human_size(copied)})")
    else:
        output.say(f"copied {local} -> {destination} ({output.human_size(copied)})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    for command in (cat, get, put):
        app.command(command.__name__)(command)
