"""Data stores and the links that point into them, one at a time."""

from __future__ import annotations

from typing import NamedTuple

from filespace.meta import counters
from filespace.meta.errors import NoSuchEntry, NoSuchStore, StoreBusy, StoreLimit, StoreTaken
from filespace.meta.records import LinkPage, StoreRecord
from filespace.meta.rows import STORE_SELECT, StoreRow
from filespace.meta.txn import Tx

UPDATABLE = frozenset({"access_key", "sealed_secret", "key_id", "rekey_state"})
"""The columns ``update_store`` may change (where a store is, never: its secret is bound to it)."""


def find(tx: Tx, condition: str, value: object) -> StoreRecord | None:
    """The store matching ``condition`` (``"name = ?"``, ``"id = ?"``) with ``value``."""
    row = tx.row(StoreRow, STORE_SELECT + f"WHERE {condition}", value)
    return row.record() if row else None


def all_stores(tx: Tx) -> list[StoreRecord]:
    """Every store, by name."""
    return [row.record() for row in tx.rows(StoreRow, STORE_SELECT + "ORDER BY name")]


def require(tx: Tx, store_id: int) -> None:
    """``NoSuchStore`` unless the store exists."""
    if tx.one("SELECT 1 FROM data_stores WHERE id = ?", store_id) is None:
        raise NoSuchStore(str(store_id))


def add(tx: Tx, store: StoreRecord, limit: int) -> StoreRecord:
    """Add a store (``id`` is assigned); ``StoreTaken`` or ``StoreLimit``."""
    if tx.one("SELECT 1 FROM data_stores WHERE name = ?", store.name):
        raise StoreTaken(store.name)
    if int(tx.value("SELECT COUNT(*) FROM data_stores")) >= limit:
        raise StoreLimit(limit)
    try:
        store_id = tx.value(
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
        if tx.unique_violation(exc):
            raise StoreTaken(store.name) from None
        raise
    added = find(tx, "id = ?", int(store_id))
    assert added is not None
    return added


def update(tx: Tx, name: str, changes: dict[str, object]) -> StoreRecord:
    """Change columns of one store; ``NoSuchStore``."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"cannot change data-store columns {sorted(unknown)}")
    columns = sorted(changes)
    if columns:
        assignments = ", ".join(f"{column} = ?" for column in columns)
        values = [changes[column] for column in columns]
        if not tx.run(f"UPDATE data_stores SET {assignments} WHERE name = ?", *values, name):
            raise NoSuchStore(name)
    updated = find(tx, "name = ?", name)
    if updated is None:
        raise NoSuchStore(name)
    return updated


def reseal(tx: Tx, name: str, old: bytes, new: bytes) -> bool:
    """Swap the sealed secret ``old`` for ``new``, unless it changed meanwhile (a rekey)."""
    return bool(
        tx.run(
            "UPDATE data_stores SET sealed_secret = ? WHERE name = ? AND sealed_secret = ?",
            new,
            name,
            old,
        )
    )


def remove(tx: Tx, name: str) -> None:
    """Remove a store with no links; ``NoSuchStore`` or ``StoreBusy``."""
    found = tx.value("SELECT id FROM data_stores WHERE name = ?", name)
    if found is None:
        raise NoSuchStore(name)
    store_id = int(found)
    # Count the rows, not the counters: the refusal must be exact even
    # if a counter were ever off, and this is a rare administrative call.
    linked = int(tx.value("SELECT COUNT(*) FROM external_links WHERE data_store_id = ?", store_id))
    if linked:
        raise StoreBusy(linked)
    tx.run("DELETE FROM store_counters WHERE data_store_id = ?", store_id)
    try:
        tx.run("DELETE FROM data_stores WHERE id = ?", store_id)
    except Exception as exc:
        if tx.foreign_key_violation(exc):
            raise StoreBusy(1) from None
        raise


class _Linked(NamedTuple):
    size: int
    store_id: int | None


def update_link(
    tx: Tx, entry_id: int, *, size: int, checksum: str, url: str | None, now_ns: int
) -> None:
    """Point an existing link at new bytes (size, checksum, URL)."""
    tx.hold_entries("id = ?", entry_id)
    old = tx.row(
        _Linked, "SELECT size, data_store_id FROM external_links WHERE entry_id = ?", entry_id
    )
    if old is None:
        raise NoSuchEntry(str(entry_id))
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
    grown = size - int(old.size)
    counters.bump(tx, {"entries_size": grown, "external_size": grown})
    if old.store_id is not None:
        counters.bump_store(tx, int(old.store_id), 0, grown)


def links_page(tx: Tx, store_id: int, after_entry_id: int, limit: int) -> LinkPage:
    """Up to ``limit`` linked entry ids of a store after ``after_entry_id``."""
    rows = tx.all(
        "SELECT entry_id FROM external_links WHERE data_store_id = ? AND entry_id > ? "
        "ORDER BY entry_id LIMIT ?",
        store_id,
        after_entry_id,
        limit + 1,
    )
    ids = [int(row[0]) for row in rows]
    return LinkPage(entry_ids=ids[:limit], has_more=len(ids) > limit)
