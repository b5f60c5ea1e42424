"""Mirroring a listing of a store into a directory, and sweeping what a run did not confirm.

*Mirror runs mark what they confirm.* Every link a run adds, re-points or finds
unchanged gets the run's mark (its start time) in ``external_links.mirror_mark``,
never lowering a newer one. ``sweep_links`` then walks the destination subtree
one directory at a time (memory: the depth of the tree, not its size) and
removes the store's links with an older mark, in transactions of bounded size,
so a concurrent run that started later keeps what it confirmed. A run killed
half-way leaves only older marks, so re-running converges.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from filespace.meta.bulk import DoomedLink, drop, insert_links, new_dir
from filespace.meta.counters import Tally
from filespace.meta.dialect import Dialect
from filespace.meta.lookup import Pair, at_pairs, by_depth
from filespace.meta.namespace import require_dir
from filespace.meta.records import EntryKind, EntryType, LinkRow, MirrorCounts, MirrorRow
from filespace.meta.stores import require as require_store
from filespace.meta.txn import Tx, chunks, marks, run

_STALE = "(l.mirror_mark IS NULL OR l.mirror_mark < ?)"
EXISTING_COLUMNS = "e.name, e.id, e.type, e.kind, l.data_store_id, l.object_key, l.size, l.checksum"
"""What ``Existing`` is read from (``lookup.at_pairs``)."""
_MARKED = "CASE WHEN mirror_mark IS NULL OR mirror_mark < ? THEN ? ELSE mirror_mark END"
"""A link's new mark: the run's (a ``?`` twice), unless a later run's is already there."""


class Existing(NamedTuple):
    """An entry at a mirrored path, with its link if it has one."""

    name: str
    id: int
    type: EntryType
    kind: EntryKind
    store_id: int | None
    object_key: str | None
    size: int | None
    etag: str | None


class _InTheWay(NamedTuple):
    """The entry where a directory of the mirror must go."""

    id: int
    type: EntryType
    kind: EntryKind
    store_id: int | None
    mark: int | None
    size: int | None


class _Repoint(NamedTuple):
    entry_id: int
    object_key: str
    size: int
    etag: str
    old_store_id: int | None
    old_size: int
    sequencer: str | None


def mirror_batch(
    tx: Tx,
    store_id: int,
    base_id: int,
    rows: Sequence[MirrorRow],
    mark: int,
    now_ns: int,
    *,
    delete: bool,
    dry_run: bool,
) -> MirrorCounts:
    """Make each row a link of the store confirmed with ``mark`` (see ``Engine.mirror_batch``)."""
    return MirrorPass(tx, store_id, mark, now_ns, delete=delete, dry_run=dry_run).run(base_id, rows)


