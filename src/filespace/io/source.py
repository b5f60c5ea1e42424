"""What a block ``Reader`` reads from: one object, fetched by byte range.

Two kinds implement it: an external object (ranged GETs of a linked object or
URL, ``io.external.ExternalObject``) and a native file's blocks in a block
store (``blocks.native.StoredBlocks``). The reader does the rest (readahead,
single flight, the cache) the same way for both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from filespace.objects import http
from filespace.objects.pace import Pace


class BlockSource(Protocol):
    """Where the bytes come from; ``latency`` None: no near-server streaming."""

    path: str
    size: int
    latency: float | None  # time to first byte seen so far, if any

    @property
    def pace(self) -> Pace | None:
        """The server's pace (``objects.pace``): readahead shrinks while it throttles."""

    def stream(
        self,
        start: int,
        end: int,
        piece: int,
        deliver: Callable[[int, memoryview], None],
        batch: int = 1,
    ) -> None:
        """Deliver ``[start, end)`` in ``piece``-aligned pieces; raise ``http.RangeError``."""

    def open_stream(self, start: int, end: int) -> http.RangeStream:
        """A stream of ``[start, end)`` that reads into the caller's buffers."""

    def check(self, offset: int) -> None:
        """One small request that fails (``http.RangeError``) if the object changed."""

    def error(self, problem: http.RangeError) -> OSError:
        """The ``OSError`` a reader raises for ``problem``."""
