"""Native file data: which blocks hold a file's bytes, and committing new ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from filespace.meta import counters
from filespace.meta.errors import NoSuchEntry
from filespace.meta.records import BlockRecord, EntryKind
from filespace.meta.txn import Tx, marks


class _Sized(NamedTuple):
    size: int
    kind: EntryKind


def blocks(tx: Tx, entry_id: int) -> list[BlockRecord]:
    """A native file's blocks, by index."""
    return tx.rows(
        BlockRecord,
        "SELECT idx, block_key, length FROM blocks WHERE entry_id = ? ORDER BY idx",
        entry_id,
    )


def commit_data(
    tx: Tx,
    entry_id: int,
    size: int,
    keep_below: int,
    new: Sequence[BlockRecord],
    now_ns: int,
) -> list[str]:
    """Drop blocks at or past ``keep_below`` or replaced by ``new``, put ``new`` in, set the size.

    Returns the keys no longer referenced.
    """
    tx.hold_entries("id = ?", entry_id)
    row = tx.row(_Sized, "SELECT size, kind FROM entries WHERE id = ?", entry_id)
    if row is None or row.kind != "native":
        raise NoSuchEntry(str(entry_id))
    indexes = [block.index for block in new]
    doomed = f"entry_id = ? AND (idx >= ? OR idx IN ({marks(indexes) or 'NULL'}))"
    replaced = tx.all(
        f"SELECT block_key, length FROM blocks WHERE {doomed}", entry_id, keep_below, *indexes
    )
    tx.run(f"DELETE FROM blocks WHERE {doomed}", entry_id, keep_below, *indexes)
    tx.many(
        "INSERT INTO blocks (entry_id, idx, block_key, length) VALUES (?, ?, ?, ?)",
        [(entry_id, block.index, block.key, block.length) for block in new],
    )
    tx.run("UPDATE entries SET size = ?, mtime_ns = ? WHERE id = ?", size, now_ns, entry_id)
    stored = sum(block.length for block in new) - sum(int(length) for _, length in replaced)
    grown = size - int(row.size)
    counters.bump(tx, {"entries_size": grown, "data_size": grown, "storage_size": stored})
    return [str(key) for key, _ in replaced]


def block_keys(tx: Tx) -> set[str]:
    """Every block key referenced (for sweeping the block store)."""
    return {str(row[0]) for row in tx.all("SELECT block_key FROM blocks")}
