"""Applying a batch of bucket events to a followed directory, ordered per object.

*What is kept to order events.* S3 gives every event of an object a
``sequencer``: of two events for one key, the one with the greater sequencer
happened later. A followed tree must refuse an event older than the last one
it applied for that key, or a late duplicate would undo a newer change. Two
places hold that last sequencer, both bounded:

- a link made or confirmed by an event carries it (``external_links.sequencer``):
  as many as there are links, and gone with the link;
- a removal leaves a tombstone ``(base directory, store, key, sequencer)`` in
  ``event_tombstones``, so that a create delivered after its own delete is
  refused. A create applied later replaces the tombstone (the link then holds
  the sequencer), and tombstones older than ``TOMBSTONE_DAYS`` are pruned by
  every batch: an event delivered later than that after a removal of its key
  may be applied.

A link made by ``mirror`` or ``link_files`` carries no sequencer: the first
event for it is applied, whatever its age. Mirroring a link onto another key or
store voids its sequencer (``meta.mirror``).

*How a batch is applied.* One transaction: the entries at the batch's paths and
the tombstones of its keys are read (held, where writers overlap); events not
newer than what is kept are counted stale; removals drop the store's link to
their key and write their tombstone; creations go through ``MirrorPass``, the
same pass ``mirror`` uses, so directories are made and things in the way are
skipped by the same rules; run ``sequenced``, it writes each event's sequencer
on the link it makes, re-points or confirms. The batch's paths, directories and
tombstones are each read in one statement (``meta.lookup``), whatever the number
of directories it touches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from filespace.meta.bulk import DoomedLink, drop
from filespace.meta.counters import Tally
from filespace.meta.lookup import Pair, at_pairs, find_dirs
from filespace.meta.mirror import EXISTING_COLUMNS, Existing, MirrorPass
from filespace.meta.namespace import require_dir
from filespace.meta.records import EventCounts, EventRow, MirrorRow
from filespace.meta.stores import require as require_store
from filespace.meta.txn import Tx

TOMBSTONE_DAYS = 14
"""How long a removal's tombstone is kept (SQS keeps a message at most 14 days)."""

_DAY_NS = 86_400 * 10**9


class _AtPath(NamedTuple):
    """The entry at an event's path (``Existing``, as the mirror pass reads it), and its link's
    sequencer."""

    existing: Existing
    parent_id: int
    sequencer: str | None

    @property
    def type(self) -> str:
        """``file``, ``dir`` or ``link``; a native file is ``native``."""
        return "native" if self.existing.kind == "native" else self.existing.type


def later(sequencer: str, than: str) -> bool:
    """Whether ``sequencer`` orders after ``than`` (both lowercase hex without leading zeros)."""
    return (len(sequencer), sequencer) > (len(than), than)


def apply_events(
    tx: Tx, store_id: int, base_id: int, rows: Sequence[EventRow], now_ns: int
) -> EventCounts:
    """Apply ``rows`` (at most one per key) under ``base_id``; see ``Engine.apply_events``."""
    require_dir(tx, base_id)
    require_store(tx, store_id)
    tx.run("DELETE FROM event_tombstones WHERE recorded_ns < ?", now_ns - TOMBSTONE_DAYS * _DAY_NS)
    tombs = _tombstones(tx, store_id, base_id, [row.object_key for row in rows])
    looked = _entries(tx, base_id, rows)
    found = looked.at
    tally = Tally()
    stale = removed = unchanged = 0
    doomed: list[DoomedLink] = []
    buried: list[tuple[int, int, str, str, int]] = []
    creates: list[int] = []
    for index, row in enumerate(rows):
        there = found.get(index)
        ours = (
            there is not None
            and there.type == "file"
            and there.existing.store_id == store_id
            and there.existing.object_key == row.object_key
        )
        last = there.sequencer if ours and there is not None else None
        last = last or tombs.get(row.object_key)
        if row.sequencer and last and not later(row.sequencer, last):
            stale += 1
            continue
        if not row.removed:
            creates.append(index)
            continue
        if ours and there is not None:
            link = there.existing
            doomed.append(DoomedLink(link.id, there.parent_id, store_id, int(link.size or 0)))
            removed += 1
        else:
            unchanged += 1
        if row.sequencer:
            buried.append((base_id, store_id, row.object_key, row.sequencer, now_ns))
    # Removals first: a creation below a removed key's path then finds it gone.
    drop(tx, tally, doomed)
    tally.write(tx, now_ns)
    tx.many(
        "INSERT INTO event_tombstones (base_id, data_store_id, object_key, sequencer, recorded_ns)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (base_id, data_store_id, object_key) DO UPDATE SET"
        " sequencer = excluded.sequencer, recorded_ns = excluded.recorded_ns",
        buried,
    )
    made = _create(tx, store_id, base_id, rows, creates, tombs, looked, now_ns)
    return EventCounts(
        added=made.added,
        updated=made.updated,
        unchanged=unchanged + made.unchanged,
        removed=removed + made.removed,
        stale=stale,
        skipped=made.skipped,
    )