class MirrorPass:
    """One mirror batch inside one transaction (read-only with ``dry_run``).

    ``meta.events`` runs the created objects of an event batch through it too,
    so followed and mirrored trees obey the same rules.
    """

    def __init__(
        self,
        tx: Tx,
        store_id: int,
        mark: int,
        now_ns: int,
        *,
        delete: bool,
        dry_run: bool,
        sequenced: bool = False,
    ) -> None:
        """``sequenced``: every link a row makes, re-points or confirms takes the row's
        ``sequencer`` (``None`` clears it); otherwise only new links start with it."""
        self.tx = tx
        self.sequenced = sequenced
        self.store_id = store_id
        self.mark = mark
        self.now_ns = now_ns
        self.delete = delete
        self.dry_run = dry_run
        self.tally = Tally()
        self.removed = 0
        self.kept = 0
        self.skips: list[tuple[int, str]] = []
        self.dirs: dict[str, int | str] = {}  # relative path -> dir id, or why it is not one
        self.empty: set[int] = set()  # directories made in this pass (ids < 0: dry run)
        self.known: dict[Pair, Existing | None] = {}  # read (and held) by the caller already

    def know(self, dirs: Mapping[str, int], entries: Mapping[Pair, Existing | None]) -> None:
        """What the caller read (and held) in this transaction already, not to be read again:
        directories by relative path, and the entry at each ``(dir id, name)`` (``None``:
        nothing there)."""
        self.dirs.update(dirs)
        self.known.update(entries)

    def run(self, base_id: int, rows: Sequence[MirrorRow]) -> MirrorCounts:
        require_dir(self.tx, base_id)
        require_store(self.tx, self.store_id)
        self.dirs[""] = base_id
        self._resolve_all(row.dir for row in rows)
        by_parent: dict[int, list[int]] = defaultdict(list)
        for index, row in enumerate(rows):
            where = self.dirs[row.dir]
            if isinstance(where, str):
                self.skips.append((index, where))
            else:
                by_parent[where].append(index)
        wanted = [
            (parent, rows[index].name)
            for parent, indexes in by_parent.items()
            if parent not in self.empty
            for index in indexes
        ]
        existing = {pair: self.known[pair] for pair in wanted if pair in self.known}
        # Held, so that a mirror racing on the same names sees what this one wrote.
        existing |= at_pairs(
            self.tx,
            Existing,
            EXISTING_COLUMNS,
            (pair for pair in wanted if pair not in self.known),
            hold=True,
        )
        new: list[LinkRow] = []
        same: list[tuple[int, str | None]] = []
        changed: list[_Repoint] = []
        for parent, indexes in by_parent.items():
            for index in indexes:
                row = rows[index]
                found = existing.get((parent, row.name))
                if found is None:
                    new.append(
                        LinkRow(parent, row.name, row.object_key, row.size, row.etag, row.sequencer)
                    )
                    continue
                if found.type != "file" or found.kind == "native":
                    self.skips.append((index, _in_the_way(found.type, found.kind)))
                    continue
                if found.store_id == self.store_id:
                    self.kept += 1
                old = (found.store_id, found.object_key, found.size or 0, found.etag or "")
                if old == (self.store_id, row.object_key, row.size, row.etag):
                    same.append((found.id, row.sequencer))
                else:
                    changed.append(
                        _Repoint(
                            found.id,
                            row.object_key,
                            row.size,
                            row.etag,
                            found.store_id,
                            found.size or 0,
                            row.sequencer,
                        )
                    )
        if not self.dry_run:
            self._confirm(same)
            self._repoint(changed)
            insert_links(self.tx, self.tally, self.store_id, new, self.now_ns, self.mark)
            self.tally.write(self.tx, self.now_ns)
        return MirrorCounts(
            added=len(new),
            updated=len(changed),
            unchanged=len(same),
            removed=self.removed,
            kept=self.kept,
            skipped=sorted(self.skips),
        )

    def _resolve_all(self, rels: Iterable[str]) -> None:
        """Find or make the directory at each of ``rels`` (or learn why it cannot be one).

        Level by level, one lookup of the level's names each (``lookup.at_pairs``).
        """
        for level in by_depth(rels):
            asked: dict[Pair, str] = {}
            for rel in level:
                if rel in self.dirs:
                    continue
                parent_rel, _, name = rel.rpartition("/")
                parent = self.dirs[parent_rel]
                if isinstance(parent, str):
                    self.dirs[rel] = parent
                elif parent in self.empty:
                    self.dirs[rel] = self._make(parent, name)
                else:
                    asked[(parent, name)] = rel
            there = at_pairs(
                self.tx,
                _InTheWay,
                "e.id, e.type, e.kind, l.data_store_id, l.mirror_mark, l.size",
                asked,
                hold=True,
            )
            for (parent, name), rel in asked.items():
                self.dirs[rel] = self._dir(parent, name, there.get((parent, name)))

    def _dir(self, parent: int, name: str, there: _InTheWay | None) -> int | str:
        """The directory ``name`` in ``parent``, given what is there; or why it cannot be."""
        if there is None:
            return self._make(parent, name)
        if there.type == "dir":
            return there.id
        ours = there.type == "file" and there.kind == "s3" and there.store_id == self.store_id
        if ours and self.delete:
            if there.mark is not None and there.mark >= self.mark:
                return "both a file and a directory in this run"
            # A link of this store where a directory must go: no object of this
            # run can claim it (a key that is also a directory prefix is skipped
            # before it gets here), so the sweep would remove it anyway.
            if not self.dry_run:
                doomed = DoomedLink(there.id, parent, there.store_id, int(there.size or 0))
                drop(self.tx, self.tally, [doomed])
                self.removed += 1
            return self._make(parent, name)
        return _in_the_way(there.type, there.kind)

    def _make(self, parent: int, name: str) -> int:
        if self.dry_run:
            made = -1 - len(self.empty)
        else:
            made = new_dir(self.tx, self.tally, parent, name, self.now_ns)
        self.empty.add(made)
        return made

    def _confirm(self, same: Sequence[tuple[int, str | None]]) -> None:
        """Give unchanged links ``(entry id, sequencer)`` this run's mark (never lowering one)."""
        if self.sequenced:
            self.tx.many(
                f"UPDATE external_links SET mirror_mark = {_MARKED}, sequencer = ?"
                " WHERE entry_id = ?",
                [(self.mark, self.mark, sequencer, entry_id) for entry_id, sequencer in same],
            )
            return
        self.tx.many(
            "UPDATE external_links SET mirror_mark = ? WHERE entry_id = ?"
            " AND (mirror_mark IS NULL OR mirror_mark < ?)",
            [(self.mark, entry_id, self.mark) for entry_id, _ in same],
        )

    def _repoint(self, changed: Sequence[_Repoint]) -> None:
        """Point links at this store's object, whatever they pointed at before."""
        columns = (
            "UPDATE external_links SET data_store_id = ?, object_key = ?, url = NULL, size = ?,"
            f" checksum = ?, linked_ns = ?, mirror_mark = {_MARKED}, "
        )
        common = [
            (self.store_id, c.object_key, c.size, c.etag, self.now_ns, self.mark, self.mark)
            for c in changed
        ]
        if self.sequenced:
            self.tx.many(
                f"{columns}sequencer = ? WHERE entry_id = ?",
                [(*row, c.sequencer, c.entry_id) for row, c in zip(common, changed, strict=True)],
            )
        else:
            self.tx.many(
                # An event sequencer orders one object's events: another object's is void.
                f"{columns}sequencer = CASE WHEN data_store_id = ? AND object_key = ?"
                " THEN sequencer END WHERE entry_id = ?",
                [
                    (*row, self.store_id, c.object_key, c.entry_id)
                    for row, c in zip(common, changed, strict=True)
                ],
            )
        self.tx.many(
            "UPDATE entries SET kind = 's3', size = ?, mtime_ns = ? WHERE id = ?",
            [(c.size, self.now_ns, c.entry_id) for c in changed],
        )
        for c in changed:
            self.tally.links(c.old_store_id, -1, -c.old_size)
            self.tally.links(self.store_id, 1, c.size)


