"""The shapes of the SQL rows the operations read, and their decoding into records.

A query names its columns once, here, next to the ``NamedTuple`` its rows are
read into (``tx.row(EntryRow, ENTRY_SELECT + ...)``), so code reads fields by
name, never by position.
"""

from __future__ import annotations

from typing import NamedTuple

from filespace.meta.records import EntryKind, EntryRecord, EntryType, LinkRecord, StoreRecord

SUBTREE = (
    "WITH RECURSIVE sub(id) AS (SELECT CAST(? AS BIGINT) UNION ALL "
    "SELECT e.id FROM entries e JOIN sub ON e.parent_id = sub.id) "
)
"""A ``WITH`` clause naming ``sub``: the entry given and everything below it."""

ONE_ENTRY = "WITH sub(id) AS (SELECT CAST(? AS BIGINT)) "
"""A ``WITH`` clause naming ``sub``: just the entry given (``SUBTREE``'s single form)."""


class EntryRow(NamedTuple):
    """An entry with its link, if any (``ENTRY_SELECT``)."""

    id: int
    parent_id: int | None
    name: str
    type: EntryType
    kind: EntryKind
    size: int
    ctime_ns: int
    mtime_ns: int
    target: str | None
    store_id: int | None
    store_name: str | None
    object_key: str | None
    url: str | None
    link_size: int | None
    checksum: str | None
    linked_ns: int | None

    def record(self) -> EntryRecord:
        link = None
        if self.kind != "native":
            link = LinkRecord(
                kind=self.kind,
                data_store_id=self.store_id,
                data_store_name=self.store_name,
                object_key=self.object_key,
                url=self.url,
                size=int(self.link_size or 0),
                checksum=self.checksum or "",
                linked_ns=int(self.linked_ns or 0),
            )
        return EntryRecord(
            id=self.id,
            parent_id=self.parent_id,
            name=self.name,
            type=self.type,
            kind=self.kind,
            size=self.size,
            ctime_ns=self.ctime_ns,
            mtime_ns=self.mtime_ns,
            target=self.target,
            link=link,
        )


ENTRY_SELECT = (
    "SELECT e.id, e.parent_id, e.name, e.type, e.kind, e.size, e.ctime_ns, e.mtime_ns, e.target,"
    " l.data_store_id, s.name, l.object_key, l.url, l.size, l.checksum, l.linked_ns"
    " FROM entries e LEFT JOIN external_links l ON l.entry_id = e.id"
    " LEFT JOIN data_stores s ON s.id = l.data_store_id "
)
"""Selects ``EntryRow``s; the caller adds ``WHERE ...`` on ``e``."""


class StoreRow(NamedTuple):
    """A data store's row (``STORE_SELECT``)."""

    id: int
    uid: str
    name: str
    kind: str
    bucket: str
    region: str
    endpoint: str
    virtual_addressing: int
    url_expiration_minutes: int
    access_key: str
    sealed_secret: bytes
    key_id: str
    rekey_state: str
    created_ns: int

    def record(self) -> StoreRecord:
        return StoreRecord(
            **{
                **self._asdict(),
                "virtual_addressing": bool(self.virtual_addressing),
                "sealed_secret": bytes(self.sealed_secret),
            }
        )


STORE_SELECT = (
    "SELECT id, uid, name, kind, bucket, region, endpoint, virtual_addressing,"
    " url_expiration_minutes, access_key, sealed_secret, key_id, rekey_state, created_ns"
    " FROM data_stores "
)
"""Selects ``StoreRow``s; the caller adds ``WHERE ...`` or ``ORDER BY ...``."""


class Kind(NamedTuple):
    """An entry's id, type and kind: what decides how an operation treats it."""

    id: int
    type: EntryType
    kind: EntryKind


KIND_SELECT = "SELECT id, type, kind FROM entries "
"""Selects ``Kind``s; the caller adds ``WHERE ...``."""

SUBDIRS = (
    "WITH RECURSIVE sub(id) AS (SELECT CAST(? AS BIGINT) UNION ALL "
    "SELECT e.id FROM entries e JOIN sub ON e.parent_id = sub.id WHERE e.type = 'dir') "
)
"""A ``WITH`` clause naming ``sub``: the directory given and every directory below it."""
