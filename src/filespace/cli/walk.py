"""Walking a directory tree of the filespace, and small existence checks."""

from __future__ import annotations

from collections.abc import Iterator

from filespace import DirEntry, Filesystem
from filespace.cli.context import join


def walk(fs: Filesystem, top: str) -> Iterator[tuple[str, DirEntry]]:
    """Every entry under directory ``top``, one directory at a time; symlinks are not followed."""
    pending = [top]
    while pending:
        directory = pending.pop()
        entries = fs.read_dir(directory)
        for entry in entries:
            path = join(directory, entry.name)
            yield path, entry
        pending.extend(join(directory, e.name) for e in reversed(entries) if e.is_dir())


def exists(fs: Filesystem, path: str) -> bool:
    """Whether anything (file, directory, symlink) is at ``path``."""
    try:
        fs.get_entry(path)
    except FileNotFoundError:
        return False
    return True
