"""Set-based operations: making many directories and linking many objects at once.

The SQL is shared by every dialect (``?`` placeholders, ``ON CONFLICT ... DO
NOTHING``, ``RETURNING``). Each batch is one transaction: it lands whole, with
its counters bumped once (``counters.Tally``), or not at all.

*Conflicts are found optimistically.* Each dialect inserts a batch its
fastest way (SQLite: ids handed out under its write lock, ``ON CONFLICT DO
NOTHING``; PostgreSQL: ids drawn from the sequence, then ``COPY``) and says
how many links it inserted. When a name was taken (or a concurrent writer
took one, or removed a parent), the work raises ``Collision``: ``meta.txn``
rolls the transaction back and runs it again, and the batch, seeing
``tx.collisions``, is redone with one existence query per directory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from filespace.meta.counters import Tally
from filespace.meta.errors import MetaError, NameTaken, NoSuchEntry, NoSuchStore
from filespace.meta.namespace import kind_at
from filespace.meta.records import LinkRow
from filespace.meta.stores import require as require_store
from filespace.meta.txn import Collision, Tx, chunks, marks


class DoomedLink(NamedTuple):
    """A link to remove, with what its counters need."""

    entry_id: int
    parent_id: int
    store_id: int | None
    size: int


def live_dirs(tx: Tx, ids: Iterable[int]) -> set[int]:
    """Those of ``ids`` that are directories."""
    live: set[int] = set()
    for chunk in chunks(sorted(set(ids))):
        rows = tx.all(
            f"SELECT id FROM entries WHERE type = 'dir' AND id IN ({marks(chunk)})", *chunk
        )
        live.update(int(row[0]) for row in rows)
    return live


def insert_links(
    tx: Tx, tally: Tally, store_id: int, rows: Sequence[LinkRow], now_ns: int, mark: int | None
) -> None:
    """Add entries and link rows; ``Collision`` if any name turned out to be taken."""
    if not rows:
        return
    rows = sorted(rows)  # by directory and name: B-tree inserts and lookups stay local
    try:
        linked = tx.dialect.insert_links(tx.cursor, store_id, rows, now_ns, mark)
    except Exception as exc:
        if tx.foreign_key_violation(exc):
            raise NoSuchStore(str(store_id)) from None
        raise
    if linked != len(rows):
        raise Collision
    tally.links(store_id, len(rows), sum(row.size for row in rows))
    tally.touched.update(row.parent_id for row in rows)


def drop(tx: Tx, tally: Tally, doomed: Sequence[DoomedLink]) -> None:
    """Remove links (held by the caller) and count them."""
    ids = [(link.entry_id,) for link in doomed]
    tx.many("DELETE FROM external_links WHERE entry_id = ?", ids)
    tx.many("DELETE FROM entries WHERE id = ?", ids)
    for link in doomed:
        tally.links(link.store_id, -1, -link.size)
        tally.touched.add(link.parent_id)


def new_dir(tx: Tx, tally: Tally, parent: int, name: str, now_ns: int) -> int:
    """Insert the directory ``name`` in ``parent``; ``Collision`` if the name was taken."""
    made = tx.value(
        "INSERT INTO entries (parent_id, name, type, kind, size, ctime_ns, mtime_ns) "
        "VALUES (?, ?, 'dir', 'native', 0, ?, ?) ON CONFLICT (parent_id, name) DO NOTHING "
        "RETURNING id",
        parent,
        name,
        now_ns,
        now_ns,
    )
    if made is None:
        raise Collision
    tally.counters["dirs"] += 1
    tally.touched.add(parent)
    return int(made)


# -- directories ------------------------------------------------------------------------
def make_dirs(
    tx: Tx, chains: Sequence[tuple[int, Sequence[str]]], now_ns: int
) -> list[list[int] | None]:
    """Make each chain of names as nested directories (``mkdir -p`` below its start)."""
    live = live_dirs(tx, (start for start, _ in chains))
    known: dict[tuple[int, str], int | None] = {}
    tally = Tally()
    made: list[list[int] | None] = []
    for start, names in chains:
        current: int | None = start if start in live else None
        ids: list[int] = []
        for name in names:
            if current is None:
                break
            step = (current, name)
            if step not in known:
                known[step] = _child_dir(tx, tally, current, name, now_ns)
            current = known[step]
            if current is not None:
                ids.append(current)
        made.append(ids if current is not None else None)
    tally.write(tx, now_ns)
    return made


def _child_dir(tx: Tx, tally: Tally, parent: int, name: str, now_ns: int) -> int | None:
    """The directory ``name`` in ``parent``, made if missing; ``None`` if a file is there."""
    found = kind_at(tx, parent, name)
    if found is not None:
        return found.id if found.type == "dir" else None
    return new_dir(tx, tally, parent, name, now_ns)


# -- links ------------------------------------------------------------------------------
def create_links(
    tx: Tx, store_id: int, rows: Sequence[LinkRow], now_ns: int
) -> list[tuple[int, type[MetaError]]]:
    """Link ``rows``; the rows not linked, as ``(index, NameTaken | NoSuchEntry)``.

    The first attempt assumes no name is taken; after a collision every row
    is checked first.
    """
    require_store(tx, store_id)
    live = live_dirs(tx, (row.parent_id for row in rows))
    failures: list[tuple[int, type[MetaError]]] = []
    if tx.collisions:
        taken = _taken_names(tx, rows, live)
        seen: set[tuple[int, str]] = set()
        good: list[LinkRow] = []
        for index, row in enumerate(rows):
            place = (row.parent_id, row.name)
            if row.parent_id not in live:
                failures.append((index, NoSuchEntry))
            elif place in taken or place in seen:
                failures.append((index, NameTaken))
            else:
                seen.add(place)
                good.append(row)
    elif len(live) == len({row.parent_id for row in rows}):
        good = list(rows)
    else:
        good = []
        for index, row in enumerate(rows):
            if row.parent_id in live:
                good.append(row)
            else:
                failures.append((index, NoSuchEntry))
    tally = Tally()
    insert_links(tx, tally, store_id, good, now_ns, None)
    tally.write(tx, now_ns)
    return failures


def _taken_names(tx: Tx, rows: Sequence[LinkRow], live: set[int]) -> set[tuple[int, str]]:
    """The ``(parent_id, name)`` pairs of ``rows`` already present, one query per directory."""
    names: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        if row.parent_id in live:
            names[row.parent_id].append(row.name)
    taken: set[tuple[int, str]] = set()
    for parent, wanted in names.items():
        for chunk in chunks(sorted(set(wanted))):
            found = tx.all(
                f"SELECT name FROM entries WHERE parent_id = ? AND name IN ({marks(chunk)})",
                parent,
                *chunk,
            )
            taken.update((parent, str(row[0])) for row in found)
    return taken
