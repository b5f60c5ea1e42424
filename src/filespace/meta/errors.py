"""The engine's own errors, and the one table that turns them into public errors.

Engines know ids, never paths, so their errors carry no path. The layers above
call engine operations inside ``engine_errors(path=..., store=...)``, which
raises the public error the contract names, with the path or store name the
caller knows. Every mapping from an engine error to a public error is here.
"""

from __future__ import annotations

import errno
from types import TracebackType

from filespace.errors import (
    ConnectInUseError,
    DataStoreExistsError,
    DataStoreLimitError,
    DataStoreNotEmptyError,
    DataStoreNotFoundError,
    LinkExistsError,
    MissingParentError,
)


class MetaError(Exception):
    """Base of the engine's own errors (never seen by users as such)."""


class NameTaken(MetaError):
    """The directory already has an entry with that name."""


class NoSuchEntry(MetaError):
    """The entry (or the parent given) does not exist or is not a directory."""


class NotEmpty(MetaError):
    """The directory has entries."""


class WouldCycle(MetaError):
    """Moving a directory into itself or its own subtree."""


class IsDir(MetaError):
    """A non-directory would replace a directory."""


class NotDir(MetaError):
    """A directory would replace a non-directory."""


class StoreTaken(MetaError):
    """A data store with that name exists."""


class StoreLimit(MetaError):
    """The maximum number of data stores is reached."""

    def __init__(self, limit: int) -> None:
        super().__init__(str(limit))
        self.limit = limit

    def __reduce__(self) -> tuple[type[StoreLimit], tuple[int]]:
        return type(self), (self.limit,)


class NoSuchStore(MetaError):
    """No data store has that name (or id)."""


class KeyChanged(MetaError):
    """A sealed value, or the key itself, changed while a new key was being put in place."""


class LinksExist(MetaError):
    """Connect cannot be turned off: external links exist."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} external links")
        self.count = count

    def __reduce__(self) -> tuple[type[LinksExist], tuple[int]]:
        return type(self), (self.count,)


class StoreBusy(MetaError):
    """The data store still has links."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} linked files")
        self.count = count

    def __reduce__(self) -> tuple[type[StoreBusy], tuple[int]]:
        return type(self), (self.count,)


def public_error(
    exc: MetaError, *, path: str = "", store: str = "", link: bool = False
) -> Exception:
    """The public error for an engine error, naming ``path`` or ``store``.

    ``link`` marks an operation that creates an external link, whose taken path
    and missing parent have their own public errors (``LinkExistsError``,
    ``MissingParentError``).
    """
    if isinstance(exc, NameTaken):
        if link:
            return LinkExistsError(path)
        return FileExistsError(errno.EEXIST, "file exists", path)
    if isinstance(exc, NoSuchEntry):
        if link:
            return MissingParentError(path)
        return FileNotFoundError(errno.ENOENT, "no such file or directory", path)
    if isinstance(exc, NotEmpty):
        return OSError(errno.ENOTEMPTY, "directory not empty", path)
    if isinstance(exc, WouldCycle):
        return OSError(errno.EINVAL, "cannot move a directory into itself", path)
    if isinstance(exc, IsDir):
        return IsADirectoryError(errno.EISDIR, "is a directory", path)
    if isinstance(exc, NotDir):
        return NotADirectoryError(errno.ENOTDIR, "not a directory", path)
    if isinstance(exc, NoSuchStore):
        return DataStoreNotFoundError(f"no data store named {store!r}")
    if isinstance(exc, StoreTaken):
        return DataStoreExistsError(f"a data store named {store!r} already exists")
    if isinstance(exc, StoreLimit):
        return DataStoreLimitError(
            f"this filespace already has the maximum of {exc.limit} data stores"
        )
    if isinstance(exc, StoreBusy):
        return DataStoreNotEmptyError(store, exc.count)
    if isinstance(exc, LinksExist):
        return ConnectInUseError(exc.count)
    return exc


class engine_errors:  # noqa: N801 - used like the context-manager function it replaces
    """Run engine calls, raising each ``MetaError`` as its public error (see ``public_error``).

    A class rather than a generator context: it wraps every engine call of the
    public API, and this costs a third of ``contextlib``'s overhead.
    """

    __slots__ = ("_link", "_path", "_store")

    def __init__(self, *, path: str = "", store: str = "", link: bool = False) -> None:
        self._path = path
        self._store = store
        self._link = link

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not isinstance(exc, MetaError):
            return
        mapped = public_error(exc, path=self._path, store=self._store, link=self._link)
        if mapped is not exc:
            raise mapped from None
