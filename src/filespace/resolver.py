"""From a path to its entry, following symbolic links the POSIX way (at most 40)."""

from __future__ import annotations

import errno

from filespace import paths
from filespace.meta.engine import Engine
from filespace.meta.records import ROOT_ID, EntryRecord

_MAX_SYMLINKS = 40


class Resolver:
    """Looks paths up in the engine, one directory at a time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def root(self) -> EntryRecord:
        root = self._engine.get(ROOT_ID)
        if root is None:
            raise FileNotFoundError(errno.ENOENT, "the filespace has no root", "/")
        return root

    def walk(self, path: str, *, follow_last: bool) -> EntryRecord:
        """The entry at ``path``; raises ``FileNotFoundError`` / ``NotADirectoryError``."""
        names = paths.split(path)
        if not names:
            return self.root()
        # One read for the whole path while it runs through plain directories
        # (the common case: an open costs one transaction, not one per name).
        found = self._engine.lookup_path(ROOT_ID, names)
        last = found[-1] if found else None
        if last is None or last.type != "link":
            if len(found) == len(names):
                return found[-1]
            if last is None or last.is_dir:
                raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        if len(found) == len(names) and not follow_last:
            return last
        # A symbolic link on the way: follow it name by name from its directory.
        trail = [self.root(), *found[:-1]]
        return self._follow(path, trail, list(names[len(found) - 1 :]), follow_last)

    def _follow(
        self, path: str, trail: list[EntryRecord], names: list[str], follow_last: bool
    ) -> EntryRecord:
        """Walk ``names`` from ``trail`` (the root first), following symbolic links."""
        pending = names
        pending.reverse()
        hops = 0
        while pending:
            name = pending.pop()
            if name == "..":  # only ever from a symlink's target
                if len(trail) > 1:
                    trail.pop()
                continue
            current = trail[-1]
            if not current.is_dir:
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
            child = self._engine.lookup(current.id, name)
            if child is None:
                raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
            if child.type == "link" and (pending or follow_last):
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                target = child.target or ""
                if target.startswith("/"):
                    trail = [trail[0]]
                names = [part for part in target.split("/") if part and part != "."]
                pending.extend(reversed(names))
                continue
            trail.append(child)
        return trail[-1]

    def parent(self, path: str) -> tuple[EntryRecord, str]:
        """The directory that holds (or would hold) ``path``, and the last name."""
        parent_names, name = paths.parent_and_name(path)
        parent = self.walk(paths.join(parent_names), follow_last=True)
        if not parent.is_dir:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        return parent, name

    def deepest_dir(self, names: tuple[str, ...]) -> tuple[EntryRecord, int]:
        """The deepest existing directory on the way to ``names``, and how many names it spans.

        What ``mkdir -p`` starts from; symbolic links on the way are followed.
        Something other than a directory in the way is ``FileExistsError`` naming it.
        """
        base = self.root()
        for count in range(1, len(names) + 1):
            prefix = paths.join(names[:count])
            try:
                entry = self.walk(prefix, follow_last=True)
            except FileNotFoundError:
                return base, count - 1
            if not entry.is_dir:
                raise FileExistsError(errno.EEXIST, "exists and is not a directory", prefix)
            base = entry
        return base, len(names)
