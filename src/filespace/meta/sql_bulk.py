"""Set-based engine operations: linking many objects at once, and mirroring a listing.

``SqlEngine`` inherits these from ``BulkSqlMixin``; the SQL is shared by every
dialect (``?`` placeholders, ``ON CONFLICT ... DO NOTHING``, ``RETURNING``).
Each batch is one transaction: it lands whole, with its counters bumped once,
or not at all.

*Conflicts are found optimistically.* Each dialect inserts a batch its
fastest way (SQLite: ids handed out under its write lock, ``ON CONFLICT DO
NOTHING``; PostgreSQL: ids drawn from the sequence, then ``COPY``) and says
how many links it inserted. When a name was taken (or a concurrent writer
took one, or removed a parent), the transaction is rolled back and the batch
redone with one existence query per directory.

*Mirror runs mark what they confirm.* Every link a run adds, re-points or finds
unchanged gets the run's mark (its start time) in ``external_links.mirror_mark``,
never lowering a newer one. ``sweep_links`` then walks the destination subtree
one directory at a time (memory: the depth of the tree, not its size) and
removes the store's links with an older mark, in transactions of bounded size,
so a concurrent run that started later keeps what it confirmed. A run killed
half-way leaves only older marks, so re-running converges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from filespace.meta.engine import MetaError, NameTaken, NoSuchEntry, NoSuchStore

if TYPE_CHECKING:
    from filespace.meta.sql import Dialect, Tx, _TxContext

_T = TypeVar("_T")

_CHUNK = 512
"""Values per ``IN (...)`` list: far below every database's parameter limit."""

_ATTEMPTS = 5
"""Tries of a batch that concurrent writers keep getting in the way of."""

_STALE = "(l.mirror_mark IS NULL OR l.mirror_mark < ?)"

LinkRow = tuple[int, str, str, int, str]
"""A new link: ``(parent_id, name, object_key, size, checksum)``."""

MirrorRow = tuple[str, str, str, int, str]
"""An object to mirror: ``(directory relative to the base, name, key, size, etag)``."""


class _Retry(Exception):
    """A concurrent writer took a name the batch meant to use: run it again."""


def _chunks(values: Sequence[_T]) -> Iterable[list[_T]]:
    """``values`` in pieces of at most ``_CHUNK``, each padded by ``_padded``."""
    for start in range(0, len(values), _CHUNK):
        yield _padded(values[start : start + _CHUNK])


def _padded(values: Sequence[_T]) -> list[_T]:
    """``values`` repeated up to a power of two: few statement shapes, so caches hit."""
    size = 1
    while size < len(values):
        size *= 2
    return [*values, *[values[-1]] * (size - len(values))]


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


