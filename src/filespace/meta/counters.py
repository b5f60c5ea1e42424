"""The counters, kept in the same transaction as the rows they count.

Counters are sharded rows (``counters``: one wide row per shard;
``store_counters``: one row per store and shard) updated by upsert, so a
reader sums a handful of rows and concurrent writers on a server engine do
not queue on one hot row (the dialect picks the shard).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from filespace.meta.records import Counters
from filespace.meta.txn import Tx, chunks, marks

COUNTERS = Counters._fields
"""The filespace-wide counters: columns of the ``counters`` rows (one per shard)."""


def bump(tx: Tx, deltas: Mapping[str, int]) -> None:
    """Add ``deltas`` to the filespace counters: one upsert of one wide row."""
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown counters {sorted(unknown)}")
    names = [name for name in COUNTERS if deltas.get(name)]
    if not names:
        return
    columns = ", ".join(names)
    updates = ", ".join(f"{name} = counters.{name} + excluded.{name}" for name in names)
    tx.run(
        f"INSERT INTO counters (shard, {columns}) VALUES (?, {marks(names)}) "
        f"ON CONFLICT (shard) DO UPDATE SET {updates}",
        tx.dialect.counter_shard(),
        *(deltas[name] for name in names),
    )


def bump_store(tx: Tx, store_id: int, files: int, size: int) -> None:
    """Add to one data store's counters of linked files and bytes."""
    if files or size:
        tx.run(
            "INSERT INTO store_counters (data_store_id, shard, files, bytes) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (data_store_id, shard) DO UPDATE SET "
            "files = store_counters.files + excluded.files, "
            "bytes = store_counters.bytes + excluded.bytes",
            store_id,
            tx.dialect.counter_shard(),
            files,
            size,
        )


def entry_deltas(type_: str, kind: str, count: int, size: int) -> dict[str, int]:
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


def read(tx: Tx) -> Counters:
    """The filespace counters, summed over their shards."""
    sums = ", ".join(f"COALESCE(SUM({name}), 0)" for name in COUNTERS)
    row = tx.one(f"SELECT {sums} FROM counters")
    assert row is not None
    return Counters(*(int(value) for value in row))


def read_store(tx: Tx, store_id: int) -> tuple[int, int]:
    """(files, bytes) linked to a store, summed over its shards."""
    row = tx.one(
        "SELECT COALESCE(SUM(files), 0), COALESCE(SUM(bytes), 0) FROM store_counters "
        "WHERE data_store_id = ?",
        store_id,
    )
    assert row is not None
    return int(row[0]), int(row[1])


class Tally:
    """Counter changes and touched directories of one transaction, written once."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = defaultdict(int)
        self.stores: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        self.touched: set[int] = set()

    def add(self, deltas: Mapping[str, int]) -> None:
        """Count changes given as ``entry_deltas`` gives them."""
        for name, delta in deltas.items():
            self.counters[name] += delta

    def links(self, store_id: int | None, files: int, size: int) -> None:
        """Count ``files`` external links (negative: removed) of ``size`` bytes in all."""
        self.add(entry_deltas("file", "s3", files, size))
        if store_id is not None:
            self.stores[store_id][0] += files
            self.stores[store_id][1] += size

    def write(self, tx: Tx, now_ns: int) -> None:
        """Apply the counts and set the touched directories' mtime to ``now_ns``."""
        bump(tx, self.counters)
        for store_id, (files, size) in sorted(self.stores.items()):
            bump_store(tx, store_id, files, size)
        for chunk in chunks(sorted(self.touched)):
            tx.run(f"UPDATE entries SET mtime_ns = ? WHERE id IN ({marks(chunk)})", now_ns, *chunk)
