"""Filespace paths: validation and splitting at the API boundary, and the size limit.

A path is absolute and POSIX-style. A name is any UTF-8 text without ``/`` or
NUL, not ``.`` or ``..``, at most 255 bytes; a whole path is at most 4096
bytes. Repeated and trailing slashes are folded, as POSIX does. A file (native
or linked) holds at most ``MAX_FILE_SIZE`` bytes.
"""

from __future__ import annotations

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
MAX_FILE_SIZE = 5 * 1024**4
"""The most bytes a file may hold: 5 TiB, S3's object limit. It keeps every size
and every sum of sizes the engine counts far inside a signed 64-bit integer."""


def utf8_text(text: str, what: str, *, secret: bool = False) -> bytes:
    """``text`` as UTF-8; else (a lone surrogate) ``ValueError`` naming ``what``.

    The message shows the text too, unless it is a ``secret``.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        shown = "" if secret else f": {text!r}"
        raise ValueError(f"{what} is not valid UTF-8 text{shown}") from None


def check_target(target: object) -> str:
    """Return ``target`` if a symbolic link may point at it, else raise ``ValueError``.

    A target is any non-empty UTF-8 text without NUL, at most ``MAX_PATH_BYTES``.
    """
    if not isinstance(target, str) or not target or "\x00" in target:
        raise ValueError(f"invalid symlink target {target!r}")
    if len(utf8_text(target, "symlink target")) > MAX_PATH_BYTES:
        raise ValueError(f"symlink target longer than {MAX_PATH_BYTES} bytes")
    return target


def check_name(name: str, *, path: str | None = None) -> str:
    """Return ``name`` if it can name an entry, else raise ``ValueError``."""
    where = f" in path {path!r}" if path is not None else ""
    if not isinstance(name, str):
        raise TypeError(f"a name must be str, not {type(name).__name__}")
    if name in ("", ".", ".."):
        raise ValueError(f"invalid name {name!r}{where}")
    if "/" in name or "\x00" in name:
        raise ValueError(f"a name may not contain '/' or NUL: {name!r}{where}")
    if len(utf8_text(name, "name")) > MAX_NAME_BYTES:
        raise ValueError(f"name longer than {MAX_NAME_BYTES} bytes{where}: {name[:40]!r}...")
    return name


def split(path: str) -> tuple[str, ...]:
    """Split an absolute path into its names; ``/`` is the empty tuple."""
    if not isinstance(path, str):
        raise TypeError(f"a path must be str, not {type(path).__name__}")
    if not path.startswith("/"):
        raise ValueError(f"a filespace path must be absolute: {path!r}")
    if "\x00" in path:
        raise ValueError(f"a path may not contain NUL: {path!r}")
    if len(utf8_text(path, "path")) > MAX_PATH_BYTES:
        raise ValueError(f"path longer than {MAX_PATH_BYTES} bytes: {path[:60]!r}...")
    names = tuple(part for part in path.split("/") if part)
    for name in names:
        check_name(name, path=path)
    return names


def normalize(path: str) -> str:
    """Return the canonical spelling of a valid path (``/a/b``)."""
    return join(split(path))


def join(names: tuple[str, ...] | list[str]) -> str:
    """Join names back into an absolute path."""
    return "/" + "/".join(names)


def parent_and_name(path: str) -> tuple[tuple[str, ...], str]:
    """Split ``path`` into its parent's names and its own name; ``/`` has none."""
    names = split(path)
    if not names:
        raise ValueError("the root directory has no name: '/'")
    return names[:-1], names[-1]
