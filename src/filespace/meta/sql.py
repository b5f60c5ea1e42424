"""The engine logic every SQL dialect shares.

SQL here is written once, with ``?`` placeholders; a ``Dialect`` supplies the
connections, transactions, schema and the few things that differ between
databases (placeholder style, how a constraint violation looks). Counters are
sharded rows (``counters``: one wide row per shard; ``store_counters``: one
row per store and shard) updated by upsert in the same transaction as the rows
they count, so a reader sums a handful of rows and concurrent writers on a
server engine do not queue on one hot row.
"""

from __future__ import annotations

import functools
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from filespace.errors import EngineError
from filespace.meta.engine import (
    Engine,
    NameTaken,
    NoSuchEntry,
    NoSuchStore,
    NotEmpty,
    StoreBusy,
    StoreLimit,
    StoreTaken,
    WouldCycle,
)
from filespace.meta.records import (
    ROOT_ID,
    BlockRecord,
    EntryRecord,
    EntryType,
    LinkPage,
    LinkRecord,
    NewLink,
    Removed,
    StoreRecord,
)
from filespace.meta.sql_bulk import BulkSqlMixin

SCHEMA_VERSION = 1

COUNTERS = (
    "files",
    "dirs",
    "symlinks",
    "entries_size",
    "data_size",
    "storage_size",
    "external_files",
    "external_size",
)
"""The filespace-wide counters: columns of the ``counters`` rows (one per shard)."""

Row = tuple[Any, ...]

_ENTRY_COLUMNS = (
    "e.id, e.parent_id, e.name, e.type, e.kind, e.size, e.ctime_ns, e.mtime_ns, e.target, "
    "l.data_store_id, s.name, l.object_key, l.url, l.size, l.checksum, l.linked_ns"
)
_ENTRY_FROM = (
    "entries e LEFT JOIN external_links l ON l.entry_id = e.id "
    "LEFT JOIN data_stores s ON s.id = l.data_store_id"
)
_STORE_COLUMNS = (
    "id, uid, name, kind, bucket, region, endpoint, virtual_addressing, "
    "url_expiration_minutes, access_key, sealed_secret, key_id, rekey_state, created_ns"
)
_STORE_UPDATABLE = frozenset(
    {"access_key", "sealed_secret", "key_id", "rekey_state", "endpoint", "region"}
)
_SUBTREE = (
    "WITH RECURSIVE sub(id) AS (SELECT CAST(? AS BIGINT) UNION ALL "
    "SELECT e.id FROM entries e JOIN sub ON e.parent_id = sub.id) "
)


class Tx:
    """A transaction's cursor with small helpers; SQL uses ``?`` placeholders."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self._dialect = dialect

    def run(self, sql: str, *params: object) -> int:
        """Execute one statement; return the rows it changed."""
        self._cursor.execute(self._dialect.sql(sql), params)
        return int(self._cursor.rowcount)

    def one(self, sql: str, *params: object) -> Row | None:
        self._cursor.execute(self._dialect.sql(sql), params)
        row = self._cursor.fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, *params: object) -> list[Row]:
        self._cursor.execute(self._dialect.sql(sql), params)
        return [tuple(row) for row in self._cursor.fetchall()]

    def many(self, sql: str, rows: Sequence[Sequence[object]]) -> int:
        """Execute one statement per row; return the rows changed in all."""
        if not rows:
            return 0
        self._cursor.executemany(self._dialect.sql(sql), rows)
        return int(self._cursor.rowcount)

    @property
    def cursor(self) -> Any:
        """The DB-API cursor itself, for a dialect's own fast paths (COPY)."""
        return self._cursor

    def lock_moves(self) -> None:
        """Take the engine's lock that makes directory moves take turns."""
        self._dialect.lock_moves(self._cursor)

    def hold_entries(self, where: str, *params: object, scope: str = "") -> None:
        """Lock the entries matching ``where`` until commit, where writers can overlap.

        Counter deltas come from rows read after this. Under PostgreSQL's READ
        COMMITTED two clients changing the same entries would otherwise both read
        them, both change them and both count the change. Every change that moves
        a counter writes its entry row, so holding that row is enough. ``scope``
        is a ``WITH`` clause ``where`` may use.
        """
        lock = self._dialect.row_lock
        if lock:
            self.all(f"{scope}SELECT id FROM entries WHERE {where} ORDER BY id{lock}", *params)


