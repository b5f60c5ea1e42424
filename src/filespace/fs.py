"""``fsp.fs``: the file tree, from paths to entries to streams.

Paths are checked at the boundary, before anything is looked up. Directory
components and the targets of ``open``/``read_file``/``file_exists``/
``dir_exists``/``read_dir`` follow symbolic links; ``get_entry``, ``delete``,
``move`` and ``read_symlink`` act on a link itself, as ``lstat``, ``unlink``
and ``rename`` do.
"""

from __future__ import annotations

import contextlib
import errno
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from filespace import paths
from filespace.blocks import BlockStore
from filespace.blocks.native import NativeRawFile
from filespace.connect.links import external_info
from filespace.errors import ReadOnlyFileError
from filespace.io.ahead import Prefetch, Prefetches, budget
from filespace.io.cache import BlockCache
from filespace.io.external import (
    ExternalRawFile,
    UrlProvider,
    cache_namespace,
    link_source,
    open_stream,
)
from filespace.io.preload import Preloader
from filespace.io.streams import check_options, parse_mode, wrap
from filespace.meta.engine import Engine, NameTaken, NoSuchEntry, WouldCycle
from filespace.meta.errors import MetaError, engine_errors, public_error
from filespace.meta.records import ROOT_ID, EntryRecord
from filespace.models import DirEntry, FilespaceSize, FilespaceStatistics
from filespace.resolver import Resolver


def dir_entry(entry: EntryRecord, path: str) -> DirEntry:
    """The public ``DirEntry`` of an engine record."""
    return DirEntry(
        name=entry.name,
        size=entry.size,
        type=entry.type,
        file_id=f"{entry.id:016x}",
        file_id_external=entry.id,
        ctime=entry.ctime_ns // 1_000_000_000,
        mtime=entry.mtime_ns // 1_000_000_000,
        external=external_info(entry, path),
        mtime_ns=entry.mtime_ns,
    )


