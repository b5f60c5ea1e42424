"""The FUSE operations of ``filespace mount``: the file tree as a file system.

Native files are read-write and linked files read-only (``EROFS``); both go
through the same streams, readahead and block cache as ``fsp.fs.open``. Each
open file is one stream: buffered for reading, unbuffered for writing. FUSE
calls arrive on many threads and carry their own offsets, so a call takes its
handle's lock and seeks first.

What a POSIX tool may expect and a filespace does not keep:

- permissions and owners: directories show 0755, native files 0644, linked
  files 0444, symbolic links 0777, all owned by whoever mounted; ``chmod``,
  ``chown`` and ``utime`` succeed and change nothing (as gcsfuse does);
- hard links: ``link`` fails with ``EPERM``;
- ``rename`` onto an existing file or empty directory replaces it in one
  engine transaction, as POSIX allows;
- modification times are to the nanosecond as recorded, other times to the second.

Directories are listed a page at a time (``readdir_with_offset``): a call reads
the next ``_DIR_PAGE`` entries from the engine, after the name at the offset
the kernel resumes from, so a directory of millions is never held whole. An
open directory keeps the last page it read: the kernel takes a page in several
smaller requests, served from it. The entries of recent pages also answer a
``getattr`` that follows within ``_LISTED_S`` (``ls -l`` stats each name right
after reading it), without asking the engine again; any change made through
this mount forgets them.

Data written through a handle is committed when the handle is flushed
(``close``, ``fsync``), as for ``fsp.fs.open``; until then ``stat`` on this
mount shows the size the open handle has.
"""

from __future__ import annotations

import errno
import functools
import io
import itertools
import logging
import os
import stat
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from filespace import DirEntry, Filespace

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_STATFS_BLOCK = 4096
# Object storage has no fixed capacity; report a large one so tools that check
# free space before writing do not refuse.
_STATFS_BLOCKS = (1 << 50) // _STATFS_BLOCK
_STATFS_FILES = 1 << 32

# About what one getdents buffer holds (32 KiB of short names): the kernel asks
# again from the last entry it kept, so a larger page is read and thrown away.
_DIR_PAGE = 512
_DOTS = ((".", 1), ("..", 2))  # the first offsets of every listing
_LISTED = 4 * _DIR_PAGE
"""Entries of recent directory pages kept to answer ``getattr`` (a few pages' worth)."""
_LISTED_S = 0.2
"""How long a listed entry answers ``getattr``: long enough for ``ls -l`` to stat what
it just read, short beside the kernel's own attribute timeout (1 s)."""
_TYPE_BITS = {"dir": stat.S_IFDIR, "link": stat.S_IFLNK, "file": stat.S_IFREG}

_Result = TypeVar("_Result")