class _Tally:
    """Counter changes and touched directories of one transaction, written once."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = defaultdict(int)
        self.stores: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        self.touched: set[int] = set()

    def links(self, store_id: int | None, files: int, size: int) -> None:
        self.counters["files"] += files
        self.counters["external_files"] += files
        self.counters["entries_size"] += size
        self.counters["external_size"] += size
        if store_id is not None:
            self.stores[store_id][0] += files
            self.stores[store_id][1] += size

    def write(self, engine: BulkSqlMixin, tx: Tx, now_ns: int) -> None:
        engine._bump(tx, dict(self.counters))
        for store_id, (files, size) in sorted(self.stores.items()):
            engine._bump_store(tx, store_id, files, size)
        for chunk in _chunks(sorted(self.touched)):  # padded: few statement shapes
            tx.run(f"UPDATE entries SET mtime_ns = ? WHERE id IN ({_marks(chunk)})", now_ns, *chunk)


class BulkSqlMixin:
    """Bulk linking and mirroring for ``SqlEngine`` (see the module docstring)."""

    if TYPE_CHECKING:
        dialect: Dialect

        def _tx(self, *, write: bool = True) -> _TxContext: ...
        def _bump(self, tx: Tx, deltas: dict[str, int]) -> None: ...
        def _bump_store(self, tx: Tx, store_id: int, files: int, size: int) -> None: ...

    # -- plumbing ----------------------------------------------------------------
    def _retrying(self, work: Callable[[Tx, int], _T], *, write: bool = True) -> _T:
        for attempt in range(_ATTEMPTS):
            try:
                with self._tx(write=write) as tx:
                    return work(tx, attempt)
            except _Retry:
                continue
        raise MetaError("a batch kept colliding with concurrent writers; try again")

    @staticmethod
    def _require_store(tx: Tx, store_id: int) -> None:
        if tx.one("SELECT 1 FROM data_stores WHERE id = ?", store_id) is None:
            raise NoSuchStore(str(store_id))

    @staticmethod
    def _live_dirs(tx: Tx, ids: Iterable[int]) -> set[int]:
        wanted = sorted(set(ids))
        live: set[int] = set()
        for chunk in _chunks(wanted):
            rows = tx.all(
                f"SELECT id FROM entries WHERE type = 'dir' AND id IN ({_marks(chunk)})", *chunk
            )
            live.update(int(row[0]) for row in rows)
        return live

    def _insert_links(
        self,
        tx: Tx,
        tally: _Tally,
        store_id: int,
        rows: Sequence[LinkRow],
        now_ns: int,
        mark: int | None,
    ) -> None:
        """Add entries and link rows; ``_Retry`` if any name turned out to be taken."""
        if not rows:
            return
        rows = sorted(rows)  # by directory and name: B-tree inserts and lookups stay local
        try:
            linked = self.dialect.insert_links(tx, store_id, rows, now_ns, mark)
        except Exception as exc:
            if self.dialect.is_foreign_key_violation(exc):
                raise NoSuchStore(str(store_id)) from None
            raise
        if linked != len(rows):
            raise _Retry
        tally.links(store_id, len(rows), sum(row[3] for row in rows))
        tally.touched.update(row[0] for row in rows)

    def _drop(self, tx: Tx, tally: _Tally, rows: Sequence[tuple[int, int, int, int]]) -> None:
        """Remove links given as ``(entry_id, parent_id, data_store_id, size)``."""
        ids = [(row[0],) for row in rows]
        tx.many("DELETE FROM external_links WHERE entry_id = ?", ids)
        tx.many("DELETE FROM entries WHERE id = ?", ids)
        for _, parent, store_id, size in rows:
            tally.links(store_id, -1, -size)
            tally.touched.add(parent)

    # -- directories ---------------------------------------------------------------
    def make_dirs(
        self, chains: Sequence[tuple[int, Sequence[str]]], now_ns: int
    ) -> list[list[int] | None]:
        return self._retrying(lambda tx, _: self._make_dirs(tx, chains, now_ns))

    def _make_dirs(
        self, tx: Tx, chains: Sequence[tuple[int, Sequence[str]]], now_ns: int
    ) -> list[list[int] | None]:
        live = self._live_dirs(tx, (start for start, _ in chains))
        known: dict[tuple[int, str], int | None] = {}
        tally = _Tally()
        made: list[list[int] | None] = []
        for start, names in chains:
            current: int | None = start if start in live else None
            ids: list[int] = []
            for name in names:
                if current is None:
                    break
                step = (current, name)
                if step not in known:
                    known[step] = self._child_dir(tx, tally, current, name, now_ns)
                current = known[step]
                if current is not None:
                    ids.append(current)
            made.append(ids if current is not None else None)
        tally.write(self, tx, now_ns)
        return made

    def _child_dir(self, tx: Tx, tally: _Tally, parent: int, name: str, now_ns: int) -> int | None:
        """The directory ``name`` in ``parent``, made if missing; ``None`` if a file is there."""
        row = tx.one("SELECT id, type FROM entries WHERE parent_id = ? AND name = ?", parent, name)
        if row is not None:
            return int(row[0]) if row[1] == "dir" else None
        return self._new_dir(tx, tally, parent, name, now_ns)

    @staticmethod
    def _new_dir(tx: Tx, tally: _Tally, parent: int, name: str, now_ns: int) -> int:
        row = tx.one(
            "INSERT INTO entries (parent_id, name, type, kind, size, ctime_ns, mtime_ns) "
            "VALUES (?, ?, 'dir', 'native', 0, ?, ?) ON CONFLICT (parent_id, name) DO NOTHING "
            "RETURNING id",
            parent,
            name,
            now_ns,
            now_ns,
        )
        if row is None:
            raise _Retry
        tally.counters["dirs"] += 1
        tally.touched.add(parent)
        return int(row[0])

    # -- bulk links ------------------------------------------------------------------
    def create_links(
        self, store_id: int, rows: Sequence[LinkRow], now_ns: int
    ) -> list[tuple[int, type[MetaError]]]:
        return self._retrying(
            lambda tx, attempt: self._create_links(tx, store_id, rows, now_ns, careful=attempt > 0)
        )

    def _create_links(
        self, tx: Tx, store_id: int, rows: Sequence[LinkRow], now_ns: int, *, careful: bool
    ) -> list[tuple[int, type[MetaError]]]:
        self._require_store(tx, store_id)
        live = self._live_dirs(tx, (row[0] for row in rows))
        failures: list[tuple[int, type[MetaError]]] = []
        if careful:
            taken = self._taken_names(tx, rows, live)
            seen: set[tuple[int, str]] = set()
            good: list[LinkRow] = []
            for index, row in enumerate(rows):
                place = (row[0], row[1])
                if row[0] not in live:
                    failures.append((index, NoSuchEntry))
                elif place in taken or place in seen:
                    failures.append((index, NameTaken))
                else:
                    seen.add(place)
                    good.append(row)
        elif len(live) == len({row[0] for row in rows}):
            good = list(rows)
        else:
            good = []
            for index, row in enumerate(rows):
                if row[0] in live:
                    good.append(row)
                else:
                    failures.append((index, NoSuchEntry))
        tally = _Tally()
        self._insert_links(tx, tally, store_id, good, now_ns, None)
        tally.write(self, tx, now_ns)
        return failures

    @staticmethod
    def _taken_names(tx: Tx, rows: Sequence[LinkRow], live: set[int]) -> set[tuple[int, str]]:
        """The ``(parent_id, name)`` pairs of ``rows`` already present, one query per directory."""
        names: dict[int, list[str]] = defaultdict(list)
        for row in rows:
            if row[0] in live:
                names[row[0]].append(row[1])
        taken: set[tuple[int, str]] = set()
        for parent, wanted in names.items():
            for chunk in _chunks(sorted(set(wanted))):
                found = tx.all(
                    f"SELECT name FROM entries WHERE parent_id = ? AND name IN ({_marks(chunk)})",
                    parent,
                    *chunk,
                )
                taken.update((parent, str(row[0])) for row in found)
        return taken

    # -- mirroring -----------------------------------------------------------------------
    def mirror_batch(
        self,
        store_id: int,
        base_id: int,
        rows: Sequence[MirrorRow],
        mark: int,
        now_ns: int,
        *,
        delete: bool,
        dry_run: bool,
    ) -> tuple[dict[str, int], list[tuple[int, str]]]:
        def work(tx: Tx, _: int) -> tuple[dict[str, int], list[tuple[int, str]]]:
            batch = _MirrorPass(self, tx, store_id, mark, now_ns, delete=delete, dry_run=dry_run)
            return batch.run(base_id, rows)

        return self._retrying(work, write=not dry_run)

    def sweep_links(
        self,
        store_id: int,
        base_id: int,
        keep_mark: int,
        *,
        dry_run: bool = False,
        batch: int = 5000,
    ) -> int:
        removed = 0
        doomed: list[int] = []
        # Depth-first over the subtree: one frame per directory on the current path,
        # holding the name of the last subdirectory visited (None: links not swept yet).
        stack: list[tuple[int, str | None]] = [(base_id, None)]
        while stack:
            dir_id, after = stack[-1]
            if after is None:
                if dry_run:
                    removed += self._count_stale(dir_id, store_id, keep_mark)
                else:
                    for found in self._stale_in(dir_id, store_id, keep_mark, batch):
                        doomed.extend(found)
                        if len(doomed) >= batch:
                            removed += self._drop_stale(store_id, keep_mark, doomed)
                            doomed = []
                after = ""
            with self._tx(write=False) as tx:
                row = tx.one(
                    "SELECT id, name FROM entries WHERE parent_id = ? AND type = 'dir' "
                    "AND name > ? ORDER BY name LIMIT 1",
                    dir_id,
                    after,
                )
            if row is None:
                stack.pop()
                continue
            stack[-1] = (dir_id, str(row[1]))
            stack.append((int(row[0]), None))
        if doomed:
            removed += self._drop_stale(store_id, keep_mark, doomed)
        return removed

    def _count_stale(self, dir_id: int, store_id: int, keep_mark: int) -> int:
        with self._tx(write=False) as tx:
            row = tx.one(
                "SELECT COUNT(*) FROM entries e JOIN external_links l ON l.entry_id = e.id "
                f"WHERE e.parent_id = ? AND l.data_store_id = ? AND {_STALE}",
                dir_id,
                store_id,
                keep_mark,
            )
        return int(row[0]) if row else 0

    def _stale_in(
        self, dir_id: int, store_id: int, keep_mark: int, batch: int
    ) -> Iterable[list[int]]:
        """Pages of the store's unconfirmed links directly in ``dir_id``, by name."""
        after = ""
        while True:
            with self._tx(write=False) as tx:
                rows = tx.all(
                    "SELECT e.id, e.name FROM entries e JOIN external_links l ON l.entry_id = e.id"
                    f" WHERE e.parent_id = ? AND e.name > ? AND l.data_store_id = ? AND {_STALE} "
                    "ORDER BY e.name LIMIT ?",
                    dir_id,
                    after,
                    store_id,
                    keep_mark,
                    batch,
                )
            if rows:
                yield [int(row[0]) for row in rows]
            if len(rows) < batch:
                return
            after = str(rows[-1][1])

    def _drop_stale(self, store_id: int, keep_mark: int, ids: Sequence[int]) -> int:
        """Remove those of ``ids`` still unconfirmed links of the store, in one transaction."""
        now_ns = _now_ns()
        with self._tx() as tx:
            doomed: list[tuple[int, int, int, int]] = []
            for chunk in _chunks(sorted(ids)):
                # Another sweep may be removing the same links: hold them first,
                # then read which are still here and still unconfirmed.
                tx.hold_entries(f"id IN ({_marks(chunk)})", *chunk)
                rows = tx.all(
                    "SELECT l.entry_id, e.parent_id, l.size FROM external_links l "
                    f"JOIN entries e ON e.id = l.entry_id WHERE l.data_store_id = ? AND {_STALE} "
                    f"AND l.entry_id IN ({_marks(chunk)})",
                    store_id,
                    keep_mark,
                    *chunk,
                )
                doomed.extend((int(i), int(p), store_id, int(s)) for i, p, s in rows)
            tally = _Tally()
            self._drop(tx, tally, doomed)
            tally.write(self, tx, now_ns)
        return len(doomed)


