"""Streams over external files: ranged GETs of a linked object or URL.

The object's identity (ETag and size at link time) goes with every request,
so a changed or deleted object fails with ``ESTALE`` instead of returning
bytes of another version. Presigned URLs come from a provider that re-signs
them before they expire; a URL refused as expired is re-signed once at once.

``open`` of an external file gives an ``ExternalBufferedReader`` (a
``BufferedReader`` that tells the raw file how much the caller asked for)
over an ``ExternalRawFile``, whose reads go through a
:class:`~filespace.io.prefetch.Reader`: block-aligned, cached, prefetched on
sequential access. What a reader can rely on when the object changes is in
that module's docstring: cached blocks are always the linked version's bytes;
a buffered handle confirms the object with the server on its first read and
may then serve the blocks it finds cached (with a revalidation window, its
first read too, if the server confirmed the object less than that long ago);
an unbuffered one (``buffering=0``) confirms on every read.

An HTTP link's requests carry a guard: their connections reach only public
addresses unless the provider says private URLs are allowed (asked when a
host resolves to a private one), else the read fails with ``PrivateUrlError``
before a byte is fetched (``objects.guard``).
"""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Callable
from typing import IO, Any, Protocol

from filespace import runtime
from filespace.errors import (
    ExternalReadError,
    PrivateUrlError,
    ReadOnlyFileError,
    StaleFileError,
)
from filespace.io import cache
from filespace.io.cache import BlockCache
from filespace.io.prefetch import BLOCK_SIZE, Reader
from filespace.io.streams import DEFAULT_BUFFER, Mode, PositionedRaw, wrap
from filespace.meta.records import LinkRecord
from filespace.objects import http
from filespace.objects import pace as paces
from filespace.objects.guard import Guard
from filespace.redaction import without_query

UrlSource = Callable[[bool], str]
"""Returns a URL for one object; ``True`` asks for a freshly signed one."""


class UrlProvider(Protocol):
    """Where the bytes of links come from (Connect provides it; the read path only asks)."""

    def place(self, link: LinkRecord) -> str:
        """The server ``link`` is read from (nearness is shared); raises if it cannot be read."""
        ...

    def url(self, link: LinkRecord, fresh: bool) -> str:
        """A URL to GET ``link``'s bytes from; ``fresh`` asks for a newly signed one."""
        ...

    def allows_private_urls(self) -> bool:
        """Whether HTTP links may reach private addresses; asked when one resolves to one."""
        ...


# The quickest answer seen from each place (a data store, a URL's host) in
# this process: a new handle knows at once whether its server is near.
_nearest = runtime.singleton(dict[str, float])

# A provider's URL has at least 30 s left (see connect.signing); reusing it for
# a second saves the provider's store lookup on every block of a busy read.
_URL_REUSE_S = 1.0

# Bumped by retire_urls. A plain counter, not a runtime singleton: a forked
# child goes on counting from its parent's value, so a handle it inherited can
# never match a count made after the fork. Values are unique and only compared
# for equality, so two racing bumps need no lock.
_retirements = itertools.count(1)
_retired = 0


def retire_urls() -> None:
    """Stop every handle in this process from reusing a URL it got before now.

    Connect calls it when credentials are rotated or a store is removed: no
    request after that may carry a URL signed with the old credentials.
    """
    global _retired  # noqa: PLW0603 - see _retirements
    _retired = next(_retirements)