class Dialect(ABC):
    """What one database does differently."""

    name: str
    url: str
    row_lock = ""
    """What ends a SELECT that locks its rows; empty where writers take turns anyway."""

    @abstractmethod
    def transaction(self, *, write: bool) -> AbstractContextManager[Any]:
        """A context yielding a DB-API cursor inside one transaction."""

    @abstractmethod
    def schema(self) -> list[str]:
        """DDL statements creating every table and index."""

    @abstractmethod
    def has_schema(self) -> bool:
        """Whether the settings table exists."""

    @abstractmethod
    def is_unique_violation(self, exc: BaseException) -> bool: ...

    @abstractmethod
    def is_foreign_key_violation(self, exc: BaseException) -> bool: ...

    def sql(self, text: str) -> str:
        """Rewrite shared SQL for this database (placeholders, types)."""
        return text

    def counter_shard(self) -> int:
        """Which counter row this writer adds to."""
        return 0

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether a failed transaction may simply be run again (lost race, lost link)."""
        return False

    @abstractmethod
    def insert_links(
        self,
        tx: Tx,
        store_id: int,
        rows: Sequence[tuple[int, str, str, int, str]],
        now_ns: int,
        mark: int | None,
    ) -> int:
        """Insert new entries and their S3 links for ``(parent, name, key, size, etag)`` rows.

        Returns how many links were inserted. Fewer than ``rows`` means a name
        was taken or a parent directory vanished: the caller rolls the
        transaction back and redoes the batch after checking each row.
        """

    def lock_moves(self, cursor: Any) -> None:  # noqa: B027 - optional hook
        """Serialize directory moves; a no-op where writers already take turns."""

    @abstractmethod
    def close(self) -> None: ...


class SqlEngine(BulkSqlMixin, Engine):
    """``Engine`` over any SQL database a ``Dialect`` describes."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.url = dialect.url

    # -- plumbing ------------------------------------------------------------
    def _tx(self, *, write: bool = True) -> _TxContext:
        return _TxContext(self.dialect, write=write)

    def _bump(self, tx: Tx, deltas: dict[str, int]) -> None:
        """Add ``deltas`` to the filespace counters: one upsert of one wide row."""
        names = [name for name in COUNTERS if deltas.get(name)]
        if not names:
            return
        unknown = set(deltas) - set(COUNTERS)
        if unknown:
            raise ValueError(f"unknown counters {sorted(unknown)}")
        columns = ", ".join(names)
        marks = ", ".join("?" for _ in names)
        updates = ", ".join(f"{name} = counters.{name} + excluded.{name}" for name in names)
        tx.run(
            f"INSERT INTO counters (shard, {columns}) VALUES (?, {marks}) "
            f"ON CONFLICT (shard) DO UPDATE SET {updates}",
            self.dialect.counter_shard(),
            *(deltas[name] for name in names),
        )

    def _bump_store(self, tx: Tx, store_id: int, files: int, size: int) -> None:
        if files or size:
            tx.run(
                "INSERT INTO store_counters (data_store_id, shard, files, bytes) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (data_store_id, shard) DO UPDATE SET "
                "files = store_counters.files + excluded.files, "
                "bytes = store_counters.bytes + excluded.bytes",
                store_id,
                self.dialect.counter_shard(),
                files,
                size,
            )

    @staticmethod
    def _entry_deltas(type_: str, kind: str, count: int, size: int) -> dict[str, int]:
        """Counter changes for ``count`` entries of one type and kind totalling ``size``."""
        if type_ == "dir":
            return {"dirs": count}
        if type_ == "link":
            return {"symlinks": count}
        deltas = {"files": count, "entries_size": size}
        if kind == "native":
            deltas["data_size"] = size
        else:
            deltas["external_files"] = count
            deltas["external_size"] = size
        return deltas

    @staticmethod
    def _entry(row: Row) -> EntryRecord:
        link = None
        if row[4] != "native":
            link = LinkRecord(
                kind=row[4],
                data_store_id=row[9],
                data_store_name=row[10],
                object_key=row[11],
                url=row[12],
                size=row[13],
                checksum=row[14],
                linked_ns=row[15],
            )
        return EntryRecord(
            id=row[0],
            parent_id=row[1],
            name=row[2],
            type=row[3],
            kind=row[4],
            size=row[5],
            ctime_ns=row[6],
            mtime_ns=row[7],
            target=row[8],
            link=link,
        )

    @staticmethod
    def _store(row: Row) -> StoreRecord:
        return StoreRecord(
            id=row[0],
            uid=row[1],
            name=row[2],
            kind=row[3],
            bucket=row[4],
            region=row[5],
            endpoint=row[6],
            virtual_addressing=bool(row[7]),
            url_expiration_minutes=row[8],
            access_key=row[9],
            sealed_secret=bytes(row[10]),
            key_id=row[11],
            rekey_state=row[12],
            created_ns=row[13],
        )

    # -- life cycle -----------------------------------------------------------
    def exists(self) -> bool:
        if not self.dialect.has_schema():
            return False
        with self._tx(write=False) as tx:
            return tx.one("SELECT value FROM settings WHERE name = 'filespace_id'") is not None

    def initialize(self, settings: dict[str, str], now_ns: int) -> None:
        with self._tx() as tx:
            for statement in self.dialect.schema():
                tx.run(statement)
            if tx.one("SELECT value FROM settings WHERE name = 'filespace_id'") is not None:
                raise NameTaken("a filespace already exists here")
            values = {**settings, "schema_version": str(SCHEMA_VERSION)}
            tx.many(
                "INSERT INTO settings (name, value) VALUES (?, ?)",
                sorted(values.items()),
            )
            tx.run(
                "INSERT INTO entries (id, parent_id, name, type, kind, size, ctime_ns, mtime_ns)"
                " VALUES (?, NULL, '', 'dir', 'native', 0, ?, ?)",
                ROOT_ID,
                now_ns,
                now_ns,
            )

    def migrate(self) -> None:
        # Version 1 is the first schema; later versions add their steps here,
        # each in its own transaction, keyed by the version they produce.
        with self._tx() as tx:
            row = tx.one("SELECT value FROM settings WHERE name = 'schema_version'")
            version = int(row[0]) if row else 0
            if version < SCHEMA_VERSION:
                tx.run(
                    "UPDATE settings SET value = ? WHERE name = 'schema_version'",
                    str(SCHEMA_VERSION),
                )

    def close(self) -> None:
        self.dialect.close()

    def settings(self) -> dict[str, str]:
        with self._tx(write=False) as tx:
            return {name: value for name, value in tx.all("SELECT name, value FROM settings")}

    def set_setting(self, name: str, value: str) -> None:
        with self._tx() as tx:
            tx.run(
                "INSERT INTO settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                name,
                value,
            )

    # -- namespace -------------------------------------------------------------
    def get(self, entry_id: int) -> EntryRecord | None:
        with self._tx(write=False) as tx:
            return self._get(tx, entry_id)

    def _get(self, tx: Tx, entry_id: int) -> EntryRecord | None:
        row = tx.one(f"SELECT {_ENTRY_COLUMNS} FROM {_ENTRY_FROM} WHERE e.id = ?", entry_id)
        return self._entry(row) if row else None

    def lookup(self, parent_id: int, name: str) -> EntryRecord | None:
        with self._tx(write=False) as tx:
            return self._lookup(tx, parent_id, name)

    def _lookup(self, tx: Tx, parent_id: int, name: str) -> EntryRecord | None:
        row = tx.one(
            f"SELECT {_ENTRY_COLUMNS} FROM {_ENTRY_FROM} WHERE e.parent_id = ? AND e.name = ?",
            parent_id,
            name,
        )
        return self._entry(row) if row else None

    def lookup_many(self, parent_id: int, names: Sequence[str]) -> dict[str, EntryRecord]:
        found: dict[str, EntryRecord] = {}
        unique = sorted(set(names))
        with self._tx(write=False) as tx:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                rows = tx.all(
                    f"SELECT {_ENTRY_COLUMNS} FROM {_ENTRY_FROM} "
                    f"WHERE e.parent_id = ? AND e.name IN ({marks})",
                    parent_id,
                    *chunk,
                )
                for row in rows:
                    entry = self._entry(row)
                    found[entry.name] = entry
        return found

    def children(self, dir_id: int) -> list[EntryRecord]:
        with self._tx(write=False) as tx:
            rows = tx.all(
                f"SELECT {_ENTRY_COLUMNS} FROM {_ENTRY_FROM} WHERE e.parent_id = ? ORDER BY e.name",
                dir_id,
            )
        return [self._entry(row) for row in rows]

    def _require_dir(self, tx: Tx, dir_id: int) -> None:
        row = tx.one("SELECT type FROM entries WHERE id = ?", dir_id)
        if row is None or row[0] != "dir":
            raise NoSuchEntry(f"directory {dir_id} does not exist")

    def create(
        self,
        parent_id: int,
        name: str,
        type: EntryType,
        now_ns: int,
        *,
        target: str | None = None,
        link: NewLink | None = None,
    ) -> EntryRecord:
        with self._tx() as tx:
            self._require_dir(tx, parent_id)
            entry_id = self._create(tx, parent_id, name, type, now_ns, target, link)
            created = self._get(tx, entry_id)
        assert created is not None
        return created

    def create_at(
        self,
        parent_names: Sequence[str],
        name: str,
        type: EntryType,
        now_ns: int,
        *,
        target: str | None = None,
        link: NewLink | None = None,
        store_name: str | None = None,
    ) -> int:
        with self._tx() as tx:
            parent_id = ROOT_ID
            for part in parent_names:
                row = tx.one(
                    "SELECT id, type FROM entries WHERE parent_id = ? AND name = ?",
                    parent_id,
                    part,
                )
                if row is None or row[1] != "dir":
                    raise NoSuchEntry(part)
                parent_id = int(row[0])
            store_id = None
            if store_name is not None:
                row = tx.one("SELECT id FROM data_stores WHERE name = ?", store_name)
                if row is None:
                    raise NoSuchStore(store_name)
                store_id = int(row[0])
            return self._create(tx, parent_id, name, type, now_ns, target, link, store_id)

    def _create(
        self,
        tx: Tx,
        parent_id: int,
        name: str,
        type_: EntryType,
        now_ns: int,
        target: str | None,
        link: NewLink | None,
        store_id: int | None = None,
    ) -> int:
        """Insert one entry (and its link) and count it; constraints catch the races.

        ``store_id``, when given, overrides the link's data store.
        """
        kind = link.kind if link is not None else "native"
        size = link.size if link is not None else 0
        try:
            row = tx.one(
                "INSERT INTO entries (parent_id, name, type, kind, size, ctime_ns, mtime_ns,"
                " target) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                parent_id,
                name,
                type_,
                kind,
                size,
                now_ns,
                now_ns,
                target,
            )
        except Exception as exc:
            if self.dialect.is_unique_violation(exc):
                raise NameTaken(name) from None
            if self.dialect.is_foreign_key_violation(exc):  # parent removed meanwhile
                raise NoSuchEntry(str(parent_id)) from None
            raise
        assert row is not None
        entry_id = int(row[0])
        if link is not None:
            self._insert_link(tx, entry_id, link, now_ns, store_id)
        self._bump(tx, self._entry_deltas(type_, kind, 1, size))
        self._touch(tx, parent_id, now_ns)
        return entry_id

    def _insert_link(
        self, tx: Tx, entry_id: int, link: NewLink, now_ns: int, store_id: int | None = None
    ) -> None:
        if store_id is None:
            store_id = link.data_store_id
        try:
            tx.run(
                "INSERT INTO external_links (entry_id, data_store_id, object_key, url, size,"
                " checksum, linked_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                entry_id,
                store_id,
                link.object_key,
                link.url,
                link.size,
                link.checksum,
                now_ns,
            )
        except Exception as exc:
            if self.dialect.is_foreign_key_violation(exc):
                raise NoSuchStore(str(store_id)) from None
            raise
        if store_id is not None:
            self._bump_store(tx, store_id, 1, link.size)

    def _touch(self, tx: Tx, dir_id: int, now_ns: int) -> None:
        tx.run("UPDATE entries SET mtime_ns = ? WHERE id = ?", now_ns, dir_id)

    def remove(self, entry_id: int) -> Removed:
        with self._tx() as tx:
            tx.hold_entries("id = ?", entry_id)
            entry = self._get(tx, entry_id)
            if entry is None or entry.parent_id is None:
                raise NoSuchEntry(str(entry_id))
            if entry.type == "dir" and tx.one(
                "SELECT 1 FROM entries WHERE parent_id = ? LIMIT 1", entry_id
            ):
                raise NotEmpty(entry.name)
            return self._remove_ids(tx, entry_id, subtree=False)

    def remove_tree(self, dir_id: int) -> Removed:
        with self._tx() as tx:
            tx.hold_entries("id IN (SELECT id FROM sub)", dir_id, scope=_SUBTREE)
            entry = self._get(tx, dir_id)
            if entry is None or entry.parent_id is None:
                raise NoSuchEntry(str(dir_id))
            return self._remove_ids(tx, dir_id, subtree=True)

    def _remove_ids(self, tx: Tx, entry_id: int, *, subtree: bool) -> Removed:
        """Delete one entry or a whole subtree, fixing every counter on the way."""
        scope = _SUBTREE if subtree else "WITH sub(id) AS (SELECT CAST(? AS BIGINT)) "
        parent = tx.one("SELECT parent_id FROM entries WHERE id = ?", entry_id)
        totals = tx.all(
            scope + "SELECT e.type, e.kind, COUNT(*), COALESCE(SUM(e.size), 0) "
            "FROM entries e JOIN sub ON e.id = sub.id GROUP BY e.type, e.kind",
            entry_id,
        )
        deltas: dict[str, int] = {}
        removed = 0
        for type_, kind, count, size in totals:
            removed += int(count)
            for name, delta in self._entry_deltas(type_, kind, -int(count), -int(size)).items():
                deltas[name] = deltas.get(name, 0) + delta
        per_store = tx.all(
            scope + "SELECT l.data_store_id, COUNT(*), COALESCE(SUM(l.size), 0) "
            "FROM external_links l JOIN sub ON l.entry_id = sub.id "
            "WHERE l.data_store_id IS NOT NULL GROUP BY l.data_store_id",
            entry_id,
        )
        blocks = tx.all(
            scope + "SELECT b.block_key, b.length FROM blocks b JOIN sub ON b.entry_id = sub.id",
            entry_id,
        )
        deltas["storage_size"] = -sum(int(length) for _, length in blocks)
        tx.run(scope + "DELETE FROM blocks WHERE entry_id IN (SELECT id FROM sub)", entry_id)
        tx.run(
            scope + "DELETE FROM external_links WHERE entry_id IN (SELECT id FROM sub)", entry_id
        )
        tx.run(scope + "DELETE FROM entries WHERE id IN (SELECT id FROM sub)", entry_id)
        for store_id, count, size in per_store:
            self._bump_store(tx, int(store_id), -int(count), -int(size))
        self._bump(tx, deltas)
        if parent is not None and parent[0] is not None:
            self._touch(tx, int(parent[0]), _now_ns())
        return Removed(entries=removed, block_keys=[str(key) for key, _ in blocks])

    def rename(self, entry_id: int, new_parent_id: int, new_name: str, now_ns: int) -> None:
        with self._tx() as tx:
            entry = tx.one("SELECT parent_id, type FROM entries WHERE id = ?", entry_id)
            if entry is None or entry[0] is None:
                raise NoSuchEntry(str(entry_id))
            self._require_dir(tx, new_parent_id)
            if entry[1] == "dir":
                tx.lock_moves()
                ancestor: int | None = new_parent_id
                while ancestor is not None:
                    if ancestor == entry_id:
                        raise WouldCycle(str(entry_id))
                    up = tx.one("SELECT parent_id FROM entries WHERE id = ?", ancestor)
                    ancestor = up[0] if up else None
            if tx.one(
                "SELECT 1 FROM entries WHERE parent_id = ? AND name = ?", new_parent_id, new_name
            ):
                raise NameTaken(new_name)
            try:
                tx.run(
                    "UPDATE entries SET parent_id = ?, name = ?, ctime_ns = ? WHERE id = ?",
                    new_parent_id,
                    new_name,
                    now_ns,
                    entry_id,
                )
            except Exception as exc:
                if self.dialect.is_unique_violation(exc):
                    raise NameTaken(new_name) from None
                raise
            self._touch(tx, int(entry[0]), now_ns)
            if new_parent_id != entry[0]:
                self._touch(tx, new_parent_id, now_ns)

    def path_of(self, entry_id: int) -> str:
        return self.paths_of([entry_id])[0]

    def paths_of(self, entry_ids: Sequence[int]) -> list[str]:
        known: dict[int, tuple[int | None, str]] = {ROOT_ID: (None, "")}
        wanted = {entry_id for entry_id in entry_ids if entry_id not in known}
        with self._tx(write=False) as tx:
            while wanted:
                batch = sorted(wanted)[:500]
                marks = ", ".join("?" for _ in batch)
                rows = tx.all(
                    f"SELECT id, parent_id, name FROM entries WHERE id IN ({marks})", *batch
                )
                found = {int(row[0]) for row in rows}
                missing = set(batch) - found
                if missing:
                    raise NoSuchEntry(str(min(missing)))
                for entry_id, parent_id, name in rows:
                    known[int(entry_id)] = (parent_id, name)
                wanted -= set(batch)
                wanted |= {
                    int(parent)
                    for parent, _ in (known[int(row[0])] for row in rows)
                    if parent is not None and parent not in known
                }
        return [self._compose(known, entry_id) for entry_id in entry_ids]

    @staticmethod
    def _compose(known: dict[int, tuple[int | None, str]], entry_id: int) -> str:
        names: list[str] = []
        current: int | None = entry_id
        while current is not None and current != ROOT_ID:
            parent, name = known[current]
            names.append(name)
            current = parent
        return "/" + "/".join(reversed(names))

    # -- native file data -------------------------------------------------------
    def blocks(self, entry_id: int) -> list[BlockRecord]:
        with self._tx(write=False) as tx:
            rows = tx.all(
                "SELECT idx, block_key, length FROM blocks WHERE entry_id = ? ORDER BY idx",
                entry_id,
            )
        return [BlockRecord(index=int(i), key=str(k), length=int(n)) for i, k, n in rows]

    def commit_data(
        self,
        entry_id: int,
        size: int,
        keep_below: int,
        blocks: Sequence[BlockRecord],
        now_ns: int,
    ) -> list[str]:
        with self._tx() as tx:
            tx.hold_entries("id = ?", entry_id)
            row = tx.one("SELECT size, kind FROM entries WHERE id = ?", entry_id)
            if row is None or row[1] != "native":
                raise NoSuchEntry(str(entry_id))
            old_size = int(row[0])
            indexes = [block.index for block in blocks]
            replaced = tx.all(
                "SELECT block_key, length FROM blocks WHERE entry_id = ? AND (idx >= ? OR idx IN "
                f"({', '.join('?' for _ in indexes) or 'NULL'}))",
                entry_id,
                keep_below,
                *indexes,
            )
            tx.run(
                "DELETE FROM blocks WHERE entry_id = ? AND (idx >= ? OR idx IN "
                f"({', '.join('?' for _ in indexes) or 'NULL'}))",
                entry_id,
                keep_below,
                *indexes,
            )
            tx.many(
                "INSERT INTO blocks (entry_id, idx, block_key, length) VALUES (?, ?, ?, ?)",
                [(entry_id, block.index, block.key, block.length) for block in blocks],
            )
            tx.run("UPDATE entries SET size = ?, mtime_ns = ? WHERE id = ?", size, now_ns, entry_id)
            stored = sum(block.length for block in blocks) - sum(int(n) for _, n in replaced)
            self._bump(
                tx,
                {
                    "entries_size": size - old_size,
                    "data_size": size - old_size,
                    "storage_size": stored,
                },
            )
        return [str(key) for key, _ in replaced]

    def block_keys(self) -> set[str]:
        with self._tx(write=False) as tx:
            return {str(row[0]) for row in tx.all("SELECT block_key FROM blocks")}

    # -- data stores --------------------------------------------------------------
    def add_store(self, store: StoreRecord, limit: int) -> StoreRecord:
        with self._tx() as tx:
            if tx.one("SELECT 1 FROM data_stores WHERE name = ?", store.name):
                raise StoreTaken(store.name)
            count = tx.one("SELECT COUNT(*) FROM data_stores")
            if count is not None and int(count[0]) >= limit:
                raise StoreLimit(limit)
            try:
                row = tx.one(
                    "INSERT INTO data_stores (uid, name, kind, bucket, region, endpoint,"
                    " virtual_addressing, url_expiration_minutes, access_key, sealed_secret,"
                    " key_id, rekey_state, created_ns)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    store.uid,
                    store.name,
                    store.kind,
                    store.bucket,
                    store.region,
                    store.endpoint,
                    int(store.virtual_addressing),
                    store.url_expiration_minutes,
                    store.access_key,
                    store.sealed_secret,
                    store.key_id,
                    store.rekey_state,
                    store.created_ns,
                )
            except Exception as exc:
                if self.dialect.is_unique_violation(exc):
                    raise StoreTaken(store.name) from None
                raise
            assert row is not None
            added = self._store_where(tx, "id = ?", int(row[0]))
        assert added is not None
        return added

    def _store_where(self, tx: Tx, condition: str, value: object) -> StoreRecord | None:
        row = tx.one(f"SELECT {_STORE_COLUMNS} FROM data_stores WHERE {condition}", value)
        return self._store(row) if row else None

    def store(self, name: str) -> StoreRecord | None:
        with self._tx(write=False) as tx:
            return self._store_where(tx, "name = ?", name)

    def store_by_id(self, store_id: int) -> StoreRecord | None:
        with self._tx(write=False) as tx:
            return self._store_where(tx, "id = ?", store_id)

    def stores(self) -> list[StoreRecord]:
        with self._tx(write=False) as tx:
            rows = tx.all(f"SELECT {_STORE_COLUMNS} FROM data_stores ORDER BY name")
        return [self._store(row) for row in rows]

    def update_store(self, name: str, **changes: object) -> StoreRecord:
        unknown = set(changes) - _STORE_UPDATABLE
        if unknown:
            raise ValueError(f"cannot change data-store columns {sorted(unknown)}")
        columns = sorted(changes)
        values = [changes[column] for column in columns]
        with self._tx() as tx:
            if columns:
                assignments = ", ".join(f"{column} = ?" for column in columns)
                changed = tx.run(
                    f"UPDATE data_stores SET {assignments} WHERE name = ?", *values, name
                )
                if not changed:
                    raise NoSuchStore(name)
            updated = self._store_where(tx, "name = ?", name)
        if updated is None:
            raise NoSuchStore(name)
        return updated

    def remove_store(self, name: str) -> None:
        with self._tx() as tx:
            row = tx.one("SELECT id FROM data_stores WHERE name = ?", name)
            if row is None:
                raise NoSuchStore(name)
            store_id = int(row[0])
            # Count the rows, not the counters: the refusal must be exact even
            # if a counter were ever off, and this is a rare administrative call.
            linked = tx.one("SELECT COUNT(*) FROM external_links WHERE data_store_id = ?", store_id)
            if linked is not None and int(linked[0]):
                raise StoreBusy(int(linked[0]))
            tx.run("DELETE FROM store_counters WHERE data_store_id = ?", store_id)
            try:
                tx.run("DELETE FROM data_stores WHERE id = ?", store_id)
            except Exception as exc:
                if self.dialect.is_foreign_key_violation(exc):
                    raise StoreBusy(1) from None
                raise

    # -- external links -------------------------------------------------------------
    def update_link(
        self, entry_id: int, *, size: int, checksum: str, url: str | None, now_ns: int
    ) -> None:
        with self._tx() as tx:
            tx.hold_entries("id = ?", entry_id)
            row = tx.one(
                "SELECT size, data_store_id FROM external_links WHERE entry_id = ?",
                entry_id,
            )
            if row is None:
                raise NoSuchEntry(str(entry_id))
            old_size, store_id = int(row[0]), row[1]
            tx.run(
                "UPDATE external_links SET size = ?, checksum = ?, url = COALESCE(?, url),"
                " linked_ns = ? WHERE entry_id = ?",
                size,
                checksum,
                url,
                now_ns,
                entry_id,
            )
            tx.run("UPDATE entries SET size = ?, mtime_ns = ? WHERE id = ?", size, now_ns, entry_id)
            self._bump(
                tx,
                {"entries_size": size - old_size, "external_size": size - old_size},
            )
            if store_id is not None:
                self._bump_store(tx, int(store_id), 0, size - old_size)

    def links_page(self, store_id: int, after_entry_id: int, limit: int) -> LinkPage:
        with self._tx(write=False) as tx:
            rows = tx.all(
                "SELECT entry_id FROM external_links WHERE data_store_id = ? AND entry_id > ? "
                "ORDER BY entry_id LIMIT ?",
                store_id,
                after_entry_id,
                limit + 1,
            )
        ids = [int(row[0]) for row in rows]
        return LinkPage(entry_ids=ids[:limit], has_more=len(ids) > limit)

    def count_links(self, store_id: int) -> tuple[int, int]:
        with self._tx(write=False) as tx:
            row = tx.one(
                "SELECT COALESCE(SUM(files), 0), COALESCE(SUM(bytes), 0) FROM store_counters "
                "WHERE data_store_id = ?",
                store_id,
            )
        assert row is not None
        return int(row[0]), int(row[1])

    # -- statistics ---------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        sums = ", ".join(f"COALESCE(SUM({name}), 0)" for name in COUNTERS)
        with self._tx(write=False) as tx:
            row = tx.one(f"SELECT {sums} FROM counters")
        assert row is not None
        return {name: int(value) for name, value in zip(COUNTERS, row, strict=True)}