class _MirrorPass:
    """One mirror batch inside one transaction (read-only with ``dry_run``)."""

    def __init__(
        self,
        engine: BulkSqlMixin,
        tx: Tx,
        store_id: int,
        mark: int,
        now_ns: int,
        *,
        delete: bool,
        dry_run: bool,
    ) -> None:
        self.engine = engine
        self.tx = tx
        self.store_id = store_id
        self.mark = mark
        self.now_ns = now_ns
        self.delete = delete
        self.dry_run = dry_run
        self.tally = _Tally()
        self.counts = {"added": 0, "updated": 0, "unchanged": 0, "removed": 0, "kept": 0}
        self.skips: list[tuple[int, str]] = []
        self.dirs: dict[str, int | str] = {}  # relative path -> dir id, or why it is not one
        self.empty: set[int] = set()  # directories made in this pass (ids < 0: dry run)

    def run(
        self, base_id: int, rows: Sequence[MirrorRow]
    ) -> tuple[dict[str, int], list[tuple[int, str]]]:
        base = self.tx.one("SELECT type FROM entries WHERE id = ?", base_id)
        if base is None or base[0] != "dir":
            raise NoSuchEntry(f"directory {base_id} does not exist")
        self.engine._require_store(self.tx, self.store_id)
        self.dirs[""] = base_id
        by_parent: dict[int, list[int]] = defaultdict(list)
        for index, row in enumerate(rows):
            where = self._resolve(row[0])
            if isinstance(where, str):
                self.skips.append((index, where))
            else:
                by_parent[where].append(index)
        new: list[LinkRow] = []
        same: list[tuple[int, int, int]] = []
        changed: list[tuple[int, str, int, str, int | None, int]] = []
        for parent, indexes in by_parent.items():
            existing = {} if parent in self.empty else self._children(parent, rows, indexes)
            for index in indexes:
                _, name, key, size, etag = rows[index]
                found = existing.get(name)
                if found is None:
                    new.append((parent, name, key, size, etag))
                    continue
                entry_id, type_, kind, store, old_key, old_size, old_etag = found
                if type_ != "file" or kind == "native":
                    self.skips.append((index, _in_the_way(type_, kind)))
                    continue
                if store == self.store_id:
                    self.counts["kept"] += 1
                if (store, old_key, old_size, old_etag) == (self.store_id, key, size, etag):
                    same.append((self.mark, entry_id, self.mark))
                else:
                    changed.append((entry_id, key, size, etag, store, old_size))
        self.counts["added"] += len(new)
        self.counts["unchanged"] += len(same)
        self.counts["updated"] += len(changed)
        if not self.dry_run:
            self.tx.many(
                "UPDATE external_links SET mirror_mark = ? WHERE entry_id = ?"
                " AND (mirror_mark IS NULL OR mirror_mark < ?)",
                same,
            )
            self._repoint(changed)
            self.engine._insert_links(
                self.tx, self.tally, self.store_id, new, self.now_ns, self.mark
            )
            self.tally.write(self.engine, self.tx, self.now_ns)
        self.skips.sort()
        return self.counts, self.skips

    def _resolve(self, rel: str) -> int | str:
        """The directory at ``rel`` under the base, made if missing, or why it cannot be."""
        found = self.dirs.get(rel)
        if found is not None:
            return found
        names = rel.split("/")
        depth = len(names) - 1
        while depth and "/".join(names[:depth]) not in self.dirs:
            depth -= 1
        where = self.dirs["/".join(names[:depth])]
        for end in range(depth + 1, len(names) + 1):
            if not isinstance(where, str):
                where = self._dir(where, names[end - 1])
            self.dirs["/".join(names[:end])] = where
        return where

    def _dir(self, parent: int, name: str) -> int | str:
        if parent in self.empty:
            return self._make(parent, name)
        self.tx.hold_entries("parent_id = ? AND name = ?", parent, name)
        row = self.tx.one(
            "SELECT e.id, e.type, e.kind, l.data_store_id, l.mirror_mark, l.size FROM entries e "
            "LEFT JOIN external_links l ON l.entry_id = e.id WHERE e.parent_id = ? AND e.name = ?",
            parent,
            name,
        )
        if row is None:
            return self._make(parent, name)
        entry_id, type_, kind, store, mark, size = row
        if type_ == "dir":
            return int(entry_id)
        if type_ == "file" and kind == "s3" and store == self.store_id and self.delete:
            if mark is not None and mark >= self.mark:
                return "both a file and a directory in this run"
            # A link of this store where a directory must go: no object of this
            # run can claim it (a key that is also a directory prefix is skipped
            # before it gets here), so the sweep would remove it anyway.
            if not self.dry_run:
                self.engine._drop(self.tx, self.tally, [(int(entry_id), parent, store, int(size))])
                self.counts["removed"] += 1
            return self._make(parent, name)
        return _in_the_way(type_, kind)

    def _make(self, parent: int, name: str) -> int:
        if self.dry_run:
            made = -1 - len(self.empty)
        else:
            made = self.engine._new_dir(self.tx, self.tally, parent, name, self.now_ns)
        self.empty.add(made)
        return made

    def _children(
        self, parent: int, rows: Sequence[MirrorRow], indexes: Sequence[int]
    ) -> dict[str, tuple[int, str, str, int | None, str | None, int, str]]:
        """The entries of ``parent`` named by the rows: name -> (id, type, kind, link...)."""
        names = [rows[index][1] for index in indexes]
        found: dict[str, tuple[int, str, str, int | None, str | None, int, str]] = {}
        for chunk in _chunks(names):
            # Held, so that a mirror racing on the same names sees what this one wrote.
            self.tx.hold_entries(f"parent_id = ? AND name IN ({_marks(chunk)})", parent, *chunk)
            for name, *rest in self.tx.all(
                "SELECT e.name, e.id, e.type, e.kind, l.data_store_id, l.object_key, l.size,"
                " l.checksum FROM entries e LEFT JOIN external_links l ON l.entry_id = e.id "
                f"WHERE e.parent_id = ? AND e.name IN ({_marks(chunk)})",
                parent,
                *chunk,
            ):
                entry_id, type_, kind, store, key, size, etag = rest
                found[str(name)] = (
                    int(entry_id),
                    str(type_),
                    str(kind),
                    None if store is None else int(store),
                    key,
                    0 if size is None else int(size),
                    "" if etag is None else str(etag),
                )
        return found

    def _repoint(self, changed: Sequence[tuple[int, str, int, str, int | None, int]]) -> None:
        """Point links at this store's object, whatever they pointed at before."""
        self.tx.many(
            "UPDATE external_links SET data_store_id = ?, object_key = ?, url = NULL, size = ?,"
            " checksum = ?, linked_ns = ?, mirror_mark = CASE WHEN mirror_mark IS NULL"
            " OR mirror_mark < ? THEN ? ELSE mirror_mark END WHERE entry_id = ?",
            [
                (self.store_id, key, size, etag, self.now_ns, self.mark, self.mark, entry_id)
                for entry_id, key, size, etag, _, _ in changed
            ],
        )
        self.tx.many(
            "UPDATE entries SET kind = 's3', size = ?, mtime_ns = ? WHERE id = ?",
            [(size, self.now_ns, entry_id) for entry_id, _, size, _, _, _ in changed],
        )
        for _, _, size, _, old_store, old_size in changed:
            self.tally.links(old_store, -1, -old_size)
            self.tally.links(self.store_id, 1, size)


def _in_the_way(type_: str, kind: str) -> str:
    if type_ == "dir":
        return "directory in the way"
    if type_ == "link":
        return "symbolic link in the way"
    if kind == "native":
        return "native file in the way"
    return "external file in the way"


def _now_ns() -> int:
    import time

    return time.time_ns()
