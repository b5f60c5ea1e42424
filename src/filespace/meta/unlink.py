"""Removing every external link under a directory, server-side, in set-based batches.

Each batch is one transaction of a few set-based statements: hold the batch's
entries, delete their link rows (``RETURNING`` each entry id and what it held,
for the store counters), delete those entries by id (``RETURNING`` their
parents and sizes, for the filespace counters and the parents' mtimes), then
write the counters. Counting what the deletes returned, not what a read saw,
keeps the counters exact when another client removes some of the same links.
Native files, directories and symlinks have no link row, so they are never
touched.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from filespace.meta.counters import Tally, entry_deltas
from filespace.meta.dialect import Dialect
from filespace.meta.namespace import require_dir
from filespace.meta.rows import SUBDIRS
from filespace.meta.txn import Tx, chunks, marks, run


class _GoneLink(NamedTuple):
    entry_id: int
    store_id: int | None
    size: int


class _GoneEntry(NamedTuple):
    parent_id: int
    size: int


def remove_links(
    dialect: Dialect, base_id: int, store_id: int | None, *, dry_run: bool, batch: int
) -> int:
    """Remove the links (of ``store_id``, or all) below ``base_id``; how many."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    links = (
        "SELECT e.id FROM entries e JOIN sub ON e.parent_id = sub.id "
        "JOIN external_links l ON l.entry_id = e.id WHERE e.type = 'file'"
    )
    params: tuple[int, ...] = (base_id,)
    if store_id is not None:
        links += " AND l.data_store_id = ?"
        params += (store_id,)

    def count(tx: Tx) -> int:
        require_dir(tx, base_id)
        return int(tx.value(f"{SUBDIRS}SELECT COUNT(*) FROM ({links}) AS doomed", *params))

    if dry_run:
        return run(dialect, count, write=False)
    picked = f"{links} ORDER BY e.id LIMIT ?"

    def one_batch(tx: Tx) -> int:
        tx.hold_entries(f"id IN ({picked})", *params, batch, scope=SUBDIRS)
        gone = tx.rows(
            _GoneLink,
            f"{SUBDIRS}DELETE FROM external_links WHERE entry_id IN ({picked}) "
            "RETURNING entry_id, data_store_id, size",
            *params,
            batch,
        )
        if not gone:
            return 0
        # Only the entries whose link rows were just deleted: a lookup by id,
        # not another scan of the subtree for each batch.
        entries: list[_GoneEntry] = []
        for chunk in chunks(sorted({int(link.entry_id) for link in gone})):
            entries += tx.rows(
                _GoneEntry,
                f"DELETE FROM entries WHERE id IN ({marks(chunk)}) RETURNING parent_id, size",
                *chunk,
            )
        tally = Tally()
        tally.add(entry_deltas("file", "s3", -len(entries), -sum(e.size for e in entries)))
        for link in gone:
            if link.store_id is not None:
                tally.stores[int(link.store_id)][0] -= 1
                tally.stores[int(link.store_id)][1] -= int(link.size)
        tally.touched.update(int(entry.parent_id) for entry in entries)
        tally.write(tx, time.time_ns())
        return len(gone)

    def first_batch(tx: Tx) -> int:
        require_dir(tx, base_id)
        return one_batch(tx)

    removed = done = run(dialect, first_batch, write=True)
    while done == batch:
        done = run(dialect, one_batch, write=True)
        removed += done
    return removed
