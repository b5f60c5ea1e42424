"""Raw streams over external files: ranged GETs of a linked object or URL.

The object's identity (ETag and size at link time) goes with every request,
so a changed or deleted object fails with ``ESTALE`` instead of returning
bytes of another version. Presigned URLs come from a provider that re-signs
them before they expire; a URL refused as expired is re-signed once at once.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from filespace.errors import ExternalReadError, ReadOnlyFileError, StaleFileError
from filespace.io import http

UrlProvider = Callable[[bool], str]
"""Returns a URL for the object; ``True`` asks for a freshly signed one."""


class ExternalObject:
    """Fetches byte ranges of one linked object, mapping failures to ``OSError``."""

    def __init__(self, path: str, size: int, identity: http.Identity, urls: UrlProvider) -> None:
        self.path = path
        self.size = size
        self._identity = identity
        self._urls = urls

    def fetch(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, clipped to the object's size."""
        end = min(end, self.size)
        if start >= end:
            return b""
        try:
            try:
                data = http.get_range(self._urls(False), start, end, self._identity)
            except http.Expired:
                data = http.get_range(self._urls(True), start, end, self._identity)
        except http.Stale as exc:
            raise StaleFileError(self.path, str(exc)) from None
        except http.RangeError as exc:
            raise ExternalReadError(self.path, str(exc)) from None
        if len(data) != end - start:
            raise StaleFileError(
                self.path, f"got {len(data)} bytes for a {end - start}-byte range"
            )
        return data


class ExternalRawFile(io.RawIOBase):
    """A read-only ``io.RawIOBase`` over an ``ExternalObject``."""

    def __init__(self, source: ExternalObject) -> None:
        super().__init__()
        self.name = source.path
        self._source = source
        self._pos = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._pos + offset
        elif whence == io.SEEK_END:
            position = self._source.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if position < 0:
            raise OSError(22, "negative seek position", self.name)
        self._pos = position
        return position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._checkClosed()
        target = memoryview(buffer).cast("B")
        data = self._source.fetch(self._pos, self._pos + len(target))
        target[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def write(self, data: object) -> int:
        raise ReadOnlyFileError(self.name)

    def truncate(self, size: int | None = None) -> int:
        raise ReadOnlyFileError(self.name)
