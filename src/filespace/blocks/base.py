"""Where native files keep their bytes: immutable, content-addressed-by-name blocks.

A block is written once under a fresh key and never changed; a file's blocks
are listed in the metadata engine. New blocks are written (and made durable)
before the metadata that points at them commits, so a crash leaves at worst
blocks nothing references, which ``sweep`` removes.

Sweeping races with writers: a block a writer has stored but not yet committed
is unreferenced for a while. ``sweep`` therefore deletes only blocks last
modified before a cutoff, and callers put the cutoff a grace period before the
moment they read the referenced set (see ``Filespace.sweep_blocks``).

A store is *claimed* by one filespace (a small marker naming its id), so two
filespaces pointed at the same directory or prefix are refused at creation and
never sweep each other's blocks.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from filespace.objects.pace import Pace


def new_block_key() -> str:
    """A fresh, never-reused block key: 32 hex digits, 120 of their bits random.

    The first two digits count seconds (mod 256), so blocks written together
    share a folder of the local store (one directory fsync for a batch) and,
    over time, spread evenly over all 256.
    """
    tick = (time.time_ns() >> 30) & 0xFF  # about a second
    return f"{tick:02x}{uuid.uuid4().hex[2:]}"


def check_block_key(key: str) -> str:
    """``key`` if it can be a block key (letters and digits), else ``ValueError``."""
    if not key.isascii() or not key.isalnum() or len(key) < 3:
        raise ValueError(f"invalid block key {key!r}")
    return key


class BlockWriter(Protocol):
    """One block being written front to back; ``length`` bytes so far."""

    length: int

    def write(self, data: memoryview) -> None:
        """Append ``data`` (all of it, or raise ``OSError``)."""

    def close(self) -> None:
        """Finish the block: stored, durable after ``BlockStore.sync``."""


@dataclass(frozen=True, slots=True)
class BlockStamp:
    """A stored block and when it was last written (Unix seconds)."""

    key: str
    modified: float


class BlockStore(ABC):
    """Put, get and delete immutable blocks by key."""

    url: str
    put_concurrency = 1  # blocks ``put_many`` writes at once
    remote = False  # reads cost a round trip: readers fetch whole blocks and read ahead

    @property
    def pace(self) -> Pace | None:
        """The pace of the server behind the store (``objects.pace``), if it has one."""
        return None

    @abstractmethod
    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Store a block durably under ``key``."""

    @abstractmethod
    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes of a block (``length`` None: to its end); a missing block raises ``OSError``."""

    def readinto(self, key: str, offset: int, target: memoryview) -> int:
        """Read block bytes from ``offset`` into ``target``; returns how many (short at its end)."""
        data = self.get(key, offset, len(target))
        target[: len(data)] = data
        return len(data)

    @abstractmethod
    def delete(self, keys: Iterable[str]) -> None:
        """Remove blocks; keys already gone are ignored."""

    @abstractmethod
    def stamps(self) -> Iterator[BlockStamp]:
        """Every block held, with its last-modified time."""

    @abstractmethod
    def owner(self) -> str | None:
        """The id of the filespace that claimed this store, if any."""

    @abstractmethod
    def claim(self, filespace_id: str) -> None:
        """Mark the store as holding the blocks of ``filespace_id``.

        ``FileExistsError`` if another filespace claimed it or it already holds blocks.
        """

    @abstractmethod
    def release(self, filespace_id: str) -> None:
        """Undo ``claim(filespace_id)`` (a failed ``create``); another filespace's claim stays."""

    def put_many(
        self, blocks: Sequence[tuple[str, bytes | bytearray | memoryview]], *, durable: bool = True
    ) -> None:
        """Store several blocks, ``put_concurrency`` at a time; all are stored on return.

        With ``durable=False`` a store may leave making them durable to ``sync``.
        """
        if len(blocks) <= 1 or self.put_concurrency <= 1:
            for key, data in blocks:
                self.put(key, data)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.put_concurrency, len(blocks))) as pool:
            futures = [pool.submit(self.put, key, data) for key, data in blocks]
            for future in futures:
                future.result()

    def open_writer(self, key: str) -> BlockWriter | None:
        """A writer that streams a new block in as it comes, or ``None``: whole blocks only."""
        return None

    def sync(self, keys: Iterable[str]) -> None:  # noqa: B027 - most puts are durable at once
        """Make blocks stored with ``put_many(..., durable=False)`` durable."""

    def keys(self) -> Iterator[str]:
        """Every block key held."""
        return (stamp.key for stamp in self.stamps())

    def is_empty(self) -> bool:
        """Whether the store holds no block."""
        return next(iter(self.stamps()), None) is None

    def check_claimable(self, filespace_id: str) -> None:
        """Raise ``FileExistsError`` unless ``claim(filespace_id)`` would succeed."""
        owner = self.owner()
        if owner is not None and owner != filespace_id:
            raise FileExistsError(17, f"the block store belongs to filespace {owner}", self.url)
        if owner is None and not self.is_empty():
            raise FileExistsError(17, "the block store already holds blocks", self.url)

    def sweep(self, referenced: set[str], *, older_than: float) -> int:
        """Delete blocks not in ``referenced`` last modified before ``older_than``.

        Returns how many were deleted.
        """
        deleted = 0
        batch: list[str] = []
        for stamp in self.stamps():
            if stamp.key in referenced or stamp.modified >= older_than:
                continue
            batch.append(stamp.key)
            if len(batch) >= 1000:
                self.delete(batch)
                deleted += len(batch)
                batch = []
        self.delete(batch)
        return deleted + len(batch)

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release resources; idempotent."""
