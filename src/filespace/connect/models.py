"""Connect's data classes and enums, with the reference SDK's names and defaults.

Objects that hold a secret never show it in their ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Literal

DEFAULT_URL_EXPIRATION_MINUTES = 10080


def _masked_repr(obj: Any) -> str:
    parts = []
    for item in fields(obj):
        value = getattr(obj, item.name)
        if item.name == "secret_key":
            value = "***" if value else ""
        parts.append(f"{item.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


class DataStoreKind(StrEnum):
    """The kinds of data store."""

    S3 = "S3DataStore"


class DataStoreRekeyState(StrEnum):
    """Whether a data store's credentials are being rotated."""

    NO_REKEY = "no_rekey"
    IN_PROGRESS = "in_progress"


@dataclass(repr=False)
class S3DataStoreConfig:
    """How to reach a bucket: credentials, bucket, region, endpoint, URL lifetime."""

    access_key: str
    secret_key: str
    bucket_name: str
    region: str
    endpoint: str = ""
    url_expiration_minutes: int = DEFAULT_URL_EXPIRATION_MINUTES
    use_virtual_addressing: bool = False

    __repr__ = _masked_repr


@dataclass(repr=False)
class S3Credentials:
    """An access key and secret key, for ``rekey_data_store``."""

    access_key: str
    secret_key: str

    __repr__ = _masked_repr


@dataclass(repr=False)
class DataStoreInfo:
    """A data store as returned by Connect (``secret_key`` empty unless asked for)."""

    name: str
    access_key: str
    secret_key: str
    bucket_name: str
    region: str
    endpoint: str
    url_expiration_minutes: int
    use_virtual_addressing: bool
    kind: DataStoreKind = DataStoreKind.S3
    key_id: str = ""
    rekey_state: DataStoreRekeyState = DataStoreRekeyState.NO_REKEY

    __repr__ = _masked_repr


@dataclass
class LinkedFilesResult:
    """One page of a data store's linked files."""

    file_paths: list[str]
    file_ids: list[int]
    has_more: bool
    cursor: str


@dataclass(frozen=True)
class ExternalFileInfo:
    """Where an external file's bytes come from."""

    path: str
    kind: Literal["s3", "http"]
    data_store_name: str | None
    object_id: str | None
    url: str | None
    size: int
    checksum: str
    linked_at: int  # Unix seconds


@dataclass(frozen=True)
class ConnectSettings:
    """Connect's settings for this filespace, changed only by a keyholder.

    ``allow_private_urls``: whether HTTP links may reach loopback, private,
    link-local (cloud metadata), unspecified, multicast and reserved
    addresses; off by default (see ``ConnectManager.configure``).
    """

    allow_private_urls: bool = False


@dataclass(frozen=True)
class LinkItem:
    """One object to link in ``link_files``."""

    file_path: str
    object_id: str
    size: int | None = None
    checksum: str = ""


@dataclass
class LinkFailure:
    """Why one item of ``link_files`` or ``mirror`` was not linked."""

    file_path: str
    object_id: str
    reason: str


@dataclass
class LinkReport:
    """What ``link_files`` did: how many were linked and which failed why."""

    linked: int = 0
    failed: list[LinkFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class SkippedKey:
    """An object ``mirror`` could not represent as a path, and why."""

    object_id: str
    reason: str


@dataclass
class MirrorReport:
    """What ``mirror`` did (or, with ``dry_run``, would do)."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[SkippedKey] = field(default_factory=list)
    dry_run: bool = False

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


MirrorProgress = Callable[[MirrorReport], None]
"""Called now and then during ``mirror`` with the report so far."""


@dataclass
class SyncReport:
    """What ``apply_events`` (or a follower, so far) did with bucket event records.

    Each record lands in exactly one count: ``added``, ``updated`` (re-pointed)
    and ``removed`` links; ``unchanged`` (the tree already said so: a removal
    of what is not linked, a creation of what is linked as it is); ``ignored``
    (another bucket, outside the prefix, an event kind that changes no object,
    a directory marker); ``stale`` (not later than the last event applied for
    its key, or superseded by a later one in the same batch); ``skipped``
    (keys that cannot be paths, or whose path something else holds, with
    ``mirror``'s reasons); ``errors`` (records or documents that are not
    readable event records, each with what is wrong).
    """

    added: int = 0
    updated: int = 0
    removed: int = 0
    ignored: int = 0
    stale: int = 0
    skipped: list[SkippedKey] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def records(self) -> int:
        """How many records the counts cover."""
        return (
            self.added
            + self.updated
            + self.removed
            + self.ignored
            + self.stale
            + self.unchanged
            + len(self.skipped)
            + len(self.errors)
        )

    def add(self, other: SyncReport) -> None:
        """Count ``other`` in too."""
        for name in ("added", "updated", "removed", "ignored", "stale", "unchanged"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.extend(other.skipped)
        self.errors.extend(other.errors)