def _in_the_way(type_: str, kind: str) -> str:
    if type_ == "dir":
        return "directory in the way"
    if type_ == "link":
        return "symbolic link in the way"
    if kind == "native":
        return "native file in the way"
    return "external file in the way"


# -- sweeping ---------------------------------------------------------------------------
def sweep_links(
    dialect: Dialect, store_id: int, base_id: int, keep_mark: int, *, dry_run: bool, batch: int
) -> int:
    """Remove the store's links under ``base_id`` not marked ``keep_mark``, in bounded batches."""
    removed = 0
    doomed: list[int] = []
    # Depth-first over the subtree: one frame per directory on the current path,
    # holding the name of the last subdirectory visited (None: links not swept yet).
    stack: list[tuple[int, str | None]] = [(base_id, None)]
    while stack:
        dir_id, after = stack[-1]
        if after is None:
            if dry_run:
                removed += _count_stale(dialect, dir_id, store_id, keep_mark)
            else:
                for found in _stale_in(dialect, dir_id, store_id, keep_mark, batch):
                    doomed.extend(found)
                    if len(doomed) >= batch:
                        removed += _drop_stale(dialect, store_id, keep_mark, doomed)
                        doomed = []
            after = ""
        below = _next_dir(dialect, dir_id, after)
        if below is None:
            stack.pop()
            continue
        stack[-1] = (dir_id, below[1])
        stack.append((below[0], None))
    if doomed:
        removed += _drop_stale(dialect, store_id, keep_mark, doomed)
    return removed


