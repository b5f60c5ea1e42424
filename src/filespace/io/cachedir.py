"""The cache directories under the cache root: private, marked, leased, pruned.

Each open filespace with a disk tier uses ``<cache root>/<filespace id>/``::

    filespace.json   the marker: filespace id, location (public form), last use, budget
    .in-use          locked shared (flock) by every open filespace using the directory
    v1/              the blocks (:mod:`filespace.io.diskcache`)

- **Private**: the directory is made 0700, and one that exists owned by
  another user, or with any permission for group or others, is refused: its
  blocks could have been put there by someone else, and the CRC of a block
  file proves nothing against a writer who computes it. The cache root itself
  must be ours and writable by no one else (it may be readable: a root made by
  ``mkdir`` is 0755). A refused directory is not used: the filespace runs
  without the disk tier, and says so once per directory and process.
- **In use**: the lease is a shared ``flock`` on ``.in-use``, held for as long
  as the filespace is open (and by a forked child that inherited it). Pruning
  takes the lock exclusively without waiting, so a cache in use anywhere on
  the machine is never removed; an opener that got its lease on a file that a
  prune removed meanwhile takes a new one.
- **Pruned automatically** at most once a day (the stamp ``<cache root>/.pruned``)
  when a filespace opens: caches of other filespaces unused for
  :data:`AUTO_MAX_AGE_DAYS` days are removed, and the others trimmed to the
  budget they were last opened with. Caches with no marker (made by an older
  version) count as last used when their directory last changed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filespace.io.diskcache import DiskTier, is_block, scan_settled

log = logging.getLogger(__name__)

MARKER = "filespace.json"
LOCK = ".in-use"
STAMP = ".pruned"
BLOCKS = "v1"
AUTO_MAX_AGE_DAYS = 30
_AUTO_EVERY_S = 24 * 3600.0
_DAY_S = 24 * 3600.0
_warned: set[str] = set()  # directories refused in this process (warn once each)


@dataclass(frozen=True)
class Entry:
    """One cache directory as found under the root."""

    filespace_id: str
    directory: Path
    location: str | None
    last_used: float
    budget_mb: int | None
    size: int
    blocks: int
    in_use: bool
    refused: str | None


def refusal(directory: Path, *, root: bool = False) -> str | None:
    """Why ``directory`` (an existing one) must not be used, or None."""
    info = os.stat(directory)
    if not stat.S_ISDIR(info.st_mode):
        return "not a directory"
    if info.st_uid != os.geteuid():
        return f"owned by another user (uid {info.st_uid})"
    mode = stat.S_IMODE(info.st_mode)
    if root and mode & 0o022:
        return f"mode {mode:04o}: writable by group or others"
    if not root and mode & 0o077:
        return f"mode {mode:04o}: wider than 0700"
    return None


def private_dir(directory: Path, *, root: bool = False) -> None:
    """Make ``directory`` (0700) or check the one there: ``PermissionError`` if refused."""
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700, parents=True)
        os.chmod(directory, 0o700)  # whatever the umask
    why = refusal(directory, root=root)
    if why is not None:
        raise PermissionError(
            errno.EACCES,
            f"cache directory refused ({why}); remove it or chmod 700 it",
            str(directory),
        )


class Lease:
    """This process's use of one cache directory: a shared lock, and the marker updated."""

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd: int | None = fd

    @classmethod
    def take(cls, root: Path, filespace_id: str, location: str, budget_mb: int) -> Lease:
        """Lease ``root/filespace_id`` (made private if new); ``PermissionError`` if refused."""
        private_dir(root, root=True)
        directory = root / filespace_id
        while True:
            private_dir(directory)
            lock = directory / LOCK
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                if _same_file(fd, lock):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # pruned while we waited: lease the new directory
        lease = cls(directory, fd)
        write_marker(directory, filespace_id, location, budget_mb)
        return lease

    def release(self) -> None:
        """Let the directory be pruned again (by this process at least); idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        here = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def write_marker(directory: Path, filespace_id: str, location: str, budget_mb: int) -> None:
    """Record what the cache belongs to, and that it is used now (best effort)."""
    document = {
        "filespace_id": filespace_id,
        "location": location,
        "last_used": time.time(),
        "budget_mb": budget_mb,
    }
    temp = directory / f".marker.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)
        os.replace(temp, directory / MARKER)
    except OSError as exc:
        log.debug("cache marker in %s not written: %s", directory, exc)
        with contextlib.suppress(OSError):
            temp.unlink()


def read_marker(directory: Path) -> dict[str, Any]:
    """The marker's fields, or an empty dict when there is none (or it is damaged)."""
    try:
        document = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return document if isinstance(document, dict) else {}


