"""Turning a mode string and a raw stream into what Python's ``open`` returns."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, Any

DEFAULT_BUFFER = 1024 * 1024


class PositionedRaw(io.RawIOBase):
    """A seekable raw stream that keeps its own position; subclasses say the size."""

    _pos = 0

    def _end(self) -> int:
        """The size ``SEEK_END`` counts from."""
        raise NotImplementedError

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
            position = self._end() + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if position < 0:
            raise OSError(22, "negative seek position", getattr(self, "name", None))
        self._pos = position
        return position


class CommittingWriter(io.BufferedWriter):
    """A ``BufferedWriter`` whose ``flush`` also commits: the raw file's flush runs too.

    (``io.BufferedWriter.flush`` only hands its buffer to the raw stream.)
    """

    def flush(self) -> None:
        super().flush()
        self.raw.flush()


class CommittingRandom(io.BufferedRandom):
    """A ``BufferedRandom`` whose ``flush`` also commits, like ``CommittingWriter``."""

    def flush(self) -> None:
        super().flush()
        self.raw.flush()


@dataclass(frozen=True, slots=True)
class Mode:
    """A parsed ``open`` mode."""

    text: str
    reading: bool
    writing: bool
    appending: bool
    creating: bool  # create when missing
    exclusive: bool  # fail when present
    truncating: bool
    binary: bool

    @property
    def updating(self) -> bool:
        return self.reading and (self.writing or self.appending)


def parse_mode(mode: str) -> Mode:
    """Parse ``mode`` as Python's ``open`` does, or raise ``ValueError``."""
    if not isinstance(mode, str):
        raise TypeError(f"mode must be str, not {type(mode).__name__}")
    letters = set(mode)
    if len(letters) != len(mode) or not letters <= set("rwaxbt+"):
        raise ValueError(f"invalid mode: {mode!r}")
    primary = letters & set("rwax")
    if len(primary) != 1:
        raise ValueError(f"mode must have exactly one of r, w, a, x: {mode!r}")
    if "b" in letters and "t" in letters:
        raise ValueError(f"mode cannot be both binary and text: {mode!r}")
    kind = primary.pop()
    plus = "+" in letters
    return Mode(
        text=mode,
        reading=kind == "r" or plus,
        writing=kind in "wx" or plus,
        appending=kind == "a",
        creating=kind in "wax",
        exclusive=kind == "x",
        truncating=kind == "w",
        binary="b" in letters,
    )


def check_options(
    mode: Mode,
    buffering: object,
    encoding: object,
    errors: object,
    newline: object,
) -> int:
    """Check ``open``'s other arguments against ``mode`` before any file is touched.

    Returns the buffering to use (any negative value means the default, as in
    Python's ``open``). Raises what Python's ``open`` raises, except that an
    unknown encoding, which Python reports as ``LookupError``, is a ``ValueError``
    here, like text that is not UTF-8.
    """
    if isinstance(buffering, bool) or not isinstance(buffering, int):
        raise TypeError(f"buffering must be an int, not {type(buffering).__name__}")
    if mode.binary:
        if encoding is not None or errors is not None or newline is not None:
            raise ValueError("binary mode doesn't take an encoding, errors or newline argument")
    elif buffering == 0:
        raise ValueError("can't have unbuffered text I/O")
    else:
        try:  # the checks TextIOWrapper makes, on a stream that is not the file
            io.TextIOWrapper(io.BytesIO(), encoding, errors, newline)  # type: ignore[arg-type]
        except (LookupError, UnicodeError) as exc:
            raise ValueError(f"invalid encoding or errors for a text file: {exc}") from None
    return -1 if buffering < 0 else buffering


def wrap(
    raw: io.RawIOBase,
    mode: Mode,
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    *,
    reader: type[io.BufferedReader] = io.BufferedReader,
) -> IO[Any]:
    """Wrap ``raw`` in the buffered and text layers ``mode`` asks for."""
    if mode.binary and (encoding is not None or errors is not None or newline is not None):
        raise ValueError("binary mode doesn't take an encoding, errors or newline argument")
    if buffering == 0:
        if not mode.binary:
            raise ValueError("can't have unbuffered text I/O")
        return raw  # type: ignore[return-value]
    if buffering == 1 and mode.binary:
        buffering = -1  # line buffering is meaningless for bytes, as in io.open
    size = DEFAULT_BUFFER if buffering in (-1, 1) else buffering
    buffered: io.BufferedIOBase
    if mode.updating:
        buffered = CommittingRandom(raw, size)
    elif mode.writing or mode.appending:
        buffered = CommittingWriter(raw, size)
    else:
        buffered = reader(raw, size)
    if mode.binary:
        return buffered
    text = io.TextIOWrapper(
        buffered,
        encoding=encoding or "utf-8",
        errors=errors,
        newline=newline,
        line_buffering=buffering == 1,
    )
    text.mode = mode.text  # type: ignore[misc]
    return text
