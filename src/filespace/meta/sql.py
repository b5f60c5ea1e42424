"""``SqlEngine``: the ``Engine`` contract over any SQL database a ``Dialect`` describes.

A thin facade: each method hands its operation (``namespace``, ``moves``,
``data``, ``stores``, ``bulk``, ``mirror``, ``unlink``, ``lifecycle``) to
``meta.txn.run``, which runs it in one transaction under the one retry policy.
Operations made of several transactions (sweeping, removing links in batches)
take the dialect and run each of their transactions the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from filespace.meta import bulk, counters, data, events, lifecycle, moves, namespace, stores
from filespace.meta.dialect import Dialect
from filespace.meta.engine import Engine
from filespace.meta.errors import MetaError
from filespace.meta.mirror import mirror_batch, sweep_links
from filespace.meta.records import (
    BlockRecord,
    Counters,
    EntryRecord,
    EntryType,
    EventCounts,
    EventRow,
    LinkPage,
    LinkRow,
    MirrorCounts,
    MirrorRow,
    NewLink,
    Removed,
    StoreRecord,
)
from filespace.meta.txn import Tx, retry, run
from filespace.meta.unlink import remove_links

T = TypeVar("T")


class SqlEngine(Engine):
    """``Engine`` over the SQL database ``dialect`` describes."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.url = dialect.url

    def _read(self, work: Callable[[Tx], T]) -> T:
        return run(self.dialect, work, write=False)

    def _write(self, work: Callable[[Tx], T]) -> T:
        return run(self.dialect, work, write=True)

    # -- life cycle ---------------------------------------------------------------------
    def exists(self) -> bool:
        if not retry(self.dialect, lambda _: self.dialect.has_schema()):
            return False
        return self._read(lifecycle.has_filespace)

    def initialize(self, settings: dict[str, str], now_ns: int) -> None:
        schema = self.dialect.schema()
        self._write(lambda tx: lifecycle.initialize(tx, schema, settings, now_ns))

    def migrate(self) -> None:
        schema = self.dialect.schema()
        self._write(lambda tx: lifecycle.migrate(tx, schema))

    def close(self) -> None:
        self.dialect.close()

    def settings(self) -> dict[str, str]:
        return self._read(lifecycle.settings)

    def set_setting(self, name: str, value: str) -> None:
        self._write(lambda tx: lifecycle.set_setting(tx, name, value))

    def replace_key(
        self,
        old_check: str,
        settings: dict[str, str],
        secrets: Sequence[tuple[str, bytes, bytes]],
        key_id: str,
    ) -> None:
        self._write(lambda tx: lifecycle.replace_key(tx, old_check, settings, secrets, key_id))

    def disable_connect(self) -> None:
        self._write(lifecycle.disable_connect)

    # -- namespace ----------------------------------------------------------------------
    def get(self, entry_id: int) -> EntryRecord | None:
        return self._read(lambda tx: namespace.get(tx, entry_id))

    def lookup(self, parent_id: int, name: str) -> EntryRecord | None:
        return self._read(lambda tx: namespace.lookup(tx, parent_id, name))

    def lookup_path(self, parent_id: int, names: Sequence[str]) -> list[EntryRecord]:
        return self._read(lambda tx: namespace.lookup_path(tx, parent_id, names))

    def lookup_many(self, parent_id: int, names: Sequence[str]) -> dict[str, EntryRecord]:
        return self._read(lambda tx: namespace.lookup_many(tx, parent_id, names))

    def children(
        self, dir_id: int, after: str | None = None, limit: int | None = None
    ) -> list[EntryRecord]:
        return self._read(lambda tx: namespace.children(tx, dir_id, after, limit))

    def create(
        self,
        parent_id: int,
        name: str,
        type: EntryType,
        now_ns: int,
        *,
        target: str | None = None,
        link: NewLink | None = None,
    ) -> EntryRecord:
        return self._write(
            lambda tx: namespace.create(tx, parent_id, name, type, now_ns, target, link)
        )

    def create_at(
        self,
        parent_names: Sequence[str],
        name: str,
        type: EntryType,
        now_ns: int,
        *,
        target: str | None = None,
        link: NewLink | None = None,
        store_name: str | None = None,
    ) -> int:
        return self._write(
            lambda tx: namespace.create_at(
                tx, parent_names, name, type, now_ns, target, link, store_name
            )
        )

    def remove(self, entry_id: int) -> Removed:
        return self._write(lambda tx: namespace.remove(tx, entry_id))

    def remove_tree(self, dir_id: int) -> Removed:
        return self._write(lambda tx: namespace.remove_tree(tx, dir_id))

    def rename(
        self,
        entry_id: int,
        new_parent_id: int,
        new_name: str,
        now_ns: int,
        *,
        replace: bool = False,
    ) -> Removed:
        return self._write(
            lambda tx: moves.rename(tx, entry_id, new_parent_id, new_name, now_ns, replace=replace)
        )

    def path_of(self, entry_id: int) -> str:
        return self.paths_of([entry_id])[0]

    def paths_of(self, entry_ids: Sequence[int]) -> list[str]:
        return self._read(lambda tx: namespace.paths_of(tx, entry_ids))

    # -- native file data ---------------------------------------------------------------
    def blocks(self, entry_id: int) -> list[BlockRecord]:
        return self._read(lambda tx: data.blocks(tx, entry_id))

    def commit_data(
        self,
        entry_id: int,
        size: int,
        keep_below: int,
        blocks: Sequence[BlockRecord],
        now_ns: int,
    ) -> list[str]:
        return self._write(
            lambda tx: data.commit_data(tx, entry_id, size, keep_below, blocks, now_ns)
        )

    def block_keys(self) -> set[str]:
        return self._read(data.block_keys)

    # -- data stores --------------------------------------------------------------------
    def add_store(self, store: StoreRecord, limit: int) -> StoreRecord:
        return self._write(lambda tx: stores.add(tx, store, limit))

    def store(self, name: str) -> StoreRecord | None:
        return self._read(lambda tx: stores.find(tx, "name = ?", name))

    def store_by_id(self, store_id: int) -> StoreRecord | None:
        return self._read(lambda tx: stores.find(tx, "id = ?", store_id))

    def stores(self) -> list[StoreRecord]:
        return self._read(stores.all_stores)

    def update_store(self, name: str, **changes: object) -> StoreRecord:
        return self._write(lambda tx: stores.update(tx, name, changes))

    def reseal_store(self, name: str, old: bytes, new: bytes) -> bool:
        return self._write(lambda tx: stores.reseal(tx, name, old, new))

    def remove_store(self, name: str) -> None:
        self._write(lambda tx: stores.remove(tx, name))

    # -- external links -----------------------------------------------------------------
    def update_link(
        self, entry_id: int, *, size: int, checksum: str, url: str | None, now_ns: int
    ) -> None:
        self._write(
            lambda tx: stores.update_link(
                tx, entry_id, size=size, checksum=checksum, url=url, now_ns=now_ns
            )
        )

    def links_page(self, store_id: int, after_entry_id: int, limit: int) -> LinkPage:
        return self._read(lambda tx: stores.links_page(tx, store_id, after_entry_id, limit))

    def count_links(self, store_id: int) -> tuple[int, int]:
        return self._read(lambda tx: counters.read_store(tx, store_id))

    def remove_links(
        self, base_id: int, store_id: int | None, *, dry_run: bool = False, batch: int = 5000
    ) -> int:
        return remove_links(self.dialect, base_id, store_id, dry_run=dry_run, batch=batch)

    # -- statistics ---------------------------------------------------------------------
    def counters(self) -> Counters:
        return self._read(counters.read)

    # -- bulk links and mirroring -------------------------------------------------------
    def make_dirs(
        self, chains: Sequence[tuple[int, Sequence[str]]], now_ns: int
    ) -> list[list[int] | None]:
        return self._write(lambda tx: bulk.make_dirs(tx, chains, now_ns))

    def create_links(
        self, store_id: int, rows: Sequence[LinkRow], now_ns: int
    ) -> list[tuple[int, type[MetaError]]]:
        return self._write(lambda tx: bulk.create_links(tx, store_id, rows, now_ns))

    def mirror_batch(
        self,
        store_id: int,
        base_id: int,
        rows: Sequence[MirrorRow],
        mark: int,
        now_ns: int,
        *,
        delete: bool,
        dry_run: bool,
    ) -> MirrorCounts:
        return run(
            self.dialect,
            lambda tx: mirror_batch(
                tx, store_id, base_id, rows, mark, now_ns, delete=delete, dry_run=dry_run
            ),
            write=not dry_run,
        )

    def sweep_links(
        self,
        store_id: int,
        base_id: int,
        keep_mark: int,
        *,
        dry_run: bool = False,
        batch: int = 5000,
    ) -> int:
        return sweep_links(self.dialect, store_id, base_id, keep_mark, dry_run=dry_run, batch=batch)

    def apply_events(
        self, store_id: int, base_id: int, rows: Sequence[EventRow], now_ns: int
    ) -> EventCounts:
        return self._write(lambda tx: events.apply_events(tx, store_id, base_id, rows, now_ns))
