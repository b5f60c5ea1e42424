"""Filespace paths: validation and splitting at the API boundary.

A path is absolute and POSIX-style. A name is any UTF-8 text without ``/`` or
NUL, not ``.`` or ``..``, at most 255 bytes; a whole path is at most 4096
bytes. Repeated and trailing slashes are folded, as POSIX does.
"""

from __future__ import annotations

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096


def _utf8_length(text: str, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid UTF-8 text: {text!r}") from None


def check_name(name: str, *, path: str | None = None) -> str:
    """Return ``name`` if it can name an entry, else raise ``ValueError``."""
    where = f" in path {path!r}" if path is not None else ""
    if not isinstance(name, str):
        raise TypeError(f"a name must be str, not {type(name).__name__}")
    if name in ("", ".", ".."):
        raise ValueError(f"invalid name {name!r}{where}")
    if "/" in name or "\x00" in name:
        raise ValueError(f"a name may not contain '/' or NUL: {name!r}{where}")
    if _utf8_length(name, "name") > MAX_NAME_BYTES:
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
    if _utf8_length(path, "path") > MAX_PATH_BYTES:
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