class ExternalObject:
    """Fetches byte ranges of one linked object, mapping failures to ``OSError``."""

    def __init__(
        self,
        path: str,
        size: int,
        identity: http.Identity,
        urls: UrlSource,
        place: str = "",
        guard: Guard | None = None,
    ) -> None:
        self.path = path
        # An HTTP link's guard: its connections reach only public addresses
        # unless the guard allows private ones (see objects.guard).
        self._guard = guard
        self.size = size
        self.label = ""  # what the object is, for messages (set by whoever knows)
        self._place = place
        # The shortest time to first byte seen, here or by others from the same place.
        self.latency: float | None = _nearest().get(place) if place else None
        self._identity = identity
        self._urls = urls
        self._url: tuple[str, float, int] | None = None  # URL, when, _retired then

    def __repr__(self) -> str:
        return f"ExternalObject({self.path!r}, size={self.size})"

    def stream(
        self,
        start: int,
        end: int,
        piece: int,
        deliver: Callable[[int, memoryview], None],
        batch: int = 1,
    ) -> None:
        """Deliver ``[start, end)`` in ``piece``-aligned pieces; raises ``http.RangeError``."""
        http.stream_range(
            self._current_url,
            start,
            min(end, self.size),
            self._identity,
            piece,
            deliver,
            self._observe,
            batch,
            self._guard,
        )

    @property
    def pace(self) -> paces.Pace | None:
        """The pace of the server the URLs point at, once one was asked for."""
        cached = self._url
        return paces.for_url(cached[0]) if cached is not None else None

    def open_stream(self, start: int, end: int) -> http.RangeStream:
        """A pull-style stream of ``[start, end)`` (see ``http.RangeStream``)."""
        return http.RangeStream(
            self._current_url,
            start,
            min(end, self.size),
            self._identity,
            self._observe,
            self._guard,
        )

    def _current_url(self, fresh: bool) -> str:
        now = time.monotonic()
        cached = self._url
        retired = _retired  # read first: a retirement during the call is not missed
        reusable = cached is not None and cached[2] == retired and now - cached[1] < _URL_REUSE_S
        if cached is not None and reusable and not fresh:
            return cached[0]
        url = self._urls(fresh)
        self._url = (url, now, retired)
        return url

    def _observe(self, seconds: float) -> None:
        # The quickest answer is the distance; slower ones add the server's load.
        last = self.latency
        self.latency = seconds if last is None else min(last, seconds)
        if self._place:
            _nearest()[self._place] = self.latency

    def check(self, offset: int) -> None:
        """Ask the server for one byte: raises ``http.RangeError`` if it is not the linked one."""
        self.stream(offset, offset + 1, 1, lambda _at, _data: None)

    def error(self, problem: http.RangeError) -> OSError:
        """The ``OSError`` for a failed request: ``ESTALE`` or ``EIO``, naming the path."""
        if isinstance(problem, http.Blocked):
            return PrivateUrlError(problem.host, problem.address, problem.reason, self.path)
        detail = str(problem) + (f"; {self.label}" if self.label else "")
        if isinstance(problem, http.Stale):
            return StaleFileError(self.path, detail)
        return ExternalReadError(self.path, detail)

    def fetch(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, clipped to the object's size (no cache)."""
        end = min(end, self.size)
        if start >= end:
            return b""
        parts: list[memoryview] = []
        try:
            self.stream(start, end, end - start, lambda _at, data: parts.append(data))
        except http.RangeError as problem:
            raise self.error(problem) from None
        return b"".join(parts)


def link_source(path: str, link: LinkRecord, provider: UrlProvider) -> ExternalObject:
    """The byte-range source of the link at ``path``, its URLs from ``provider``."""
    place = provider.place(link)
    identity = http.Identity(etag=link.checksum, size=link.size)
    guard = provider.allows_private_urls if link.kind == "http" else None
    source = ExternalObject(
        path, link.size, identity, lambda fresh: provider.url(link, fresh), place, guard
    )
    source.label = describe(link)
    return source


def cache_namespace(link: LinkRecord, block_size: int = BLOCK_SIZE) -> str | None:
    """The cache namespace of a link's blocks, or ``None`` if it must not be cached.

    Without a checksum nothing tells one version of the object from the next,
    so such links (HTTP URLs whose server sends no ETag) are never cached.
    """
    if not link.checksum:
        return None
    if link.kind == "http":
        source = f"url:{link.url}"
    else:
        source = f"store:{link.data_store_id}:{link.object_key}"
    return cache.namespace(source, link.checksum, link.size, block_size)


def describe(link: LinkRecord) -> str:
    """The object behind a link, for error messages (never a URL's query string)."""
    if link.kind == "http":
        return f"URL {without_query(link.url or '')}"
    return f"object {link.object_key!r} in data store {link.data_store_name!r}"


class ExternalRawFile(PositionedRaw):
    """A read-only ``io.RawIOBase`` over an ``ExternalObject``, through a block reader."""

    def __init__(
        self,
        source: ExternalObject,
        *,
        cache: BlockCache | None = None,
        namespace: str | None = None,
        revalidate_after_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.name = source.path
        self.mode = "rb"
        self._source = source
        self._reader = Reader(
            source, cache, namespace, strict=True, revalidate_after_s=revalidate_after_s
        )
        self._pos = 0
        # How much the caller wants of the next read: set per call by
        # ExternalBufferedReader; ``None`` means all of the buffer.
        self.hint: int | None = None
        self.default_want: int | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def _end(self) -> int:
        return self._source.size

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._checkClosed()
        target = memoryview(buffer).cast("B")
        want = self.hint if self.hint is not None else self.default_want or len(target)
        count = self._reader.readinto(self._pos, target, want)
        self._pos += count
        return count

    def readall(self) -> bytes:
        self._checkClosed()
        data = self._reader.read_all(self._pos)
        self._pos += len(data)
        return data

    def buffered(self) -> None:
        """A buffered layer is on top: confirm only the first read, size reads by hint."""
        self._reader.strict = False
        self.default_want = 1

    def write(self, data: object) -> int:
        raise ReadOnlyFileError(self.name)

    def truncate(self, size: int | None = None) -> int:
        raise ReadOnlyFileError(self.name)

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()


class ExternalBufferedReader(io.BufferedReader):
    """A ``BufferedReader`` that passes each read's size down as a hint.

    Without it a 4 KiB read would look to the raw file like a request to fill
    the whole buffer; with it a random read fetches only the blocks it needs.
    Reads with no size to pass (``readline``, ``peek``, iteration) ask for the
    block under the position, and prefetching takes over if they go on.
    """

    def __init__(self, raw: ExternalRawFile, buffer_size: int = DEFAULT_BUFFER) -> None:
        super().__init__(raw, buffer_size)
        raw.buffered()
        self._external = raw

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            return super().read(size)
        self._external.hint = size
        try:
            return super().read(size)
        finally:
            self._external.hint = None

    def readinto(self, buffer: Any, /) -> int:
        self._external.hint = memoryview(buffer).nbytes
        try:
            return super().readinto(buffer)
        finally:
            self._external.hint = None


def open_stream(
    raw: ExternalRawFile,
    mode: Mode,
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> IO[Any]:
    """Wrap ``raw`` as ``open`` would, with the hinting buffered layer."""
    return wrap(raw, mode, buffering, encoding, errors, newline, reader=ExternalBufferedReader)
