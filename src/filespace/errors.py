"""Every exception filespace raises on purpose.

Public errors are the standard exceptions the contract names, subclassed where
a caller needs to tell cases apart, so ``except FileNotFoundError`` and
``except RuntimeError`` keep working as the reference SDK documents::

    Exception
    ├── FilespaceError                      (mixin: "raised by filespace")
    ├── OSError
    │   ├── FileExistsError
    │   │   └── LinkExistsError             also RuntimeError: link_file onto a taken path
    │   ├── FileNotFoundError
    │   │   ├── MissingParentError          also RuntimeError: link_file into a missing dir
    │   │   └── LinkNotFoundError           also RuntimeError: unlink/update/get a missing path
    │   ├── PermissionError
    │   │   ├── ReadOnlyFileError           errno EROFS: writing an external file
    │   │   ├── PrivateUrlError             also RuntimeError, errno EACCES: an HTTP link's
    │   │   │                               host is a private address (``.host``, ``.reason``)
    │   │   └── FilespaceKeyError           the filespace key is missing or wrong
    │   │       ├── KeyNotFoundError
    │   │       └── WrongKeyError
    │   │           └── IntegrityError      a sealed value's record or destination was changed
    │   ├── StaleFileError                  errno ESTALE: the object changed after linking
    │   ├── ExternalReadError               errno EIO: the object could not be read
    │   └── ConnectionError
    │       └── FeedError                   a follower's queue or listener cannot be reached
    ├── ValueError
    │   └── NotAFilespaceError              the location holds no filespace
    └── RuntimeError
        ├── UnsupportedFormatError          written by a newer filespace
        ├── ConnectUnavailableError         format < 9 or Connect not enabled
        ├── ConnectInUseError               disable() while links exist (``.count``)
        ├── DataStoreError
        │   ├── DataStoreNotFoundError
        │   ├── DataStoreExistsError
        │   ├── DataStoreLimitError
        │   ├── DataStoreNotEmptyError      still has linked files (``.count``)
        │   └── DataStoreAccessError        the bucket did not answer (``.status``)
        ├── ObjectNotFoundError             HeadObject found no object
        ├── NotALinkError                   unlink/update on something that isn't that link
        └── EngineError                     the metadata engine failed

Plain ``ValueError``, ``TypeError``, ``FileNotFoundError``,
``NotADirectoryError``, ``IsADirectoryError`` and ``OSError(ENOTEMPTY)`` /
``OSError(EINVAL)`` are raised as they are, with the path in the message.
"""

from __future__ import annotations

import errno
from typing import Any, TypeAlias

_Reduced: TypeAlias = tuple[type[BaseException], tuple[Any, ...], dict[str, Any]]
"""What ``__reduce__`` gives for pickle: the class, its ``__init__`` arguments, and every
attribute (``__notes__`` included), so an error crosses a process boundary whole."""

__all__ = [
    "ConnectInUseError",
    "ConnectUnavailableError",
    "DataStoreAccessError",
    "DataStoreError",
    "DataStoreExistsError",
    "DataStoreLimitError",
    "DataStoreNotEmptyError",
    "DataStoreNotFoundError",
    "EngineError",
    "ExternalReadError",
    "FeedError",
    "FilespaceError",
    "FilespaceKeyError",
    "IntegrityError",
    "KeyNotFoundError",
    "LinkExistsError",
    "LinkNotFoundError",
    "MissingParentError",
    "NotAFilespaceError",
    "NotALinkError",
    "ObjectNotFoundError",
    "PrivateUrlError",
    "ReadOnlyFileError",
    "StaleFileError",
    "UnsupportedFormatError",
    "WrongKeyError",
]


class FilespaceError(Exception):
    """Marks an exception as raised by filespace itself."""


class LinkExistsError(FilespaceError, FileExistsError, RuntimeError):
    """A link was asked for at a path that is already taken."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.EEXIST, "path already exists", path)

    def __reduce__(self) -> _Reduced:
        return type(self), (self.filename,), vars(self)


class MissingParentError(FilespaceError, FileNotFoundError, RuntimeError):
    """A link was asked for in a directory that does not exist."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.ENOENT, "parent directory does not exist", path)

    def __reduce__(self) -> _Reduced:
        return type(self), (self.filename,), vars(self)


class LinkNotFoundError(FilespaceError, FileNotFoundError, RuntimeError):
    """Nothing is at the path a link operation names (``unlink_file`` and the like)."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.ENOENT, "no such file or directory", path)

    def __reduce__(self) -> _Reduced:
        return type(self), (self.filename,), vars(self)


class ReadOnlyFileError(FilespaceError, PermissionError):
    """An external (linked) file was opened for writing or truncated."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.EROFS, "external files are read-only", path)

    def __reduce__(self) -> _Reduced:
        return type(self), (self.filename,), vars(self)


