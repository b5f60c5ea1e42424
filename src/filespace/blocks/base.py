"""Where native files keep their bytes: immutable, content-addressed-by-name blocks.

A block is written once under a fresh key and never changed; a file's blocks
are listed in the metadata engine. New blocks are written (and made durable)
before the metadata that points at them commits, so a crash leaves at worst
blocks nothing references, which ``sweep`` removes.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator


def new_block_key() -> str:
    """A fresh, never-reused block key."""
    return uuid.uuid4().hex


class BlockStore(ABC):
    """Put, get and delete immutable blocks by key."""

    url: str

    @abstractmethod
    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Store a block durably under ``key``."""

    @abstractmethod
    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes of a block (``length`` None: to its end); a missing block raises ``OSError``."""

    @abstractmethod
    def delete(self, keys: Iterable[str]) -> None:
        """Remove blocks; keys already gone are ignored."""

    @abstractmethod
    def keys(self) -> Iterator[str]:
        """Every block key held."""

    def sweep(self, referenced: set[str]) -> int:
        """Delete every block not in ``referenced``; returns how many."""
        stale = [key for key in self.keys() if key not in referenced]
        self.delete(stale)
        return len(stale)

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release resources; idempotent."""
