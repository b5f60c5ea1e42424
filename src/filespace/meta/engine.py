"""The metadata engine contract.

Every read and write of metadata goes through an ``Engine``; nothing above
this package writes SQL. Each mutating method is one transaction: it either
happens whole or not at all, and the counters it touches change in the same
transaction as the rows they count. Engines raise the ``MetaError``
subclasses of ``meta.errors``; the layers above turn them into the public
errors with ``meta.errors.engine_errors``, adding the paths the engine never
sees.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from filespace.meta.errors import (
    IsDir,
    MetaError,
    NameTaken,
    NoSuchEntry,
    NoSuchStore,
    NotDir,
    NotEmpty,
    StoreBusy,
    StoreLimit,
    StoreTaken,
    WouldCycle,
)
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


class Engine(ABC):
    """One filespace's metadata, kept by some database."""

    url: str
    """The engine URL, without any password."""

    # -- life cycle --------------------------------------------------------
    @abstractmethod
    def exists(self) -> bool:
        """Whether the database holds a filespace."""

    @abstractmethod
    def initialize(self, settings: dict[str, str], now_ns: int) -> None:
        """Create the schema, the root directory and ``settings`` in one go."""

    @abstractmethod
    def migrate(self) -> None:
        """Bring the schema to the version this code writes (no-op when current)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; idempotent."""

    @abstractmethod
    def settings(self) -> dict[str, str]:
        """Every setting (filespace id, name, format version, ...)."""

    @abstractmethod
    def set_setting(self, name: str, value: str) -> None:
        """Create or replace one setting."""

    @abstractmethod
    def replace_key(
        self,
        old_check: str,
        settings: dict[str, str],
        secrets: Sequence[tuple[str, bytes, bytes]],
        key_id: str,
    ) -> None:
        """Reseal every secret under a new key in one transaction; ``KeyChanged`` if raced."""

    @abstractmethod
    def disable_connect(self) -> None:
        """Turn Connect off in one transaction, unless external links exist (``LinksExist``)."""

    # -- namespace ---------------------------------------------------------
    @abstractmethod
    def get(self, entry_id: int) -> EntryRecord | None:
        """The entry with that id, or ``None``."""

    @abstractmethod
    def lookup(self, parent_id: int, name: str) -> EntryRecord | None:
        """The entry called ``name`` in directory ``parent_id``, or ``None``."""

    @abstractmethod
    def lookup_path(self, parent_id: int, names: Sequence[str]) -> list[EntryRecord]:
        """The entries along ``names`` from ``parent_id``, read at one moment.

        As far as plain directories lead: it stops after a missing name (fewer
        records than names), a symbolic link or a file.
        """

    @abstractmethod
    def lookup_many(self, parent_id: int, names: Sequence[str]) -> dict[str, EntryRecord]:
        """The entries among ``names`` present in directory ``parent_id``, by name."""

    @abstractmethod
    def children(
        self, dir_id: int, after: str | None = None, limit: int | None = None
    ) -> list[EntryRecord]:
        """The entries of a directory, by name: those after ``after``, at most ``limit``."""

    @abstractmethod
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
        """Add an entry; ``NameTaken`` / ``NoSuchEntry`` (parent) / ``NoSuchStore``."""

    @abstractmethod
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
        """Add an entry under the directory reached by ``parent_names``, in one transaction.

        The walk follows no symbolic links: a missing, non-directory or symlink
        component raises ``NoSuchEntry`` (the caller may then resolve the path
        itself). ``store_name`` fills in the link's data store. Returns the id.
        """

    @abstractmethod
    def remove(self, entry_id: int) -> Removed:
        """Remove a file, symlink or empty directory (``NotEmpty``)."""

    @abstractmethod
    def remove_tree(self, dir_id: int) -> Removed:
        """Remove a directory and everything below it."""

    @abstractmethod
    def rename(
        self,
        entry_id: int,
        new_parent_id: int,
        new_name: str,
        now_ns: int,
        *,
        replace: bool = False,
    ) -> Removed:
        """Move an entry; ``NameTaken``, ``NoSuchEntry``, ``WouldCycle``.

        With ``replace`` an entry at the destination is replaced in the same
        transaction, as POSIX ``rename(2)`` does: a non-directory replaces a
        non-directory, a directory an empty directory (``NotEmpty``); ``IsDir`` /
        ``NotDir`` when one is a directory and the other is not; onto itself is a
        no-op. Returns what the replaced entry freed (``Removed``, as ``remove``).
        """

    @abstractmethod
    def path_of(self, entry_id: int) -> str:
        """The absolute path of an entry, walking its parents."""

    @abstractmethod
    def paths_of(self, entry_ids: Sequence[int]) -> list[str]:
        """Paths of many entries, sharing the directory walks."""

    # -- native file data --------------------------------------------------
    @abstractmethod
    def blocks(self, entry_id: int) -> list[BlockRecord]:
        """A native file's blocks, by index."""

    @abstractmethod
    def commit_data(
        self,
        entry_id: int,
        size: int,
        keep_below: int,
        blocks: Sequence[BlockRecord],
        now_ns: int,
    ) -> list[str]:
        """Drop blocks at or past index ``keep_below``, put ``blocks`` in, set the size.

        Returns the keys no longer referenced; ``NoSuchEntry`` if the file is gone.
        """

    @abstractmethod
    def block_keys(self) -> set[str]:
        """Every block key referenced (for sweeping the block store)."""

    # -- data stores ---------------------------------------------------------
    @abstractmethod
    def add_store(self, store: StoreRecord, limit: int) -> StoreRecord:
        """Add a store (``id`` is assigned); ``StoreTaken`` or ``StoreLimit``."""

    @abstractmethod
    def store(self, name: str) -> StoreRecord | None:
        """The store called ``name``."""

    @abstractmethod
    def store_by_id(self, store_id: int) -> StoreRecord | None:
        """The store with that id."""

    @abstractmethod
    def stores(self) -> list[StoreRecord]:
        """Every store, by name."""

    @abstractmethod
    def update_store(self, name: str, **changes: object) -> StoreRecord:
        """Change columns of one store; ``NoSuchStore``."""

    @abstractmethod
    def reseal_store(self, name: str, old: bytes, new: bytes) -> bool:
        """Replace a store's sealed secret ``old`` by ``new``; False if it is no longer ``old``."""

    @abstractmethod
    def remove_store(self, name: str) -> None:
        """Remove a store with no links; ``NoSuchStore`` or ``StoreBusy``."""

    # -- external links -----------------------------------------------------
    @abstractmethod
    def update_link(
        self, entry_id: int, *, size: int, checksum: str, url: str | None, now_ns: int
    ) -> None:
        """Point an existing link at new bytes (size, checksum, URL)."""

    @abstractmethod
    def links_page(self, store_id: int, after_entry_id: int, limit: int) -> LinkPage:
        """Up to ``limit`` linked entry ids of a store after ``after_entry_id``."""

    @abstractmethod
    def count_links(self, store_id: int) -> tuple[int, int]:
        """(files, bytes) linked to a store, from its counters."""

    @abstractmethod
    def remove_links(
        self, base_id: int, store_id: int | None, *, dry_run: bool = False, batch: int = 5000
    ) -> int:
        """Remove every external link below directory ``base_id`` (of ``store_id`` only if given).

        Server-side, in transactions of at most ``batch`` links, counters and
        parents' mtimes changed with each; native files, directories and symlinks
        stay. Returns how many; ``dry_run`` only counts. ``NoSuchEntry`` if the
        base is gone or not a directory.
        """

    # -- statistics ---------------------------------------------------------
    @abstractmethod
    def counters(self) -> Counters:
        """The filespace-wide counters (files, dirs, sizes, ...)."""

    # -- bulk links and mirroring -------------------------------------------------
    @abstractmethod
    def make_dirs(
        self, chains: Sequence[tuple[int, Sequence[str]]], now_ns: int
    ) -> list[list[int] | None]:
        """Make each chain of names as nested directories under a directory, in one transaction.

        A chain is ``(existing_dir_id, names)``; directories already there are used
        as they are. Gives, per chain, the ids of its directories in order, or
        ``None`` when the start is gone or something other than a directory is in
        the way. From ``ROOT_ID`` this is ``mkdir -p`` of an absolute path.
        """

    @abstractmethod
    def create_links(
        self, store_id: int, rows: Sequence[LinkRow], now_ns: int
    ) -> list[tuple[int, type[MetaError]]]:
        """Link many objects of one store in one transaction.

        Returns the rows
        not linked as ``(row index, NameTaken | NoSuchEntry)`` (the parent is not a
        directory); every other row is linked, counters included, all or nothing.
        ``NoSuchStore`` if the store is gone.
        """

    @abstractmethod
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
        """Make each row a link of the store, confirmed with ``mark``, in one transaction.

        A row's ``dir`` is relative to the directory ``base_id``; missing directories are made. A
        row's path gets a new link ("added"), keeps a link to the same object
        ("unchanged"), or has its link re-pointed ("updated": another key, store,
        ETag or size); anything else there (native file, directory, symlink) skips
        the row. With ``delete``, a link of this store found where a directory must
        go is removed ("removed"). Returns those counts, plus "kept" (links of
        this store that were there), and ``(row index, reason)`` per skipped row
        (``MirrorCounts``).
        ``dry_run`` changes nothing and counts the same. ``NoSuchEntry`` if the
        base is gone, ``NoSuchStore`` if the store is.
        """

    @abstractmethod
    def sweep_links(
        self,
        store_id: int,
        base_id: int,
        keep_mark: int,
        *,
        dry_run: bool = False,
        batch: int = 5000,
    ) -> int:
        """Remove the store's links under ``base_id`` not marked ``keep_mark``; how many.

        Works through the subtree in transactions of at most ``batch`` links;
        ``dry_run`` only counts them.
        """

    @abstractmethod
    def apply_events(
        self, store_id: int, base_id: int, rows: Sequence[EventRow], now_ns: int
    ) -> EventCounts:
        """Apply bucket events (one per key at most) below ``base_id``, in one transaction.

        An event not later (by sequencer) than the last one applied for its key
        under this base (kept on the link, or in a removal's tombstone) is
        "stale" and changes nothing. A removal drops the store's link to its key
        at its path ("removed"; "unchanged" if there is none) and leaves a
        tombstone; a creation is a ``mirror_batch`` row (added, updated,
        unchanged, skipped, with ``delete``) whose link then keeps the
        sequencer. ``NoSuchEntry`` if the base is gone, ``NoSuchStore`` if the
        store is.
        """


__all__ = [
    "Engine",
    "IsDir",
    "MetaError",
    "NameTaken",
    "NoSuchEntry",
    "NoSuchStore",
    "NotDir",
    "NotEmpty",
    "StoreBusy",
    "StoreLimit",
    "StoreTaken",
    "WouldCycle",
]