def _errors_as_errno(method: Callable[..., _Result]) -> Callable[..., _Result]:
    """Raise every failure as an ``OSError`` with an errno, which FUSE hands back.

    ``OSError`` already carries one; a value the namespace rejects (a bad name)
    is ``EINVAL``; anything else is logged and becomes ``EIO``.
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> _Result:
        try:
            return method(*args, **kwargs)
        except OSError as exc:
            if isinstance(exc.errno, int) and exc.errno > 0:
                raise
            log.error("%s failed: %s", method.__name__, exc)
            raise OSError(errno.EIO, os.strerror(errno.EIO)) from exc
        except ValueError as exc:
            raise OSError(errno.EINVAL, str(exc)) from exc
        except Exception as exc:
            log.error("%s failed: %s: %s", method.__name__, type(exc).__name__, exc)
            raise OSError(errno.EIO, os.strerror(errno.EIO)) from exc

    return wrapper


@dataclass
class _Handle:
    """One open file: its stream, the entry it is, and the lock its calls take."""

    stream: Any
    entry: DirEntry
    writable: bool
    lock: threading.Lock = field(default_factory=threading.Lock)

    def size(self) -> int:
        """The size as this handle sees it: grown or cut by its writes, if any."""
        if not self.writable:
            return self.entry.size  # seeking a reader would drop its buffer
        with self.lock:
            return int(self.stream.seek(0, io.SEEK_END))


@dataclass
class _Listing:
    """An open directory: the entries of the last page it read, by offset."""

    entries: dict[int, DirEntry] = field(default_factory=dict)
    complete: bool = False
    """Whether that page reached the end of the directory."""


class FilespaceOperations:
    """The FUSE operations over one open filespace (the callbacks mfusepy calls)."""

    use_ns = True  # times are handed over as integer nanoseconds

    def __init__(self, fsp: Filespace) -> None:
        self._fs = fsp.fs
        self._handles: dict[int, _Handle] = {}
        # Files with a handle open for writing, and how many: a listing asks for each entry.
        self._writing: Counter[str] = Counter()
        self._listings: dict[int, _Listing] = {}  # by open directory handle
        self._listed: OrderedDict[str, tuple[DirEntry, float]] = OrderedDict()  # path ->
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._uid = os.getuid()
        self._gid = os.getgid()
        self.served = False

    # -- attributes ----------------------------------------------------------------
    @_errors_as_errno
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        handle = self._handles.get(fh) if fh is not None else None
        if handle is not None:
            size = handle.size() if handle.writable else self._open_size(handle.entry)
            return self._stat(handle.entry, size)
        if path is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        with self._lock:
            listed = self._listed.get(path)
        if listed is not None and time.monotonic() - listed[1] < _LISTED_S:
            entry = listed[0]
        else:
            entry = self._fs.get_entry(path)
        return self._stat(entry, self._open_size(entry))

    def _open_size(self, entry: DirEntry) -> int:
        """The size a handle open for writing on this mount has, else the committed one."""
        if entry.file_id not in self._writing:
            return entry.size  # (most entries: no handle to ask, no lock to take)
        with self._lock:
            writers = [
                h for h in self._handles.values() if h.writable and h.entry.file_id == entry.file_id
            ]
        return max([entry.size, *(h.size() for h in writers)])

    def _stat(self, entry: DirEntry, size: int) -> dict[str, int]:
        if entry.type == "dir":
            mode, links = stat.S_IFDIR | 0o755, 2
        elif entry.type == "link":
            mode, links = stat.S_IFLNK | 0o777, 1
        elif entry.external is not None:
            mode, links = stat.S_IFREG | 0o444, 1
        else:
            mode, links = stat.S_IFREG | 0o644, 1
        return {
            "st_mode": mode,
            "st_nlink": links,
            "st_size": size,
            "st_blocks": -(-size // 512),
            "st_blksize": 1 << 20,
            "st_uid": self._uid,
            "st_gid": self._gid,
            "st_mtime": entry.mtime_ns or entry.mtime * _NS,
            "st_ctime": entry.ctime * _NS,
            "st_atime": entry.mtime_ns or entry.mtime * _NS,
        }

    @_errors_as_errno
    def chmod(self, path: str | None, mode: int) -> int:
        return 0  # no permission bits are kept; see the module docstring

    @_errors_as_errno
    def chown(self, path: str | None, uid: int, gid: int) -> int:
        return 0

    @_errors_as_errno
    def utimens(self, path: str | None, times: tuple[int, int] | None = None) -> int:
        return 0

    @_errors_as_errno
    def statfs(self, path: str) -> dict[str, int]:
        return {
            "f_bsize": _STATFS_BLOCK,
            "f_frsize": _STATFS_BLOCK,
            "f_blocks": _STATFS_BLOCKS,
            "f_bfree": _STATFS_BLOCKS,
            "f_bavail": _STATFS_BLOCKS,
            "f_files": _STATFS_FILES,
            "f_ffree": _STATFS_FILES,
            "f_favail": _STATFS_FILES,
            "f_namemax": 255,
        }

    # -- directories and names -------------------------------------------------------
    @_errors_as_errno
    def opendir(self, path: str) -> int:
        if not self._fs.dir_exists(path):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        with self._lock:
            number = next(self._numbers)
            self._listings[number] = _Listing()
        return number

    @_errors_as_errno
    def readdir_with_offset(self, path: str, offset: int, fh: int) -> list[tuple[str, int, int]]:
        """The entries from ``offset`` on, one page of them (none: the end)."""
        return [
            (name, _TYPE_BITS[entry.type] if entry else stat.S_IFDIR, at)
            for name, entry, at in self._page(path, offset, fh)
        ]

    @_errors_as_errno
    def readdir_plus(
        self, path: str, offset: int, fh: int
    ) -> list[tuple[str, dict[str, int] | None, int]]:
        """As ``readdir_with_offset``, with each entry's attributes (``None``: ``.``, ``..``)."""
        return [
            (name, self._stat(entry, self._open_size(entry)) if entry else None, at)
            for name, entry, at in self._page(path, offset, fh)
        ]

    def _page(self, path: str, offset: int, fh: int) -> list[tuple[str, DirEntry | None, int]]:
        listing = self._listings.get(fh)
        if listing is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        page: list[tuple[str, DirEntry | None, int]] = [
            (name, None, number) for name, number in _DOTS if number > offset
        ]
        start = max(offset, len(_DOTS))
        if offset > len(_DOTS) and (start + 1 in listing.entries or listing.complete):
            found = [(at, entry) for at, entry in listing.entries.items() if at > start]
        else:
            found = self._read_page(path, offset, start, fh, listing)
        page.extend((entry.name, entry, at) for at, entry in found)
        return page

    def _read_page(
        self, path: str, offset: int, start: int, fh: int, listing: _Listing
    ) -> list[tuple[int, DirEntry]]:
        """Read the page after the entry at ``offset`` from the engine, and keep it."""
        if offset <= len(_DOTS):
            after = ""
        elif offset in listing.entries:
            after = listing.entries[offset].name
        else:  # not an offset this handle handed out last
            raise OSError(errno.EINVAL, "unknown directory offset", path)
        entries = list(
            itertools.islice(self._fs.scan_dir(path, after=after, page=_DIR_PAGE), _DIR_PAGE)
        )
        found = [(start + index, entry) for index, entry in enumerate(entries, 1)]
        base = path.rstrip("/")
        now = time.monotonic()
        with self._lock:
            if fh in self._listings:  # the entry the kernel resumes from, and this page
                kept = {at: e for at, e in listing.entries.items() if at == offset}
                self._listings[fh] = _Listing(kept | dict(found), len(entries) < _DIR_PAGE)
            for _, entry in found:
                self._listed[f"{base}/{entry.name}"] = (entry, now)
                self._listed.move_to_end(f"{base}/{entry.name}")
            while len(self._listed) > _LISTED:
                self._listed.popitem(last=False)
        return found

    def _changed(self) -> None:
        """Something changed through this mount: listed entries no longer answer ``getattr``."""
        with self._lock:
            self._listed.clear()

    @_errors_as_errno
    def releasedir(self, path: str | None, fh: int) -> int:
        with self._lock:
            self._listings.pop(fh, None)
        return 0

    @_errors_as_errno
    def mkdir(self, path: str, mode: int) -> int:
        self._changed()
        self._fs.create_dir(path)
        return 0

    @_errors_as_errno
    def rmdir(self, path: str) -> int:
        self._changed()
        self._fs.delete_dir(path)
        return 0

    @_errors_as_errno
    def unlink(self, path: str) -> int:
        self._changed()
        self._fs.delete(path)
        return 0

    @_errors_as_errno
    def symlink(self, target: str, source: str) -> int:
        # mfusepy's names: ``target`` is the new link, ``source`` what it points at.
        self._changed()
        self._fs.create_symlink(source, target)
        return 0

    @_errors_as_errno
    def readlink(self, path: str) -> str:
        return self._fs.read_symlink(path)

    @_errors_as_errno
    def link(self, target: str, source: str) -> int:
        raise OSError(errno.EPERM, "a filespace has no hard links", target)

    @_errors_as_errno
    def rename(self, old: str, new: str) -> int:
        self._changed()
        self._fs.move(old, new, replace=True)  # onto an existing entry as POSIX allows
        return 0

    # -- file data ---------------------------------------------------------------------
    @_errors_as_errno
    def create(self, path: str, mode: int, flags: int = 0) -> int:
        self._changed()
        try:
            stream = self._fs.open(path, "x+b", buffering=0)
        except FileExistsError:
            if flags & os.O_EXCL:
                raise
            stream = self._fs.open(path, "r+b", buffering=0)  # made meanwhile elsewhere
        return self._keep(stream, path, writable=True)

    @_errors_as_errno
    def open(self, path: str, flags: int) -> int:
        writable = flags & os.O_ACCMODE != os.O_RDONLY
        if writable:
            self._changed()
        # Reading, a buffered stream: a linked file is then confirmed unchanged
        # once, at the first read, and its blocks come from readahead, where an
        # unbuffered one would ask the server before every 128 KiB FUSE read.
        stream = self._fs.open(path, "r+b" if writable else "rb", buffering=0 if writable else -1)
        if flags & os.O_TRUNC and writable:
            stream.truncate(0)
        return self._keep(stream, path, writable=writable)

    def _keep(self, stream: Any, path: str, *, writable: bool) -> int:
        try:
            entry = self._fs.get_entry(path)
        except BaseException:
            stream.close()
            raise
        with self._lock:
            number = next(self._numbers)
            self._handles[number] = _Handle(stream, entry, writable)
            if writable:
                self._writing[entry.file_id] += 1
        return number

    def _handle(self, fh: int) -> _Handle:
        handle = self._handles.get(fh)
        if handle is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return handle

    @_errors_as_errno
    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        # (Defined so that mfusepy hands reads to libfuse; serve._Fuse calls readinto.)
        buffer = bytearray(size)
        return bytes(memoryview(buffer)[: self.readinto(memoryview(buffer), offset, fh)])

    @_errors_as_errno
    def readinto(self, target: memoryview, offset: int, fh: int) -> int:
        """``read`` straight into ``target`` (the kernel's reply buffer): no bytes in between."""
        handle = self._handle(fh)
        got = 0
        with handle.lock:
            handle.stream.seek(offset)
            while got < len(target):  # (a short read only at the end of the file)
                count = handle.stream.readinto(target[got:])
                if not count:
                    break
                got += count
        return got

    @_errors_as_errno
    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        handle = self._handle(fh)
        view = memoryview(data)
        with handle.lock:
            handle.stream.seek(offset)
            while view:
                written = handle.stream.write(view)
                view = view[written:]
        return len(data)

    @_errors_as_errno
    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        self._changed()
        handle = self._handles.get(fh) if fh is not None else None
        if handle is not None:
            with handle.lock:
                handle.stream.truncate(length)
        elif path is not None:
            self._fs.truncate(path, length)
        else:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return 0

    @_errors_as_errno
    def flush(self, path: str | None, fh: int) -> int:
        handle = self._handle(fh)
        with handle.lock:
            handle.stream.flush()  # commits a native file's data and size
        if handle.writable:
            self._changed()
        return 0

    @_errors_as_errno
    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        return self.flush(path, fh)

    @_errors_as_errno
    def release(self, path: str | None, fh: int) -> int:
        with self._lock:
            handle = self._handles.pop(fh, None)
            if handle is not None and handle.writable:
                self._writing[handle.entry.file_id] -= 1
                if self._writing[handle.entry.file_id] <= 0:
                    del self._writing[handle.entry.file_id]
        if handle is not None:
            with handle.lock:
                handle.stream.close()
            if handle.writable:
                self._changed()  # committed: a listed size may be old
        return 0

    def init(self, path: str) -> None:
        """The kernel has accepted the mount."""
        self.served = True

    def destroy(self, path: str) -> None:
        """Unmounted: close what is still open, committing what was written."""
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
            self._writing.clear()
        for handle in handles:
            try:
                handle.stream.close()
            except Exception as exc:  # noqa: BLE001 - the others must still close
                log.error("closing %s at unmount failed: %s", handle.entry.name, exc)
