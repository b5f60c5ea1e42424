"""The embedded engine: one SQLite file in WAL mode.

A transaction borrows an idle connection (opening one when none is idle) and
gives it back when it ends, so there are as many connections as transactions
ever ran at once. Connections are not tied to threads: a FUSE mount's calls
arrive on threads Python did not start, where thread-local state lasts one
call, and a connection per thread leaked one per call. Writers take the write
lock up front with ``BEGIN IMMEDIATE`` so two writers never deadlock upgrading
read locks.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path
from typing import Any

from filespace.errors import NotAFilespaceError
from filespace.meta.dialect import Dialect
from filespace.meta.records import LinkRow
from filespace.meta.schema import render_schema
from filespace.meta.sql import SqlEngine

_BUSY_TIMEOUT_MS = 60_000


class SqliteDialect(Dialect):
    """SQLite specifics: pooled connections, pragmas, error codes."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite://{path}"
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []  # every one open, to close
        self._idle: list[sqlite3.Connection] = []  # those no transaction is using
        self._closed = False

    def _open(self) -> sqlite3.Connection:
        _create_private(self.path)
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,  # borrowed by one thread at a time, any thread
                timeout=_BUSY_TIMEOUT_MS / 1000,
            )
        except sqlite3.Error as exc:
            raise _open_error(self.path, exc) from None
        try:
            self._configure(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise _open_error(self.path, exc) from None
        return conn

    @staticmethod
    def _configure(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # 64 MiB of pages: the (parent_id, name) index of a million links
        # stays in memory, so inserts late in a big import cost what early
        # ones do. Pages are taken only as they are used.
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")

    def _borrow(self) -> sqlite3.Connection:
        """An idle connection (or a new one) for the caller's use alone, until ``_return``.

        Taking and giving back an idle connection takes no lock (a list's
        ``pop`` and ``append`` are atomic): with dozens of threads (a prefetch
        and its readers) a lock taken twice per transaction became a convoy
        where each holder waits for the interpreter's lock before letting go.
        """
        if self._closed:
            raise ValueError("the filespace is closed")
        try:
            return self._idle.pop()
        except IndexError:
            pass
        conn = self._open()
        with self._lock:
            if self._closed:
                conn.close()
                raise ValueError("the filespace is closed")
            self._connections.append(conn)
        return conn

    def _return(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:  # failed, or failed to commit: the next borrower starts clean
            with contextlib.suppress(sqlite3.Error):
                conn.rollback()
        if not self._closed:
            self._idle.append(conn)  # (after a close, a closed connection no one takes)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Any]:
        # Borrowing is inlined (no context of its own): every engine call passes here.
        conn = self._borrow()
        try:
            cursor = conn.cursor()
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cursor
                conn.commit()
            finally:
                cursor.close()
        except sqlite3.OperationalError as exc:
            full = _disk_full(self.path, exc)
            if full is None:
                raise
            raise full from None
        finally:
            self._return(conn)  # rolls back whatever did not commit

    def table(
        self, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[object]]
    ) -> tuple[str, list[object]]:
        picked = ", ".join(
            f"json_extract(value, '$[{at}]') AS {name}" for at, (name, _) in enumerate(columns)
        )
        return f"SELECT {picked} FROM json_each(?)", [json.dumps(rows)]

    def insert_links(
        self, cursor: Any, store_id: int, rows: Sequence[LinkRow], now_ns: int, mark: int | None
    ) -> int:
        # A write transaction here holds the only write lock, so ids can be
        # handed out up front and the link rows need no lookup of their entry.
        if not rows:
            return 0
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM entries")
        first = int(cursor.fetchone()[0]) + 1
        # Parameters built column-wise in C (zip, repeat) rather than a Python loop
        # over NamedTuples: a quarter of the time at a million rows.
        ids = range(first, first + len(rows))
        parents, names, keys, sizes, checksums, sequencers = zip(*rows, strict=True)
        now = repeat(now_ns)
        cursor.executemany(
            "INSERT INTO entries (id, parent_id, name, type, kind, size, ctime_ns, mtime_ns)"
            " VALUES (?, ?, ?, 'file', 's3', ?, ?, ?) ON CONFLICT (parent_id, name) DO NOTHING",
            zip(ids, parents, names, sizes, now, now, strict=False),  # ``now`` is endless
        )
        if cursor.rowcount != len(rows):
            return int(cursor.rowcount)
        cursor.executemany(
            "INSERT INTO external_links (entry_id, data_store_id, object_key, url, size,"
            " checksum, linked_ns, mirror_mark, sequencer) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?)",
            zip(
                ids,
                repeat(store_id),
                keys,
                sizes,
                checksums,
                now,
                repeat(mark),
                sequencers,
                strict=False,
            ),
        )
        return int(cursor.rowcount)

    def schema(self) -> list[str]:
        return render_schema(
            int_type="INTEGER",
            blob_type="BLOB",
            entry_key="INTEGER PRIMARY KEY",
            store_key="INTEGER PRIMARY KEY",
        )

    def has_schema(self) -> bool:
        if not self.path.exists():
            return False
        conn = self._borrow()
        try:
            row = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settings'"
            ).fetchone()
        finally:
            self._return(conn)
        return row is not None

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def is_foreign_key_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "FOREIGN KEY" in str(exc)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections, self._idle = self._connections, [], []
        for conn in connections:
            conn.close()


def _create_private(path: Path) -> None:
    """Create the database file 0600 if it is new: SQLite gives its -wal and -shm its mode.

    Whatever the umask, the metadata (names, sizes, sealed secrets) is for its
    owner alone; sharing it is a ``chmod`` away.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except (FileExistsError, IsADirectoryError, NotADirectoryError, FileNotFoundError):
        return  # it exists (or cannot be made): opening it says what is wrong
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _disk_full(path: Path, exc: sqlite3.Error) -> OSError | None:
    """``OSError(ENOSPC)`` naming the database when ``exc`` says its disk is full, else None.

    SQLite has rolled the transaction back by then: nothing of it is left.
    """
    if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
        return None
    return OSError(
        errno.ENOSPC,
        "no space left on device for the filespace's metadata: nothing was changed; "
        "free some space and try again",
        str(path),
    )


def _open_error(path: Path, exc: sqlite3.Error) -> Exception:
    """The public error for a database file SQLite cannot open."""
    full = _disk_full(path, exc)
    if full is not None:
        return full
    if path.is_dir():
        return NotAFilespaceError(f"{path} is a directory, not a filespace database")
    if not isinstance(exc, sqlite3.OperationalError):  # "file is not a database"
        return NotAFilespaceError(f"{path} is not a filespace database ({exc})")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return PermissionError(errno.EACCES, f"cannot open the database ({exc})", str(path))
    if not path.parent.is_dir():
        return FileNotFoundError(errno.ENOENT, "no such directory for the database", str(path))
    return OSError(errno.EIO, f"cannot open the database ({exc})", str(path))


def open_sqlite(path: Path) -> SqlEngine:
    """The SQLite engine for the database file at ``path``."""
    return SqlEngine(SqliteDialect(path))