def _next_dir(dialect: Dialect, dir_id: int, after: str) -> tuple[int, str] | None:
    """The first subdirectory of ``dir_id`` named after ``after``: ``(id, name)``."""

    def work(tx: Tx) -> tuple[int, str] | None:
        row = tx.one(
            "SELECT id, name FROM entries WHERE parent_id = ? AND type = 'dir' "
            "AND name > ? ORDER BY name LIMIT 1",
            dir_id,
            after,
        )
        return None if row is None else (int(row[0]), str(row[1]))

    return run(dialect, work, write=False)


def _count_stale(dialect: Dialect, dir_id: int, store_id: int, keep_mark: int) -> int:
    def work(tx: Tx) -> int:
        return int(
            tx.value(
                "SELECT COUNT(*) FROM entries e JOIN external_links l ON l.entry_id = e.id "
                f"WHERE e.parent_id = ? AND l.data_store_id = ? AND {_STALE}",
                dir_id,
                store_id,
                keep_mark,
            )
        )

    return run(dialect, work, write=False)


def _stale_in(
    dialect: Dialect, dir_id: int, store_id: int, keep_mark: int, batch: int
) -> Iterable[list[int]]:
    """Pages of the store's unconfirmed links directly in ``dir_id``, by name."""
    after = ""
    while True:

        def work(tx: Tx, after: str = after) -> list[tuple[int, str]]:
            return [
                (int(entry_id), str(name))
                for entry_id, name in tx.all(
                    "SELECT e.id, e.name FROM entries e JOIN external_links l ON "
                    "l.entry_id = e.id WHERE e.parent_id = ? AND e.name > ? AND "
                    f"l.data_store_id = ? AND {_STALE} ORDER BY e.name LIMIT ?",
                    dir_id,
                    after,
                    store_id,
                    keep_mark,
                    batch,
                )
            ]

        rows = run(dialect, work, write=False)
        if rows:
            yield [entry_id for entry_id, _ in rows]
        if len(rows) < batch:
            return
        after = rows[-1][1]


def _drop_stale(dialect: Dialect, store_id: int, keep_mark: int, ids: Sequence[int]) -> int:
    """Remove those of ``ids`` still unconfirmed links of the store, in one transaction."""

    def work(tx: Tx) -> int:
        doomed: list[DoomedLink] = []
        for chunk in chunks(sorted(ids)):
            # Another sweep may be removing the same links: hold them first,
            # then read which are still here and still unconfirmed.
            tx.hold_entries(f"id IN ({marks(chunk)})", *chunk)
            rows = tx.all(
                "SELECT l.entry_id, e.parent_id, l.size FROM external_links l "
                f"JOIN entries e ON e.id = l.entry_id WHERE l.data_store_id = ? AND {_STALE} "
                f"AND l.entry_id IN ({marks(chunk)})",
                store_id,
                keep_mark,
                *chunk,
            )
            doomed.extend(DoomedLink(int(i), int(p), store_id, int(s)) for i, p, s in rows)
        tally = Tally()
        drop(tx, tally, doomed)
        tally.write(tx, time.time_ns())
        return len(doomed)

    return run(dialect, work, write=True)
