"""The shared engine: PostgreSQL through psycopg 3 and a connection pool.

Each filespace lives in its own PostgreSQL schema (``?schema=NAME`` in the
URL, default ``filespace``), so one database can hold many filespaces and
``DROP SCHEMA`` removes one whole. Statements are the shared SQL of
the operation modules; psycopg prepares repeated ones on the server by itself; bulk
links load with ``COPY``. Writers
are not serialized by any global lock: uniqueness and references are enforced
by constraints, counters are sharded rows, and only directory moves (which
must not race into a cycle) take a transaction-scoped advisory lock.
"""

from __future__ import annotations

import errno
import random
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from filespace.meta import pgconnect
from filespace.meta.dialect import Dialect
from filespace.meta.records import LinkRow
from filespace.meta.schema import render_schema
from filespace.meta.sql import SqlEngine
from filespace.redaction import public_location

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_RESERVED_SCHEMA = re.compile(r"pg_.*|information_schema")
_COUNTER_SHARDS = 16
_POOL_SIZE = 8


def split_url(url: str) -> tuple[str, str]:
    """The connection URL without filespace options, and the schema name.

    ``ValueError`` naming the URL (without its password) for a schema name
    PostgreSQL reserves or a URL libpq cannot parse.
    """
    public = public_location(url)
    try:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
    except ValueError:
        raise ValueError(f"{public}: not a valid PostgreSQL URL") from None
    schema = query.pop("schema", "filespace")
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"{public}: invalid schema name {schema!r}: use a-z, 0-9 and _")
    if _RESERVED_SCHEMA.fullmatch(schema):
        raise ValueError(
            f"{public}: schema name {schema!r} is reserved by PostgreSQL (pg_*, "
            "information_schema): choose another"
        )
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    conninfo = urlunsplit((scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote), ""))
    pgconnect.check_conninfo(conninfo, url)
    return conninfo, schema


_PLACE_OPTIONS = ("host", "hostaddr", "port")
"""Options that say where the server is (``?host=a,b&port=p1,p2``): kept in the public URL."""


def _public_url(conninfo: str, schema: str) -> str:
    """The URL as shown to users: no password; where the server is and the schema kept."""
    public = public_location(conninfo)
    base, _, query = public.partition("#")[0].partition("?")
    place = [
        (name, value)
        for name, value in parse_qsl(query, keep_blank_values=True)
        if name in _PLACE_OPTIONS
    ]
    return f"{base}?{urlencode([*place, ('schema', schema)], safe=',:/[]')}"


