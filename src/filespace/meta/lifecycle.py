"""A filespace's life in its database: creating the schema, migrating it, its settings."""

from __future__ import annotations

from collections.abc import Sequence

from filespace.meta import counters
from filespace.meta.errors import KeyChanged, LinksExist, NameTaken
from filespace.meta.records import ROOT_ID
from filespace.meta.schema import MIGRATIONS, SCHEMA_VERSION
from filespace.meta.txn import Tx


def has_filespace(tx: Tx) -> bool:
    """Whether the settings name a filespace."""
    return tx.value("SELECT value FROM settings WHERE name = 'filespace_id'") is not None


def initialize(tx: Tx, schema: list[str], settings: dict[str, str], now_ns: int) -> None:
    """Run the DDL ``schema``, then add ``settings`` and the root directory."""
    for statement in schema:
        tx.run(statement)
    if has_filespace(tx):
        raise NameTaken("a filespace already exists here")
    values = {**settings, "schema_version": str(SCHEMA_VERSION)}
    tx.many("INSERT INTO settings (name, value) VALUES (?, ?)", sorted(values.items()))
    tx.run(
        "INSERT INTO entries (id, parent_id, name, type, kind, size, ctime_ns, mtime_ns)"
        " VALUES (?, NULL, '', 'dir', 'native', 0, ?, ?)",
        ROOT_ID,
        now_ns,
        now_ns,
    )


def migrate(tx: Tx, schema: list[str]) -> None:
    """Bring the schema to ``SCHEMA_VERSION``, in this one transaction.

    ``schema`` (the DDL, every statement ``IF NOT EXISTS``) runs first and adds
    what later versions added as whole tables and indexes; then each version's
    own steps (``MIGRATIONS``: new columns) run in order from the one found.
    """
    found = tx.value("SELECT value FROM settings WHERE name = 'schema_version'")
    version = int(found) if found is not None else 0
    if version >= SCHEMA_VERSION:
        return
    for statement in schema:
        tx.run(statement)
    for step in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS.get(step, []):
            tx.run(statement)
    tx.run(
        "INSERT INTO settings (name, value) VALUES ('schema_version', ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        str(SCHEMA_VERSION),
    )


def settings(tx: Tx) -> dict[str, str]:
    """Every setting."""
    return {str(name): str(value) for name, value in tx.all("SELECT name, value FROM settings")}


def set_setting(tx: Tx, name: str, value: str) -> None:
    """Create or replace one setting."""
    tx.run(
        "INSERT INTO settings (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        name,
        value,
    )


def disable_connect(tx: Tx) -> None:
    """Turn Connect off, unless any external link (S3 or HTTP) exists: ``LinksExist``."""
    linked = counters.read(tx).external_files
    if linked:
        raise LinksExist(linked)
    set_setting(tx, "connect_enabled", "0")


def replace_key(
    tx: Tx,
    old_check: str,
    settings: dict[str, str],
    secrets: Sequence[tuple[str, bytes, bytes]],
    key_id: str,
) -> None:
    """Put a new filespace key in place: every sealed value and the key's check, at once.

    ``secrets`` holds ``(store name, sealed as read, sealed under the new key)``;
    ``settings`` the new key check and id and the resealed settings.
    ``KeyChanged`` (and nothing changed) if the key was replaced meanwhile, a
    store's secret changed since it was read, or a store was added.
    """
    current = tx.value("SELECT value FROM settings WHERE name = 'key_check'" + tx.dialect.row_lock)
    if current != old_check:
        raise KeyChanged("the filespace key was replaced meanwhile")
    for name, old, new in secrets:
        changed = tx.run(
            "UPDATE data_stores SET sealed_secret = ?, key_id = ?"
            " WHERE name = ? AND sealed_secret = ?",
            new,
            key_id,
            name,
            old,
        )
        if not changed:
            raise KeyChanged(f"data store {name} changed meanwhile")
    if int(tx.value("SELECT COUNT(*) FROM data_stores WHERE key_id <> ?", key_id)):
        raise KeyChanged("a data store was added meanwhile")
    for name, value in settings.items():
        set_setting(tx, name, value)