_RETRY_BUDGET_S = 90.0
_RETRY_FIRST_DELAY_S = 0.05
_RETRY_MAX_DELAY_S = 2.0


def _retrying(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run an engine operation again when its transaction failed for a passing reason.

    Every operation is one transaction that rolls back whole on failure, so
    running it again is safe. Passing reasons are lost serialization races,
    deadlocks and dropped connections (a server restart); the budget is long
    enough to ride out a restart, then the error is raised as ``EngineError``.
    """

    @functools.wraps(method)
    def wrapper(self: SqlEngine, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + _RETRY_BUDGET_S
        delay = _RETRY_FIRST_DELAY_S
        while True:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                if not self.dialect.is_retryable(exc):
                    raise
                if time.monotonic() + delay > deadline:
                    raise EngineError(
                        f"the metadata engine kept failing: {type(exc).__name__}: {exc}"
                    ) from exc
                time.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, _RETRY_MAX_DELAY_S)

    return wrapper


def _install_retries(engine_class: type[SqlEngine]) -> None:
    """Wrap every operation of the engine contract in ``_retrying``."""
    for name in sorted(getattr(Engine, "__abstractmethods__", ())):
        if name in ("close",):
            continue
        method = getattr(engine_class, name, None)
        if callable(method) and not getattr(method, "_retrying", False):
            wrapped = _retrying(method)
            wrapped._retrying = True  # type: ignore[attr-defined]
            setattr(engine_class, name, wrapped)


class _TxContext:
    """Opens a dialect transaction and hands out a ``Tx``."""

    def __init__(self, dialect: Dialect, *, write: bool) -> None:
        self._inner = dialect.transaction(write=write)
        self._dialect = dialect

    def __enter__(self) -> Tx:
        return Tx(self._inner.__enter__(), self._dialect)

    def __exit__(self, *exc: Any) -> bool | None:
        return self._inner.__exit__(*exc)


def _now_ns() -> int:
    return time.time_ns()


_install_retries(SqlEngine)
