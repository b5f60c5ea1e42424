"""Plain records the metadata engine returns and takes.

They carry no behaviour and no secrets in clear: a data store's secret is
held only in its sealed form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

EntryType = Literal["file", "dir", "link"]
EntryKind = Literal["native", "s3", "http"]

ROOT_ID = 1


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """Where an external file's bytes live."""

    kind: EntryKind  # "s3" or "http"
    size: int
    checksum: str
    linked_ns: int
    data_store_id: int | None = None
    data_store_name: str | None = None
    object_key: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """One row of the namespace: a directory, file or symlink."""

    id: int
    parent_id: int | None
    name: str
    type: EntryType
    kind: EntryKind
    size: int
    ctime_ns: int
    mtime_ns: int
    target: str | None = None
    link: LinkRecord | None = None

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"


@dataclass(frozen=True, slots=True)
class NewLink:
    """What a caller gives to create an external link."""

    size: int
    checksum: str
    data_store_id: int | None = None
    object_key: str | None = None
    url: str | None = None

    @property
    def kind(self) -> EntryKind:
        return "http" if self.url is not None else "s3"


@dataclass(frozen=True, slots=True)
class StoreRecord:
    """A data store as the engine keeps it (secret sealed)."""

    id: int
    uid: str
    name: str
    kind: str
    bucket: str
    region: str
    endpoint: str
    virtual_addressing: bool
    url_expiration_minutes: int
    access_key: str
    sealed_secret: bytes = field(repr=False)
    key_id: str
    rekey_state: str
    created_ns: int


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """One block of a native file's data."""

    index: int
    key: str
    length: int


@dataclass(frozen=True, slots=True)
class LinkPage:
    """One page of a data store's links, in entry-id order."""

    entry_ids: list[int]
    has_more: bool


@dataclass(frozen=True, slots=True)
class Removed:
    """What a removal freed: block keys to delete from the block store."""

    entries: int
    block_keys: list[str]


class Counters(NamedTuple):
    """The filespace-wide counters, summed over their shards."""

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    entries_size: int = 0
    data_size: int = 0
    storage_size: int = 0
    external_files: int = 0
    external_size: int = 0


class LinkRow(NamedTuple):
    """A new link of a bulk ``create_links``: an object of the store under a directory."""

    parent_id: int
    name: str
    object_key: str
    size: int
    checksum: str
    sequencer: str | None = None
    """The event sequencer the link starts with (``meta.events``); ``None`` elsewhere."""


class MirrorRow(NamedTuple):
    """An object to mirror: ``dir`` is relative to the mirror's base (``""``, ``"a/b"``)."""

    dir: str
    name: str
    object_key: str
    size: int
    etag: str
    sequencer: str | None = None
    """For an event's row: the sequencer its link keeps (see ``MirrorPass``)."""


class MirrorCounts(NamedTuple):
    """What one mirror batch did (or would do, in a dry run), and the rows it skipped."""

    added: int
    updated: int
    unchanged: int
    removed: int
    kept: int
    """Links of this store that were already at a row's path."""
    skipped: list[tuple[int, str]]
    """``(row index, reason)`` per row left alone, by index."""


class EventRow(NamedTuple):
    """One object's latest event in a batch: its path under the base, and what happened.

    ``sequencer`` is normalized (lowercase hex, no leading zeros), ``""`` when the
    event had none; ``size`` and ``etag`` are those of a created object.
    """

    dir: str
    name: str
    object_key: str
    size: int
    etag: str
    sequencer: str
    removed: bool


class EventCounts(NamedTuple):
    """What one event batch did, and the rows it skipped."""

    added: int
    updated: int
    unchanged: int
    removed: int
    stale: int
    skipped: list[tuple[int, str]]
    """``(row index, reason)`` per row left alone, by index."""