def warn_refused(directory: Path, exc: OSError) -> None:
    """Say once per process and directory that its cache runs without the disk tier."""
    where = exc.filename if exc.filename is not None else directory
    _warn_once(str(directory), f"{where}: {exc.strerror or exc}")


def warn_given_up(directory: Path, exc: OSError | None) -> None:
    """Say once per process and directory that writes to it kept failing (a full disk)."""
    why = os.strerror(exc.errno) if exc is not None and exc.errno else "writes kept failing"
    _warn_once(str(directory), f"{directory}: the disk cache stopped ({why})")


def _warn_once(key: str, text: str) -> None:
    if key in _warned:
        return
    _warned.add(key)
    log.warning("%s; reading without the disk cache", text)


# -- what is there, and pruning ---------------------------------------------------------
def entries(root: Path) -> list[Entry]:
    """Every filespace cache directory under ``root`` (names that are not ids are skipped)."""
    try:
        children = sorted(os.scandir(root), key=lambda child: child.name)
    except FileNotFoundError:
        return []
    found = []
    for child in children:
        if child.name.startswith(".") or child.name == "mounts":
            continue
        if not child.is_dir(follow_symlinks=False):
            continue
        found.append(describe(Path(child.path)))
    return found


def describe(directory: Path) -> Entry:
    """What one cache directory holds and whether it is in use."""
    marker = read_marker(directory)
    size = blocks = 0
    for _, length, path in scan_settled(directory / BLOCKS):
        size += length
        blocks += is_block(path)
    last = marker.get("last_used")
    if not isinstance(last, int | float):
        last = os.stat(directory).st_mtime
    budget = marker.get("budget_mb")
    location = marker.get("location")
    return Entry(
        filespace_id=directory.name,
        directory=directory,
        location=location if isinstance(location, str) else None,
        last_used=float(last),
        budget_mb=budget if isinstance(budget, int) and budget >= 0 else None,
        size=size,
        blocks=blocks,
        in_use=_in_use(directory),
        refused=refusal(directory),
    )


def _in_use(directory: Path) -> bool:
    with unused(directory) as free:
        return not free


@contextlib.contextmanager
def unused(directory: Path) -> Iterator[bool]:
    """Hold ``directory`` exclusively while the block runs; whether that was possible."""
    try:
        fd = os.open(directory / LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        yield True  # never leased (an older version's cache): nothing holds it
        return
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def remove(directory: Path) -> bool:
    """Remove a cache directory unless it is in use (or refused); whether it went."""
    if refusal(directory) is not None:
        return False
    with unused(directory) as free:
        if not free:
            return False
        # The lock file goes last: a waiting opener then sees it replaced.
        for child in sorted(directory.iterdir(), key=lambda path: path.name == LOCK):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    child.unlink()
        with contextlib.suppress(OSError):
            directory.rmdir()
    return True


def trim_to_budget(entry: Entry) -> None:
    """Evict a cache's oldest blocks down to the budget it was last opened with."""
    if entry.budget_mb is None or entry.size <= entry.budget_mb * 1024 * 1024:
        return
    with unused(entry.directory) as free:
        if free:
            DiskTier(entry.directory / BLOCKS, entry.budget_mb * 1024 * 1024).trim()


def auto_prune(root: Path, *, now: float | None = None) -> bool:
    """At most once a day: remove old caches, trim the rest; whether it ran."""
    now = time.time() if now is None else now
    stamp = root / STAMP
    try:
        if now - os.stat(stamp).st_mtime < _AUTO_EVERY_S:
            return False
    except FileNotFoundError:
        pass
    try:
        stamp.touch(mode=0o600)
        os.utime(stamp, (now, now))
    except OSError:
        return False
    for entry in entries(root):
        if entry.in_use or entry.refused is not None:
            continue
        if now - entry.last_used > AUTO_MAX_AGE_DAYS * _DAY_S:
            remove(entry.directory)
        else:
            trim_to_budget(entry)
    return True