class PostgresDialect(Dialect):
    """PostgreSQL specifics: pooled connections, ``%s`` placeholders, error classes."""

    name = "postgresql"
    # Writers overlap under READ COMMITTED; rows read to count a change are locked.
    row_lock = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        self._conninfo, self.schema_name = split_url(url)
        self.url = _public_url(self._conninfo, self.schema_name)
        self._pool: Any = None
        self._lock = threading.Lock()
        self._closed = False
        self._converted: dict[str, str] = {}

    def _get_pool(self) -> Any:
        if self._pool is None:
            with self._lock:
                if self._closed:
                    raise ValueError("the filespace is closed")
                if self._pool is None:
                    from psycopg_pool import ConnectionPool

                    # A location that can never work fails here, at once.
                    pgconnect.probe(self._conninfo, self._conninfo)

                    schema = self.schema_name

                    def configure(conn: Any) -> None:
                        conn.execute(f'SET search_path TO "{schema}"')

                    self._pool = ConnectionPool(
                        self._conninfo,
                        min_size=1,
                        max_size=_POOL_SIZE,
                        kwargs={"autocommit": True, **pgconnect.connect_options(self._conninfo)},
                        configure=configure,
                        open=True,
                        timeout=60,
                    )
        return self._pool

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Any]:
        if self._closed:
            raise ValueError("the filespace is closed")
        from psycopg import errors

        try:
            with (
                self._get_pool().connection() as conn,
                conn.transaction(),
                conn.cursor() as cursor,
            ):
                yield cursor
        except errors.DiskFull:
            # Not a passing failure to retry: the transaction is rolled back whole.
            raise OSError(
                errno.ENOSPC,
                "no space left on device on the PostgreSQL server for the filespace's "
                "metadata: nothing was changed; free some space and try again",
                self.url,
            ) from None

    def schema(self) -> list[str]:
        return [
            f'CREATE SCHEMA IF NOT EXISTS "{self.schema_name}"',
            *render_schema(
                int_type="BIGINT",
                blob_type="BYTEA",
                # The root directory is inserted with id 1; generated ids start after it.
                entry_key="BIGINT GENERATED BY DEFAULT AS IDENTITY (START WITH 2) PRIMARY KEY",
                store_key="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            ),
        ]

    def has_schema(self) -> bool:
        with self.transaction(write=False) as cursor:
            cursor.execute("SELECT to_regclass(%s)", (f'"{self.schema_name}".settings',))
            row = cursor.fetchone()
        return row is not None and row[0] is not None

    def sql(self, text: str) -> str:
        converted = self._converted.get(text)
        if converted is None:
            converted = text.replace("%", "%%").replace("?", "%s")
            self._converted[text] = converted
        return converted

    def is_unique_violation(self, exc: BaseException) -> bool:
        from psycopg import errors

        return isinstance(exc, errors.UniqueViolation)

    def is_foreign_key_violation(self, exc: BaseException) -> bool:
        from psycopg import errors

        return isinstance(exc, errors.ForeignKeyViolation)

    def is_retryable(self, exc: BaseException) -> bool:
        import psycopg
        from psycopg import errors

        if isinstance(exc, errors.SerializationFailure | errors.DeadlockDetected):
            return True
        # A dropped connection or a restarting server: the pool replaces the
        # connection, and the transaction (rolled back) runs again.
        return isinstance(exc, psycopg.OperationalError) and not isinstance(
            exc, errors.QueryCanceled
        )

    def table(
        self, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[object]]
    ) -> tuple[str, list[object]]:
        arrays = ", ".join(f"CAST(? AS {kind}[])" for _, kind in columns)
        names = ", ".join(name for name, _ in columns)
        values = [list(column) for column in zip(*rows, strict=True)] if rows else []
        params: list[object] = [*values] if values else [[] for _ in columns]
        return f"SELECT * FROM unnest({arrays}) AS t({names})", params

    def counter_shard(self) -> int:
        return random.randrange(_COUNTER_SHARDS)

    def insert_links(
        self, cursor: Any, store_id: int, rows: Sequence[LinkRow], now_ns: int, mark: int | None
    ) -> int:
        # COPY is PostgreSQL's fastest way in: ids are drawn from the entries
        # sequence first, so both tables load without a lookup. A name already
        # taken (or given twice), or a parent removed since it was checked,
        # aborts the COPY; 0 then tells the caller to roll back and redo the
        # batch carefully. A vanished store is the caller's error to report.
        if not rows:
            return 0
        ids = self._draw_ids(cursor, len(rows))
        try:
            with cursor.copy(
                "COPY entries (id, parent_id, name, type, kind, size, ctime_ns, mtime_ns)"
                " FROM STDIN"
            ) as copy:
                for entry_id, (parent, name, _, size, _, _) in zip(ids, rows, strict=True):
                    copy.write_row((entry_id, parent, name, "file", "s3", size, now_ns, now_ns))
            with cursor.copy(
                "COPY external_links (entry_id, data_store_id, object_key, size, checksum,"
                " linked_ns, mirror_mark, sequencer) FROM STDIN"
            ) as copy:
                for entry_id, (_, _, key, size, checksum, seq) in zip(ids, rows, strict=True):
                    copy.write_row((entry_id, store_id, key, size, checksum, now_ns, mark, seq))
        except Exception as exc:
            if self.is_unique_violation(exc) or _names_constraint(exc, "entries_parent_id_fkey"):
                return 0
            raise
        return len(rows)

    def _draw_ids(self, cursor: Any, count: int) -> list[int]:
        """``count`` fresh entry ids from the sequence, in one round trip."""
        # The sequence is named as a constant: looking it up in the statement
        # would repeat the catalog lookup for every id, ten times the cost.
        sequence = f'"{self.schema_name}".entries_id_seq'
        cursor.execute(f"SELECT nextval('{sequence}') FROM generate_series(1, %s)", (count,))
        return [int(row[0]) for row in cursor.fetchall()]

    def lock_moves(self, cursor: Any) -> None:
        # Two directory moves checked concurrently could each pass the cycle
        # check and together form a loop; moves of directories take turns.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema_name}:moves",))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _names_constraint(exc: BaseException, name: str) -> bool:
    """Whether a PostgreSQL error is about the constraint ``name``."""
    diag = getattr(exc, "diag", None)
    return diag is not None and diag.constraint_name == name


def open_postgres(url: str) -> SqlEngine:
    """The PostgreSQL engine for ``url`` (``postgresql://user@host:port/db?schema=s``)."""
    return SqlEngine(PostgresDialect(url))
