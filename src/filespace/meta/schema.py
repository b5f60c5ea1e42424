"""The metadata schema, written once for every SQL engine.

Column types that differ between databases are placeholders each dialect
fills in (``{int}`` 64-bit integers, ``{blob}`` bytes, and the two generated
primary keys), so a schema change is made in one place for all of them.
"""

from __future__ import annotations

SCHEMA_VERSION = 2
"""The schema version this code writes; ``migrate`` brings older ones up to it.

Version 2 added ``external_links.sequencer`` and ``event_tombstones`` (following
a bucket's event notifications, ``meta.events``).
"""

SCHEMA_TEMPLATE = [
    """CREATE TABLE IF NOT EXISTS settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS entries (
        id {entry_key},
        parent_id {int} REFERENCES entries (id),
        name TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('file', 'dir', 'link')),
        kind TEXT NOT NULL CHECK (kind IN ('native', 's3', 'http')),
        size {int} NOT NULL CHECK (size >= 0),
        ctime_ns {int} NOT NULL,
        mtime_ns {int} NOT NULL,
        target TEXT,
        UNIQUE (parent_id, name)
    )""",
    """CREATE TABLE IF NOT EXISTS blocks (
        entry_id {int} NOT NULL REFERENCES entries (id),
        idx {int} NOT NULL,
        block_key TEXT NOT NULL,
        length {int} NOT NULL,
        PRIMARY KEY (entry_id, idx)
    )""",
    """CREATE TABLE IF NOT EXISTS counters (
        shard INTEGER PRIMARY KEY,
        files {int} NOT NULL DEFAULT 0,
        dirs {int} NOT NULL DEFAULT 0,
        symlinks {int} NOT NULL DEFAULT 0,
        entries_size {int} NOT NULL DEFAULT 0,
        data_size {int} NOT NULL DEFAULT 0,
        storage_size {int} NOT NULL DEFAULT 0,
        external_files {int} NOT NULL DEFAULT 0,
        external_size {int} NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS data_stores (
        id {store_key},
        uid TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        bucket TEXT NOT NULL,
        region TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        virtual_addressing INTEGER NOT NULL,
        url_expiration_minutes INTEGER NOT NULL,
        access_key TEXT NOT NULL,
        sealed_secret {blob} NOT NULL,
        key_id TEXT NOT NULL,
        rekey_state TEXT NOT NULL,
        created_ns {int} NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS external_links (
        entry_id {int} PRIMARY KEY REFERENCES entries (id),
        data_store_id {int} REFERENCES data_stores (id),
        object_key TEXT,
        url TEXT,
        size {int} NOT NULL CHECK (size >= 0),
        checksum TEXT NOT NULL,
        linked_ns {int} NOT NULL,
        mirror_mark {int},
        sequencer TEXT
    )""",
    """CREATE INDEX IF NOT EXISTS external_links_by_store
        ON external_links (data_store_id, entry_id)""",
    """CREATE TABLE IF NOT EXISTS store_counters (
        data_store_id {int} NOT NULL REFERENCES data_stores (id),
        shard INTEGER NOT NULL,
        files {int} NOT NULL,
        bytes {int} NOT NULL,
        PRIMARY KEY (data_store_id, shard)
    )""",
    """CREATE TABLE IF NOT EXISTS event_tombstones (
        base_id {int} NOT NULL,
        data_store_id {int} NOT NULL,
        object_key TEXT NOT NULL,
        sequencer TEXT NOT NULL,
        recorded_ns {int} NOT NULL,
        PRIMARY KEY (base_id, data_store_id, object_key)
    )""",
    """CREATE INDEX IF NOT EXISTS event_tombstones_by_age ON event_tombstones (recorded_ns)""",
]

MIGRATIONS: dict[int, list[str]] = {
    2: ["ALTER TABLE external_links ADD COLUMN sequencer TEXT"],
}
"""The statements that bring a schema from the version before up to each version.

Tables and indexes a version adds need no entry: ``migrate`` runs the whole
schema first, and every statement of it is ``IF NOT EXISTS``.
"""


def render_schema(*, int_type: str, blob_type: str, entry_key: str, store_key: str) -> list[str]:
    """The DDL statements with this database's column types."""
    return [
        statement.format(int=int_type, blob=blob_type, entry_key=entry_key, store_key=store_key)
        for statement in SCHEMA_TEMPLATE
    ]