class PrivateUrlError(FilespaceError, PermissionError, RuntimeError):
    """An HTTP link's host resolved to an address HTTP links may not reach.

    Raised when linking (``path`` is the link's) and when reading (the read
    is refused before any byte is fetched). ``host`` is the URL's host,
    ``address`` what it resolved to, ``reason`` the kind of address
    ("loopback", "private", "link-local (cloud metadata)", ...). A keyholder
    allows such addresses with ``fsp.connect.configure(allow_private_urls=True)``.
    """

    def __init__(self, host: str, address: str, reason: str, path: str | None = None) -> None:
        where = f"{address} is" if host == address else f"{host} resolves to {address},"
        super().__init__(
            errno.EACCES,
            f"{where} a {reason} address, which HTTP links may not reach unless a keyholder "
            "allows private URLs (fsp.connect.configure(allow_private_urls=True) or "
            "`filespace connect config --allow-private-urls`)",
            path,
        )
        self.host = host
        self.address = address
        self.reason = reason

    def __reduce__(self) -> _Reduced:
        return type(self), (self.host, self.address, self.reason, self.filename), vars(self)


class FilespaceKeyError(FilespaceError, PermissionError):
    """The filespace key needed to open sealed secrets is unusable."""


class KeyNotFoundError(FilespaceKeyError):
    """No key was given, set in FILESPACE_KEY, or found in the key file."""


class WrongKeyError(FilespaceKeyError):
    """The key given does not match the filespace's check value."""


class IntegrityError(WrongKeyError):
    """A sealed value does not match what it is bound to.

    Its record, or a field that decides where the secret goes (endpoint,
    bucket, region, addressing style, access key), was changed by someone
    without the filespace key: nothing is sent anywhere.
    """


class StaleFileError(FilespaceError, OSError):
    """The linked object changed or vanished since it was linked."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(errno.ESTALE, f"stale external file ({detail})", path)
        self.detail = detail

    def __reduce__(self) -> _Reduced:
        return type(self), (self.filename, self.detail), vars(self)


class ExternalReadError(FilespaceError, OSError):
    """Reading a linked object failed for a lasting reason."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(errno.EIO, f"cannot read external file ({detail})", path)
        self.detail = detail

    def __reduce__(self) -> _Reduced:
        return type(self), (self.filename, self.detail), vars(self)


class NotAFilespaceError(FilespaceError, ValueError):
    """The location exists but holds no filespace."""


class UnsupportedFormatError(FilespaceError, RuntimeError):
    """The filespace was written by a newer version of filespace."""


class ConnectUnavailableError(FilespaceError, RuntimeError):
    """Connect cannot be used: the format is older than 9 or it is not enabled."""


class ConnectInUseError(FilespaceError, RuntimeError):
    """Connect cannot be turned off: external files are linked; ``count`` says how many."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"Connect is still in use: {count} external file(s) are linked; nothing was "
            "changed (unlink them first)"
        )
        self.count = count

    def __reduce__(self) -> _Reduced:
        return type(self), (self.count,), vars(self)


class DataStoreError(FilespaceError, RuntimeError):
    """A data-store operation failed."""


class DataStoreNotFoundError(DataStoreError):
    """No data store has that name."""


class DataStoreExistsError(DataStoreError):
    """A data store with that name already exists."""


class DataStoreLimitError(DataStoreError):
    """The filespace already holds the maximum number of data stores."""


class DataStoreNotEmptyError(DataStoreError):
    """The data store still has linked files; ``count`` says how many."""

    def __init__(self, name: str, count: int) -> None:
        super().__init__(f"data store {name!r} still has {count} linked file(s); unlink them first")
        self.name = name
        self.count = count

    def __reduce__(self) -> _Reduced:
        return type(self), (self.name, self.count), vars(self)


class DataStoreAccessError(DataStoreError):
    """The data store's bucket did not answer; ``status`` says how in a few words.

    ``status`` is ``"unreachable"``, ``"auth failed"``, ``"no such bucket"`` or
    ``"error (CODE)"``; the message says why in words a person can act on.
    """

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> _Reduced:
        return type(self), (str(self), self.status), vars(self)


class ObjectNotFoundError(FilespaceError, RuntimeError):
    """The object to link does not exist (or cannot be seen) in the bucket."""


class NotALinkError(FilespaceError, RuntimeError):
    """The path is not the kind of external link the operation needs."""


class EngineError(FilespaceError, RuntimeError):
    """The metadata engine failed in a way the caller cannot fix by retrying input."""


class FeedError(FilespaceError, ConnectionError):
    """A follower's event feed (broker, queue, listener) cannot be reached or refused us.

    The message names the feed without its password.
    """