def _create(
    tx: Tx,
    store_id: int,
    base_id: int,
    rows: Sequence[EventRow],
    creates: Sequence[int],
    tombs: dict[str, str],
    looked: _Looked,
    now_ns: int,
) -> EventCounts:
    """Link the created objects through the mirror pass, with their sequencers."""
    if not creates:
        return EventCounts(0, 0, 0, 0, 0, [])
    wanted = [rows[index] for index in creates]
    # The mark is now: a mirror that started earlier keeps these links in its sweep.
    # Sequenced: every link the pass makes, re-points or confirms keeps its event's sequencer.
    mirrored = MirrorPass(tx, store_id, now_ns, now_ns, delete=True, dry_run=False, sequenced=True)
    # What this batch read and holds already: the created rows' paths (no removal shares
    # one: a batch has one row per key) and the directories.
    created = set(creates)
    mirrored.know(
        looked.dirs,
        {
            pair: at.existing if (at := looked.at.get(index)) is not None else None
            for pair, index in looked.pairs.items()
            if index in created
        },
    )
    counts = mirrored.run(
        base_id,
        [
            MirrorRow(r.dir, r.name, r.object_key, r.size, r.etag, r.sequencer or None)
            for r in wanted
        ],
    )
    skipped = {index for index, _ in counts.skipped}
    linked = [row for at, row in enumerate(wanted) if at not in skipped]
    tx.many(
        "DELETE FROM event_tombstones WHERE base_id = ? AND data_store_id = ? AND object_key = ?",
        [(base_id, store_id, row.object_key) for row in linked if row.object_key in tombs],
    )
    return EventCounts(
        added=counts.added,
        updated=counts.updated,
        unchanged=counts.unchanged,
        removed=counts.removed,
        stale=0,
        skipped=[(creates[index], reason) for index, reason in counts.skipped],
    )


def _tombstones(tx: Tx, store_id: int, base_id: int, keys: Sequence[str]) -> dict[str, str]:
    """The tombstones of ``keys`` under ``base_id`` (held): key -> sequencer."""
    if not keys:
        return {}
    table, params = tx.dialect.table((("k", "TEXT"),), [(key,) for key in sorted(set(keys))])
    return {
        str(key): str(sequencer)
        for key, sequencer in tx.all(
            f"WITH v AS ({table}) SELECT object_key, sequencer FROM event_tombstones "
            "WHERE base_id = ? AND data_store_id = ? AND object_key IN (SELECT k FROM v)"
            f"{tx.dialect.row_lock}",
            *params,
            base_id,
            store_id,
        )
    }


class _Looked(NamedTuple):
    """What a batch read of its paths: the entries there, held, and the directories."""

    at: dict[int, _AtPath]
    """By row index; none where the path holds nothing."""
    dirs: dict[str, int]
    """Directory ids by relative path, where there is one."""
    pairs: dict[Pair, int]
    """Each row's ``(dir id, name)``, where its directory exists: the row's index."""


def _values(*values: Any) -> tuple[Any, ...]:
    return values


def _entries(tx: Tx, base_id: int, rows: Sequence[EventRow]) -> _Looked:
    """The entry at each row's path, held, and the directories on the way."""
    dirs = find_dirs(tx, base_id, {row.dir for row in rows})
    asked: dict[Pair, int] = {}
    for index, row in enumerate(rows):
        parent = dirs[row.dir]
        if parent is not None:
            asked[(parent, row.name)] = index
    # Held, so that a follower or mirror racing on the same names sees what this one wrote.
    there = at_pairs(tx, _values, f"{EXISTING_COLUMNS}, l.sequencer", asked, hold=True)
    return _Looked(
        {
            asked[pair]: _AtPath(Existing(*read[:-1]), pair[0], read[-1])
            for pair, read in there.items()
        },
        {rel: found for rel, found in dirs.items() if found is not None},
        asked,
    )
