"""The disk tier of the block cache: one file per block, shared between processes.

Layout, under ``<cache root>/<filespace id>/v1/``::

    ab/ab12…ef.17        block 17 of the object whose namespace is ab12…ef
    ab/ab12…ef.seen      (empty) that object was streamed before
    ab/ab12…ef.ok        (empty) its mtime: when the server last confirmed that object
    ab/.tmp.<pid>.<rand> a block being written
    .usage               bytes of block files in all (see below)

A file is a 48-byte header (magic, namespace, block index, length, CRC-32 of
the data) and the data. It is written to a temporary name and renamed into
place, so a reader sees a whole file or none; a reader checks the header, the
file's length and the CRC, and treats any mismatch (a torn, truncated or
corrupted file, or one at the wrong name) as a miss and removes it. Nothing is
fsync'ed: after a crash the checks turn damage into misses.

The tier is bounded by ``capacity`` bytes of files, whatever number of
processes and threads write to it. Least recently used files go first: a hit
bumps the file's mtime, and eviction scans the directory and removes the
oldest files until the total is under 90 % of the bound (a file used in the
last minute is not redated: they count as equally recent). The running total is
kept in ``.usage`` (decimal digits) and every write takes an exclusive
``flock`` on that file, so a writer sees what every other one wrote, makes
room, reserves its blocks' bytes and writes them (a batch of blocks under one
lock); a process rescans after
writing a sixteenth of the bound, which corrects the total for files removed
without it (damaged files dropped by readers, prunes). Files vanishing under
a scan (another process evicting) are expected and skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
import struct
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

_MAGIC = b"FSBLK\x00\x01\x00"
_HEADER = struct.Struct("<8s16sQQI4x")  # magic, namespace, index, length, crc32
HEADER_SIZE = _HEADER.size
_LOW_WATER = 0.9
_RECENT_S = 60.0  # a hit on a file younger than this leaves its mtime
_RESCAN_FRACTION = 16
_STALE_TEMP_S = 600.0
_TEMP_PREFIX = ".tmp."
_MARK_SUFFIX = ".seen"
_STAMP_SUFFIX = ".ok"
_LEDGER = ".usage"  # the running total of the block files' bytes, locked by every writer
_LEDGER_WIDTH = 20


class DiskTier:
    """Block files in one directory, bounded in total size, LRU by mtime."""

    def __init__(self, directory: Path, capacity: int) -> None:
        self.directory = directory
        self._root = str(directory)
        self.capacity = capacity
        self._written_since_scan = 0  # (changed only under the ledger's lock)
        self._ready = False
        self.last_error: OSError | None = None  # why the last refused write failed

    def __repr__(self) -> str:
        return f"DiskTier({str(self.directory)!r}, capacity={self.capacity})"

    def _path(self, namespace: str, index: int) -> str:
        # (strings, not Path: this runs for every block read and written)
        return f"{self._root}/{namespace[:2]}/{namespace}.{index}"

    # -- reading -------------------------------------------------------------------
    def get(self, namespace: str, index: int, length: int) -> memoryview | None:
        """The block's ``length`` bytes if a whole, intact file holds them.

        The view is over an immutable ``bytes`` (read straight from the file):
        a reader that wants the whole block can take it without a copy.
        """
        path = self._path(namespace, index)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if info.st_size == HEADER_SIZE + length:
                header = os.pread(fd, HEADER_SIZE, 0)
                data = os.pread(fd, length, HEADER_SIZE)
                if len(data) == length and self._valid(header, namespace, index, data):
                    # Most recently used. A file used within the last minute is
                    # left as it is: redating it is a journaled inode write on
                    # every hit of a busy epoch, for an order no eviction needs.
                    if time.time() - info.st_mtime > _RECENT_S:
                        with contextlib.suppress(OSError):
                            os.utime(fd)
                    return memoryview(data)
        except OSError:
            pass
        finally:
            os.close(fd)
        self._discard(path)
        return None

    def has(self, namespace: str, index: int, length: int) -> bool:
        """Whether a file of the block's size is there (its content is checked on ``get``)."""
        try:
            return os.stat(self._path(namespace, index)).st_size == HEADER_SIZE + length
        except OSError:
            return False

    @staticmethod
    def _valid(header: bytes, namespace: str, index: int, data: bytes) -> bool:
        if len(header) != HEADER_SIZE:
            return False
        magic, name, stored_index, stored_length, crc = _HEADER.unpack(header)
        return bool(
            magic == _MAGIC
            and name == bytes.fromhex(namespace)
            and stored_index == index
            and stored_length == len(data)
            and crc == zlib.crc32(data)
        )

    def _discard(self, path: str) -> None:
        """Remove a damaged file (best effort: another process may have replaced it)."""
        # (The ledger keeps counting it until the next rescan: too high is safe.)
        with contextlib.suppress(OSError):
            os.unlink(path)

    def mark(self, namespace: str) -> bool:
        """Leave (or refresh) an empty marker for ``namespace``; whether one was there.

        Markers are how processes tell each other an object was streamed before;
        being empty, they cost no room and go with the oldest files on eviction.
        """
        path = self.directory / namespace[:2] / f"{namespace}{_MARK_SUFFIX}"
        try:
            os.utime(path)
            return True
        except FileNotFoundError:
            pass
        except OSError:
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch()
        except OSError:
            pass
        return False

    def stamp(self, namespace: str, when: float) -> None:
        """Record that the server confirmed ``namespace``'s object at ``when`` (epoch seconds).

        The time is the marker's mtime, so every process sharing the directory
        sees it; an older stamp never replaces a newer one. Best effort.
        """
        path = self.directory / namespace[:2] / f"{namespace}{_STAMP_SUFFIX}"
        try:
            try:
                fd, made = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), True
            except FileExistsError:
                fd, made = os.open(path, os.O_WRONLY), False
            except FileNotFoundError:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd, made = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), True
            try:
                if made or os.fstat(fd).st_mtime < when:
                    os.utime(fd, (when, when))
            finally:
                os.close(fd)
        except OSError:
            pass

    def stamped(self, namespace: str) -> float | None:
        """When the server last confirmed ``namespace``'s object, if a stamp says so."""
        path = f"{self._root}/{namespace[:2]}/{namespace}{_STAMP_SUFFIX}"
        try:
            return os.stat(path).st_mtime
        except OSError:
            return None

    # -- writing -------------------------------------------------------------------
    def put(self, namespace: str, index: int, data: memoryview) -> bool:
        """Store a block; ``False`` if the disk refused (the caller may give up on it)."""
        return self.put_many([((namespace, index), data)])[0]

    def put_many(self, blocks: Sequence[tuple[tuple[str, int], memoryview]]) -> list[bool]:
        """Store blocks (``((namespace, index), data)``) under one hold of the ledger.

        One lock, read and write of the total for the lot: a busy writer pays
        for the ledger once per batch, not once per block. Each block's answer
        is ``False`` if the disk refused it (the caller may give up on the disk).
        """
        stored: list[bool] = []
        try:
            with self._ledger() as ledger:
                usage = _read_usage(ledger)
                for (namespace, index), data in blocks:
                    usage, ok = self._put_locked(ledger, usage, namespace, index, data)
                    stored.append(ok)
        except OSError as exc:  # (the ledger itself)
            self.last_error = exc
        return stored + [False] * (len(blocks) - len(stored))

    def _put_locked(
        self, ledger: int, usage: int | None, namespace: str, index: int, data: memoryview
    ) -> tuple[int | None, bool]:
        """Write one block with the ledger held: (the total now, whether it was stored)."""
        size = HEADER_SIZE + len(data)
        if size > self.capacity:
            return usage, True  # never fits; not a failure
        path = self._path(namespace, index)
        shard = os.path.dirname(path)
        header = _HEADER.pack(_MAGIC, bytes.fromhex(namespace), index, len(data), zlib.crc32(data))
        temp = f"{shard}/{_TEMP_PREFIX}{os.getpid()}.{secrets.token_hex(6)}"
        try:
            if (
                usage is None
                or self._written_since_scan >= self.capacity // _RESCAN_FRACTION
                or usage + size > self.capacity
            ):
                usage = self._evict(size)
            try:
                replaced = os.stat(path).st_size
            except FileNotFoundError:
                replaced = 0
            # Reserved before the file is written: a failed write leaves the
            # total too high, which the next rescan corrects.
            usage += size - replaced
            _write_usage(ledger, usage)
            self._written_since_scan += size
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileNotFoundError:
                os.makedirs(shard, mode=0o700, exist_ok=True)
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _write_all(fd, [header, data])
            finally:
                os.close(fd)
            os.replace(temp, path)
        except OSError as exc:
            self.last_error = exc
            with contextlib.suppress(OSError):
                os.unlink(temp)
            return usage, False
        return usage, True

    @contextlib.contextmanager
    def _ledger(self) -> Iterator[int]:
        """The ledger's descriptor, locked exclusively against every other writer."""
        if not self._ready:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._ready = True
        fd = os.open(
            self.directory / _LEDGER, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # (and with it the lock)

    def trim(self, incoming: int = 0) -> int:
        """Rescan, then evict oldest files until ``incoming`` more bytes fit; the new total."""
        with self._ledger() as ledger:
            total = self._evict(incoming)
            _write_usage(ledger, total)
        return total

    def _evict(self, incoming: int) -> int:
        """``trim`` with the ledger already locked."""
        files = self._scan()
        total = sum(size for _, size, _ in files)
        if total + incoming > self.capacity:
            goal = int(self.capacity * _LOW_WATER) - incoming
            files.sort(key=lambda item: item[0])
            for _, size, path in files:
                if total <= goal:
                    break
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                total -= size  # gone, whoever removed it
        self._written_since_scan = 0
        return total

    def _scan(self) -> list[tuple[float, int, str]]:
        return scan_blocks(self.directory, clean=True)

    def usage(self) -> int:
        """Bytes of block files in the directory now (a fresh scan)."""
        return sum(size for _, size, _ in self._scan())


def scan_blocks(directory: Path, *, clean: bool = False) -> list[tuple[float, int, str]]:
    """(mtime, size, path) of every block and marker file under ``directory``.

    ``clean``: remove temporary files abandoned longer than ten minutes.
    """
    found: list[tuple[float, int, str]] = []
    now = time.time()
    try:
        shards = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for shard in shards:
        try:
            entries = list(os.scandir(shard.path))
        except (NotADirectoryError, FileNotFoundError):
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if entry.name.startswith(_TEMP_PREFIX):
                if clean and now - info.st_mtime > _STALE_TEMP_S:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                continue
            found.append((info.st_mtime, info.st_size, entry.path))
    return found


def scan_settled(directory: Path) -> list[tuple[float, int, str]]:
    """``scan_blocks`` while no writer changes ``directory`` (a shared lock on its ledger).

    Without it a scan walking the shards can count a file that a writer
    evicted and the one written after it in a shard not yet walked: more
    than was ever there at once.
    """
    try:
        fd = os.open(
            directory / _LEDGER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        )
    except OSError:  # no writer yet: a plain scan
        return scan_blocks(directory)
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():  # (never wait on others)
            fcntl.flock(fd, fcntl.LOCK_SH)
        return scan_blocks(directory)
    finally:
        os.close(fd)


def is_block(path: str) -> bool:
    """Whether a file ``scan_blocks`` found holds a block (not a marker or a stamp)."""
    return path.rpartition(".")[2].isdigit()


def _read_usage(ledger: int) -> int | None:
    """The total the ledger holds (None: new or unreadable, so rescan)."""
    raw = os.pread(ledger, _LEDGER_WIDTH, 0)
    return int(raw) if len(raw) == _LEDGER_WIDTH and raw.isdigit() else None


def _write_usage(ledger: int, total: int) -> None:
    os.pwrite(ledger, b"%0*d" % (_LEDGER_WIDTH, max(0, total)), 0)


def _write_all(fd: int, parts: list[bytes | memoryview]) -> None:
    views = [memoryview(part).cast("B") for part in parts]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]