class Filesystem:
    """The file tree of one filespace."""

    def __init__(
        self,
        engine: Engine,
        blocks: Callable[[], BlockStore],
        block_size: int,
        urls: UrlProvider,
        cache: BlockCache | None = None,
        revalidate_after_s: float = 0.0,
    ) -> None:
        self._engine = engine
        self._resolver = Resolver(engine)
        self._blocks = blocks
        self._block_size = block_size
        self._urls = urls  # where links' bytes come from (Connect's access)
        self._cache = cache  # blocks of external files; None: only what a handle holds
        self.revalidate_after_s = revalidate_after_s
        """How long a cached external file may be opened without asking the server (s)."""
        self._writers: weakref.WeakSet[IO[Any]] = weakref.WeakSet()
        self._prefetches = Prefetches()  # under way; each open tells them

    def __repr__(self) -> str:
        return f"Filesystem(engine={self._engine.url!r})"

    # -- queries -------------------------------------------------------------------
    def get_entry(self, path: str, *, follow_symlinks: bool = False) -> DirEntry:
        """The entry at ``path``: a symlink itself (as ``lstat``), or with
        ``follow_symlinks`` what it finally points at (as ``stat``)."""
        entry = self._resolver.walk(path, follow_last=follow_symlinks)
        return dir_entry(entry, paths.normalize(path))

    def exists(self, path: str) -> bool:
        """Whether anything (file, directory, symlink, even a dangling one) is at ``path``."""
        paths.split(path)  # a malformed path is the caller's error, not "no"
        try:
            self._resolver.walk(path, follow_last=False)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def walk(self, top: str) -> Iterator[tuple[str, DirEntry]]:
        """``(path, entry)`` for everything under directory ``top``, depth first by name.

        One directory is read at a time, so memory follows the tree's depth and
        width, not its size. Symbolic links are listed, never followed (one may
        point at its own ancestor), as ``os.walk`` does by default.
        """
        pending = [paths.normalize(top)]
        while pending:
            directory = pending.pop()
            entries = self.read_dir(directory)
            base = directory.rstrip("/")
            for entry in entries:
                yield f"{base}/{entry.name}", entry
            pending.extend(f"{base}/{entry.name}" for entry in reversed(entries) if entry.is_dir())

    def read_dir(self, path: str) -> list[DirEntry]:
        """The entries of a directory, by name."""
        return list(self.scan_dir(path, page=None))

    def scan_dir(
        self, path: str, *, after: str = "", page: int | None = 1000
    ) -> Iterator[DirEntry]:
        """The entries of a directory by name (those after ``after``), read ``page`` at a time.

        The next page is read when the last is used up, so a huge directory is never
        held whole (``page=None``: one read); entries made or removed meanwhile may show.
        """
        if page is not None and (not isinstance(page, int) or isinstance(page, bool) or page < 1):
            raise ValueError(f"page must be a positive int or None, got {page!r}")
        directory = self._resolver.walk(path, follow_last=True)
        if not directory.is_dir:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        base = paths.normalize(path).rstrip("/")
        return self._pages(directory.id, base, after or None, page)

    def _pages(
        self, dir_id: int, base: str, after: str | None, page: int | None
    ) -> Iterator[DirEntry]:
        while True:
            children = self._engine.children(dir_id, after, page)
            yield from (dir_entry(child, f"{base}/{child.name}") for child in children)
            if page is None or len(children) < page:
                return
            after = children[-1].name

    def list_dir(self, path: str) -> list[str]:
        """The names in a directory, sorted."""
        return [entry.name for entry in self.read_dir(path)]

    def file_exists(self, path: str) -> bool:
        """Whether ``path`` is a file (following symlinks)."""
        return self._exists(path, "file")

    def dir_exists(self, path: str) -> bool:
        """Whether ``path`` is a directory (following symlinks)."""
        return self._exists(path, "dir")

    def _exists(self, path: str, type_: str) -> bool:
        paths.split(path)  # a malformed path is the caller's error, not "no"
        try:
            return self._resolver.walk(path, follow_last=True).type == type_
        except OSError:
            return False

    # -- namespace changes -----------------------------------------------------------
    def create_dir(self, path: str, parents: bool = False, *, dry_run: bool = False) -> list[str]:
        """Make a directory; the directories it made (or would make, with ``dry_run``).

        Without ``parents`` the parent must exist and ``path`` must not. With
        ``parents`` (``mkdir -p``) missing ancestors are made too, all in one
        transaction, and an existing directory is no error; symbolic links on the
        way are followed. Something other than a directory in the way is
        ``FileExistsError`` naming it.
        """
        if not parents:
            return self._create_one_dir(path, dry_run=dry_run)
        names = paths.split(path)
        base, found = self._resolver.deepest_dir(names)
        missing = names[found:]
        made = [paths.join(names[: found + count + 1]) for count in range(len(missing))]
        if missing and not dry_run:
            chain = self._engine.make_dirs([(base.id, missing)], time.time_ns())[0]
            if chain is None:  # a file appeared on the way meanwhile, or the base vanished
                raise FileExistsError(errno.EEXIST, "exists and is not a directory", path)
        return made

    def _create_one_dir(self, path: str, *, dry_run: bool) -> list[str]:
        try:
            parent, name = self._resolver.parent(path)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "parent directory does not exist", path) from None
        if dry_run:
            if self._engine.lookup(parent.id, name) is not None:
                raise FileExistsError(errno.EEXIST, "file exists", path)
        else:
            with engine_errors(path=path):
                self._engine.create(parent.id, name, "dir", time.time_ns())
        return [paths.normalize(path)]

    def delete(self, path: str) -> None:
        """Remove a file, external link or symlink (not a directory)."""
        entry = self._resolver.walk(path, follow_last=False)
        if entry.is_dir:
            raise IsADirectoryError(errno.EISDIR, "is a directory (use delete_dir)", path)
        self._remove(entry, path)

    def _remove(self, entry: EntryRecord, path: str) -> None:
        with engine_errors(path=path):
            removed = self._engine.remove(entry.id)
        if removed.block_keys:
            self._blocks().delete(removed.block_keys)

    def delete_dir(self, path: str, recursive: bool = False, *, dry_run: bool = False) -> int:
        """Remove a directory; with ``recursive``, everything in it too, in one transaction.

        Returns how many entries went with it (0 for an empty one); ``dry_run``
        removes nothing and counts them.
        """
        entry = self._resolver.walk(path, follow_last=False)
        if not entry.is_dir:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        if entry.id == ROOT_ID:
            raise PermissionError(errno.EPERM, "the root directory cannot be removed", path)
        if dry_run:
            inside = sum(1 for _ in self.walk(path)) if recursive else 0
            if inside and not recursive:
                raise OSError(errno.ENOTEMPTY, "directory not empty", path)
            return inside
        with engine_errors(path=path):
            removed = (
                self._engine.remove_tree(entry.id) if recursive else self._engine.remove(entry.id)
            )
        if removed.block_keys:
            self._blocks().delete(removed.block_keys)
        return removed.entries - 1

    def move(self, src: str, dst: str, *, replace: bool = False, dry_run: bool = False) -> None:
        """Rename or move ``src`` to ``dst`` in one transaction.

        ``dst`` must not exist, unless ``replace``: then what is there is replaced
        in the same transaction, as POSIX ``rename(2)`` does (a non-directory
        replaces a non-directory, a directory an empty directory). ``dry_run``
        changes nothing and raises what the move would raise.
        """
        entry = self._resolver.walk(src, follow_last=False)
        if entry.id == ROOT_ID:
            raise OSError(errno.EINVAL, "the root directory cannot be moved", src)
        parent, name = self._resolver.parent(dst)
        source, target = paths.normalize(src), paths.normalize(dst)
        if source == target:
            return
        if dry_run:
            if entry.is_dir and (target + "/").startswith(source + "/"):
                raise OSError(errno.EINVAL, "cannot move a directory into itself", target)
            there = self._engine.lookup(parent.id, name)
            if there is not None:
                self._check_replace(entry, there, dst, replace=replace)
            return
        try:
            removed = self._engine.rename(
                entry.id, parent.id, name, time.time_ns(), replace=replace
            )
        except NameTaken:
            raise FileExistsError(errno.EEXIST, "destination exists", dst) from None
        except NoSuchEntry as exc:
            raise public_error(exc, path=src) from None
        except WouldCycle as exc:
            raise public_error(exc, path=f"{src} -> {dst}") from None
        except MetaError as exc:
            raise public_error(exc, path=dst) from None
        if removed.block_keys:
            self._blocks().delete(removed.block_keys)

    def _check_replace(
        self, moving: EntryRecord, there: EntryRecord, dst: str, *, replace: bool
    ) -> None:
        """Raise what the engine would raise for moving ``moving`` onto ``there``."""
        if not replace:
            raise FileExistsError(errno.EEXIST, "destination exists", dst)
        if there.is_dir and not moving.is_dir:
            raise IsADirectoryError(errno.EISDIR, "is a directory", dst)
        if moving.is_dir and not there.is_dir:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", dst)
        if there.is_dir and self._engine.children(there.id):
            raise OSError(errno.ENOTEMPTY, "directory not empty", dst)

    def create_symlink(self, target: str, link_path: str) -> None:
        """Make a symbolic link at ``link_path`` pointing at ``target``."""
        paths.check_target(target)
        parent, name = self._resolver.parent(link_path)
        with engine_errors(path=link_path):
            self._engine.create(parent.id, name, "link", time.time_ns(), target=target)

    def read_symlink(self, link_path: str) -> str:
        """The target of a symbolic link."""
        entry = self._resolver.walk(link_path, follow_last=False)
        if entry.type != "link":
            raise OSError(errno.EINVAL, "not a symbolic link", link_path)
        return entry.target or ""

    # -- data ------------------------------------------------------------------------
    def open(
        self,
        path: str,
        mode: str = "rb",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> IO[Any]:
        """Open a file like Python's ``open``; external files only for reading.

        Every argument is checked before anything is created or truncated; an
        unknown encoding is a ``ValueError`` (Python's ``open``: ``LookupError``).
        """
        parsed = parse_mode(mode)
        if not parsed.binary and encoding is None:
            encoding = "utf-8"
        buffering = check_options(parsed, buffering, encoding, errors, newline)
        if self._prefetches:
            self._prefetches.opened(paths.normalize(path))
        entry = self._open_entry(path, parsed.creating, parsed.exclusive)
        if entry.is_dir:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        if entry.link is not None:
            if parsed.writing or parsed.appending:
                raise ReadOnlyFileError(path)
            source = link_source(paths.normalize(path), entry.link, self._urls)
            external = ExternalRawFile(
                source,
                cache=self._cache,
                namespace=cache_namespace(entry.link),
                revalidate_after_s=self.revalidate_after_s,
            )
            external.mode = mode
            return open_stream(external, parsed, buffering, encoding, errors, newline)
        else:
            writable = parsed.writing or parsed.appending
            raw: Any = self._native(entry, path, parsed.reading, writable, parsed.appending)
            if parsed.truncating and entry.size:
                raw.resize(0)
        raw.mode = mode
        stream = wrap(raw, parsed, buffering, encoding, errors, newline)
        if parsed.writing or parsed.appending:
            self._writers.add(stream)
        return stream

    def _native(
        self, entry: EntryRecord, path: str, readable: bool, writable: bool, append: bool
    ) -> NativeRawFile:
        return NativeRawFile(
            engine=self._engine,
            store=self._blocks(),
            entry_id=entry.id,
            size=entry.size,
            block_size=self._block_size,
            path=path,
            readable=readable,
            writable=writable,
            append=append,
            cache=self._cache,
        )

    def flush_open_files(self) -> None:
        """Flush every file open for writing, so its data and size are committed."""
        for stream in list(self._writers):
            if stream.closed:
                continue
            stream.flush()  # every layer's flush reaches the raw file, which commits

    def _open_entry(self, path: str, creating: bool, exclusive: bool) -> EntryRecord:
        try:
            entry = self._resolver.walk(path, follow_last=True)
        except FileNotFoundError:
            if not creating:
                raise
        else:
            if exclusive:
                raise FileExistsError(errno.EEXIST, "file exists", path)
            return entry
        parent, name = self._resolver.parent(path)
        try:
            return self._engine.create(parent.id, name, "file", time.time_ns())
        except NameTaken:
            if exclusive:
                raise FileExistsError(errno.EEXIST, "file exists", path) from None
            return self._resolver.walk(path, follow_last=True)  # created meanwhile by someone else

    # -- reading ahead ----------------------------------------------------------------
    def prefetch(self, paths_: Iterable[str], *, max_mb: float | None = None) -> Prefetch:
        """Fetch these files, in this order, into the cache in the background (``Prefetch``).

        At most ``max_mb`` (default: a quarter of the cache) ahead of the reader,
        whose ``open`` of each path moves it on; native (remote block store) and
        external files alike; a file that cannot be fetched is in ``errors``.
        """
        if isinstance(paths_, str | bytes):
            raise TypeError("paths must be an iterable of paths, not one path")
        items = [paths.normalize(path) for path in paths_]
        capacity = self._cache.capacity if self._cache is not None else 0
        prefetch = Prefetch(items, self._plan, budget(max_mb, capacity))
        self._prefetches.add(prefetch)
        return prefetch.start()

    def _plan(self, path: str) -> tuple[int, Callable[[], int] | None]:
        """A prefetch's look at one file: its size and how to fetch it into the cache."""
        entry = self._resolver.walk(path, follow_last=True)
        if entry.is_dir:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        if entry.link is None:
            return entry.size, self._native(entry, path, True, False, False).preload
        namespace = cache_namespace(entry.link)
        if namespace is None or self._cache is None:
            return entry.size, None  # never cached: nothing to fetch ahead
        source = link_source(path, entry.link, self._urls)
        reader = Preloader(
            source, self._cache, namespace, revalidate_after_s=self.revalidate_after_s
        )
        return entry.size, reader.preload

    def read_file(self, path: str) -> bytes:
        """The whole content of a file."""
        with self.open(path, "rb") as handle:
            data: bytes = handle.read()
        return data

    def write_file(self, path: str, data: bytes) -> None:
        """Create or replace a native file with ``data``: all of it, or (on an error) none.

        When the write fails (a full disk: ``OSError(ENOSPC)``), the file keeps
        what it held before, and a file this call created is removed again.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        existed = self.exists(path)
        raw: NativeRawFile = self.open(path, "wb", buffering=0)  # type: ignore[assignment]
        try:
            raw.write(data)
            raw.flush()  # the commit: fails whole or not at all
        except BaseException:
            raw.discard()
            if not existed:
                with contextlib.suppress(OSError):
                    self.delete(path)
            raise
        raw.close()

    def truncate(self, path: str, size: int) -> None:
        """Cut or zero-extend a native file to ``size`` bytes.

        A size over ``MAX_FILE_SIZE`` (5 TiB) is ``OSError(EFBIG)``, as for a write.
        """
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"size must be a non-negative int, got {size!r}")
        if size > paths.MAX_FILE_SIZE:  # as POSIX truncate(2) says it
            raise OSError(
                errno.EFBIG, f"a file holds at most {paths.MAX_FILE_SIZE} bytes (5 TiB)", path
            )
        self._refuse_writing(self._resolver.walk(path, follow_last=True), path)
        with self.open(path, "r+b", buffering=0) as handle:
            handle.truncate(size)

    def check_writable(self, path: str) -> None:
        """Raise what ``open(path, "wb")`` would raise, creating and changing nothing.

        The dry run of a write: the parent must be a directory, and an existing
        entry must be a native file (not a directory, not a linked file).
        """
        try:
            entry = self._resolver.walk(path, follow_last=True)
        except FileNotFoundError:
            self._resolver.parent(path)  # the file would be made: its directory must be there
            return
        self._refuse_writing(entry, path)

    @staticmethod
    def _refuse_writing(entry: EntryRecord, path: str) -> None:
        if entry.is_dir:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        if entry.link is not None:
            raise ReadOnlyFileError(path)

    # -- statistics --------------------------------------------------------------------
    def get_statistics(self) -> FilespaceStatistics:
        """Counts and sizes, read from counters kept with every change."""
        counters = self._engine.counters()
        return FilespaceStatistics(
            file_count=counters.files,
            directory_count=counters.dirs,
            symlink_count=counters.symlinks,
            entries_size=counters.entries_size,
            data_size=counters.data_size,
            storage_size=counters.storage_size,
            external_files_count=counters.external_files,
            external_files_size=counters.external_size,
        )

    def get_size(self) -> FilespaceSize:
        """How big the filespace is: entries, native data, storage, external files."""
        return FilespaceSize.of(self.get_statistics())
