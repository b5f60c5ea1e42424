"""Namespace operations: reading entries, creating them, removing them, naming them.

Each function does its part inside the caller's transaction (``meta.txn.run``);
constraints catch the races (a name taken, a parent removed meanwhile), and
every change moves its counters in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from filespace.meta import counters
from filespace.meta.errors import NameTaken, NoSuchEntry, NoSuchStore, NotEmpty
from filespace.meta.records import ROOT_ID, EntryRecord, EntryType, NewLink, Removed
from filespace.meta.rows import ENTRY_SELECT, KIND_SELECT, ONE_ENTRY, SUBTREE, EntryRow, Kind
from filespace.meta.txn import Tx, marks


# -- reading ---------------------------------------------------------------------------
def get(tx: Tx, entry_id: int) -> EntryRecord | None:
    """The entry with that id, or ``None``."""
    row = tx.row(EntryRow, ENTRY_SELECT + "WHERE e.id = ?", entry_id)
    return row.record() if row else None


def lookup(tx: Tx, parent_id: int, name: str) -> EntryRecord | None:
    """The entry called ``name`` in ``parent_id``, or ``None``."""
    row = tx.row(EntryRow, ENTRY_SELECT + "WHERE e.parent_id = ? AND e.name = ?", parent_id, name)
    return row.record() if row else None


def lookup_path(tx: Tx, parent_id: int, names: Sequence[str]) -> list[EntryRecord]:
    """The entries along ``names`` from ``parent_id``, as far as plain directories lead.

    Stops after a name that is missing (fewer records than names), after a
    symbolic link or a file (the caller decides what they mean), or at the end.
    """
    found: list[EntryRecord] = []
    current = parent_id
    for name in names:
        entry = lookup(tx, current, name)
        if entry is None:
            break
        found.append(entry)
        if not entry.is_dir:
            break
        current = entry.id
    return found


def lookup_many(tx: Tx, parent_id: int, names: Sequence[str]) -> dict[str, EntryRecord]:
    """The entries among ``names`` present in ``parent_id``, by name."""
    found: dict[str, EntryRecord] = {}
    unique = sorted(set(names))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        where = f"WHERE e.parent_id = ? AND e.name IN ({marks(chunk)})"
        for row in tx.rows(EntryRow, ENTRY_SELECT + where, parent_id, *chunk):
            found[row.name] = row.record()
    return found


def children(
    tx: Tx, dir_id: int, after: str | None = None, limit: int | None = None
) -> list[EntryRecord]:
    """The entries of a directory, by name: those after ``after``, at most ``limit``.

    A page is read along the ``(parent_id, name)`` index; the next one starts
    after the last name of the last, whatever changed in between.
    """
    where = "WHERE e.parent_id = ?"
    params: list[int | str] = [dir_id]
    if after is not None:
        where += " AND e.name > ?"
        params.append(after)
    where += " ORDER BY e.name"
    if limit is not None:
        where += " LIMIT ?"
        params.append(limit)
    return [row.record() for row in tx.rows(EntryRow, ENTRY_SELECT + where, *params)]


def kind_at(tx: Tx, parent_id: int, name: str) -> Kind | None:
    """Id, type and kind of the entry called ``name`` in ``parent_id``."""
    return tx.row(Kind, KIND_SELECT + "WHERE parent_id = ? AND name = ?", parent_id, name)


def require_dir(tx: Tx, dir_id: int) -> None:
    """``NoSuchEntry`` unless ``dir_id`` is a directory."""
    if tx.value("SELECT type FROM entries WHERE id = ?", dir_id) != "dir":
        raise NoSuchEntry(f"directory {dir_id} does not exist")


def paths_of(tx: Tx, entry_ids: Sequence[int]) -> list[str]:
    """Paths of many entries, reading each directory on the way once."""
    known: dict[int, tuple[int | None, str]] = {ROOT_ID: (None, "")}
    wanted = {entry_id for entry_id in entry_ids if entry_id not in known}
    while wanted:
        batch = sorted(wanted)[:500]
        rows = tx.all(
            f"SELECT id, parent_id, name FROM entries WHERE id IN ({marks(batch)})", *batch
        )
        missing = set(batch) - {int(row[0]) for row in rows}
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
    return [_compose(known, entry_id) for entry_id in entry_ids]


def _compose(known: dict[int, tuple[int | None, str]], entry_id: int) -> str:
    names: list[str] = []
    current: int | None = entry_id
    while current is not None and current != ROOT_ID:
        parent, name = known[current]
        names.append(name)
        current = parent
    return "/" + "/".join(reversed(names))


# -- creating ---------------------------------------------------------------------------
def create(
    tx: Tx,
    parent_id: int,
    name: str,
    type_: EntryType,
    now_ns: int,
    target: str | None,
    link: NewLink | None,
) -> EntryRecord:
    """Add an entry under an existing directory; the new record."""
    require_dir(tx, parent_id)
    created = get(tx, insert_entry(tx, parent_id, name, type_, now_ns, target, link))
    assert created is not None
    return created


def create_at(
    tx: Tx,
    parent_names: Sequence[str],
    name: str,
    type_: EntryType,
    now_ns: int,
    target: str | None,
    link: NewLink | None,
    store_name: str | None,
) -> int:
    """Add an entry under the directory ``parent_names`` leads to from the root; its id."""
    parent_id = ROOT_ID
    for part in parent_names:
        step = kind_at(tx, parent_id, part)
        if step is None or step.type != "dir":
            raise NoSuchEntry(part)
        parent_id = step.id
    store_id = None
    if store_name is not None:
        found = tx.value("SELECT id FROM data_stores WHERE name = ?", store_name)
        if found is None:
            raise NoSuchStore(store_name)
        store_id = int(found)
    return insert_entry(tx, parent_id, name, type_, now_ns, target, link, store_id)


def insert_entry(
    tx: Tx,
    parent_id: int,
    name: str,
    type_: EntryType,
    now_ns: int,
    target: str | None,
    link: NewLink | None,
    store_id: int | None = None,
) -> int:
    """Insert one entry (and its link) and count it; ``store_id`` overrides the link's store."""
    kind = link.kind if link is not None else "native"
    size = link.size if link is not None else 0
    try:
        entry_id = tx.value(
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
        if tx.unique_violation(exc):
            raise NameTaken(name) from None
        if tx.foreign_key_violation(exc):  # parent removed meanwhile
            raise NoSuchEntry(str(parent_id)) from None
        raise
    assert entry_id is not None
    if link is not None:
        _insert_link(tx, int(entry_id), link, now_ns, store_id)
    counters.bump(tx, counters.entry_deltas(type_, kind, 1, size))
    touch(tx, parent_id, now_ns)
    return int(entry_id)


def _insert_link(tx: Tx, entry_id: int, link: NewLink, now_ns: int, store_id: int | None) -> None:
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
        if tx.foreign_key_violation(exc):
            raise NoSuchStore(str(store_id)) from None
        raise
    if store_id is not None:
        counters.bump_store(tx, store_id, 1, link.size)


def touch(tx: Tx, dir_id: int, now_ns: int) -> None:
    """Set a directory's mtime: its entries changed."""
    tx.run("UPDATE entries SET mtime_ns = ? WHERE id = ?", now_ns, dir_id)


# -- removing ---------------------------------------------------------------------------
def remove(tx: Tx, entry_id: int) -> Removed:
    """Remove a file, symlink or empty directory (``NotEmpty``)."""
    tx.hold_entries("id = ?", entry_id)
    entry = get(tx, entry_id)
    if entry is None or entry.parent_id is None:
        raise NoSuchEntry(str(entry_id))
    if entry.is_dir and not is_empty(tx, entry_id):
        raise NotEmpty(entry.name)
    return remove_ids(tx, entry_id, time.time_ns(), subtree=False)


def remove_tree(tx: Tx, dir_id: int) -> Removed:
    """Remove a directory and everything below it."""
    tx.hold_entries("id IN (SELECT id FROM sub)", dir_id, scope=SUBTREE)
    entry = get(tx, dir_id)
    if entry is None or entry.parent_id is None:
        raise NoSuchEntry(str(dir_id))
    return remove_ids(tx, dir_id, time.time_ns(), subtree=True)


def remove_ids(tx: Tx, entry_id: int, now_ns: int, *, subtree: bool) -> Removed:
    """Delete one entry (held) or a whole subtree (held), fixing every counter on the way."""
    scope = SUBTREE if subtree else ONE_ENTRY
    parent = tx.value("SELECT parent_id FROM entries WHERE id = ?", entry_id)
    totals = tx.all(
        scope + "SELECT e.type, e.kind, COUNT(*), COALESCE(SUM(e.size), 0) "
        "FROM entries e JOIN sub ON e.id = sub.id GROUP BY e.type, e.kind",
        entry_id,
    )
    tally = counters.Tally()
    removed = 0
    for type_, kind, count, size in totals:
        removed += int(count)
        tally.add(counters.entry_deltas(type_, kind, -int(count), -int(size)))
    per_store = tx.all(
        scope + "SELECT l.data_store_id, COUNT(*), COALESCE(SUM(l.size), 0) "
        "FROM external_links l JOIN sub ON l.entry_id = sub.id "
        "WHERE l.data_store_id IS NOT NULL GROUP BY l.data_store_id",
        entry_id,
    )
    for store_id, count, size in per_store:
        tally.stores[int(store_id)] = [-int(count), -int(size)]
    blocks = tx.all(
        scope + "SELECT b.block_key, b.length FROM blocks b JOIN sub ON b.entry_id = sub.id",
        entry_id,
    )
    tally.counters["storage_size"] -= sum(int(length) for _, length in blocks)
    tx.run(scope + "DELETE FROM blocks WHERE entry_id IN (SELECT id FROM sub)", entry_id)
    tx.run(scope + "DELETE FROM external_links WHERE entry_id IN (SELECT id FROM sub)", entry_id)
    tx.run(scope + "DELETE FROM entries WHERE id IN (SELECT id FROM sub)", entry_id)
    if parent is not None:
        tally.touched.add(int(parent))
    tally.write(tx, now_ns)
    return Removed(entries=removed, block_keys=[str(key) for key, _ in blocks])


def is_empty(tx: Tx, dir_id: int) -> bool:
    """Whether a directory has no entries."""
    return tx.one("SELECT 1 FROM entries WHERE parent_id = ? LIMIT 1", dir_id) is None
