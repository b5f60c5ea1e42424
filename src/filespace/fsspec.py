"""``filespace://`` for fsspec, so pandas, PyArrow and Dask read and write a filespace.

For example:

    import pandas as pd

    df = pd.read_csv("filespace:///data/x.csv", storage_options={"location": "./demo.filespace"})

Storage options: ``location`` (a filespace directory or engine URL; default:
the ``FILESPACE`` environment variable), ``key`` (the filespace key; default:
found as ``filespace.open`` finds it), ``cache_dir``, ``cache_size_mb`` and
``revalidate_after_s`` (the external-read cache and how long a cached file may
be opened without asking the server, as for ``filespace.open``) and ``auto_mkdir`` (writing a file
creates its missing parent directories, as object stores behave; default on).
``filespace:///a/b`` and ``filespace://a/b`` both name ``/a/b``.
``prefetch(paths, max_mb=None)`` is ``fsp.fs.prefetch``: a data loader hands
it the order it will read in.

The class is thin: fsspec's primitives map onto ``fsp.fs``, whose errors are
already the built-in ``OSError`` subclasses fsspec expects. Reading returns
the stream ``fsp.fs.open`` gives (an ``io.BufferedReader``; for an external
file one that passes each read's size down to its prefetcher) with fsspec's
``size`` and ``path`` set on it; writing returns the stream ``fsp.fs.open``
gives, committed when closed.

fsspec keeps one instance per set of options *and thread*; they all share one
open ``Filespace`` per location and key in this process
(``filespace.open_shared``), closed at exit (or by ``close()``); a forked
child opens its own. An instance pickles as its options
with the location made absolute, so Dask workers reopen the same filespace.

Symbolic links: ``info`` of a link describes its target (``islink`` says it is
one). In ``ls`` a link to a directory has type ``"link"``, so ``walk``/``find``
do not descend through links (a link may point at its own ancestor), as
``os.walk`` does not by default.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import posixpath
import shutil
from datetime import UTC, datetime
from typing import IO, Any, cast

from fsspec.spec import AbstractFileSystem, make_instance
from fsspec.utils import stringify_path

import filespace
from filespace import DirEntry, Filespace, Prefetch

__all__ = ["FilespaceFileSystem", "close_shared_filespaces"]

LOCATION_ENV = "FILESPACE"
_COPY_CHUNK = 4 * 1024 * 1024
_TYPES = {"file": "file", "dir": "directory", "link": "link"}


def close_shared_filespaces() -> None:
    """Sync and close every filespace opened through fsspec (or ``open_shared``) here."""
    filespace.close_shared()


def _absolute(location: str | os.PathLike[str]) -> str:
    text = os.fspath(location)
    if "://" in text:  # an engine URL
        return text
    return os.path.abspath(os.path.expanduser(text))


class FilespaceFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """fsspec's filesystem interface over one filespace."""

    protocol = "filespace"
    root_marker = "/"

    def __init__(
        self,
        *,
        location: str | os.PathLike[str] | None = None,
        key: str | bytes | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_size_mb: int = 1024,
        revalidate_after_s: float = 0.0,
        auto_mkdir: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        given = location if location is not None else os.environ.get(LOCATION_ENV)
        if not given:
            raise ValueError(
                "no filespace location: pass storage_options={'location': ...} "
                f"or set {LOCATION_ENV}"
            )
        self._location = _absolute(given)
        self.location = filespace.public_location(self._location)
        """The location in its public form (without a password): for display."""
        self.auto_mkdir = auto_mkdir
        cache = None if cache_dir is None else os.path.abspath(os.fspath(cache_dir))
        self._options: dict[str, Any] = {
            "key": key,
            "cache_dir": cache,
            "cache_size_mb": cache_size_mb,
            "revalidate_after_s": revalidate_after_s,
        }
        self.filespace  # noqa: B018 - a bad location or key fails here, not at first use

    def __repr__(self) -> str:
        return f"FilespaceFileSystem(location={self.location!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        options = {**self.storage_options, "location": self._location}
        if self._options["cache_dir"] is not None:
            options["cache_dir"] = self._options["cache_dir"]
        return make_instance, (type(self), self.storage_args, options)

    @property
    def filespace(self) -> Filespace:
        """The open filespace (shared by every instance with this location and key)."""
        return filespace.open_shared(self._location, **self._options)

    @property
    def fsid(self) -> str:
        return f"filespace_{self.filespace.id}"

    def close(self) -> None:
        """Sync and close the shared filespace; the next use opens it again."""
        filespace.close_shared(self._location, **self._options)

    # -- paths ----------------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(item) for item in path]
        text: str = stringify_path(path)
        for prefix in ("filespace://", "filespace::"):
            if text.startswith(prefix):
                text = text[len(prefix) :]
                break
        return "/" + text.strip("/")

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        return {}

    # -- queries --------------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        fs = self.filespace.fs
        try:
            entries = fs.read_dir(path)
        except NotADirectoryError:
            return [self.info(path)] if detail else [path]
        base = path.rstrip("/")
        infos = [self._describe(f"{base}/{entry.name}", entry, follow=False) for entry in entries]
        return infos if detail else [info["name"] for info in infos]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        return self._describe(path, self.filespace.fs.get_entry(path), follow=True)

    def _describe(self, path: str, entry: DirEntry, *, follow: bool) -> dict[str, Any]:
        """fsspec's info dict of an entry; a link takes its target's type and size."""
        info: dict[str, Any] = {
            "name": path,
            "size": entry.size,
            "type": _TYPES[entry.type],
            "created": entry.ctime,
            "mtime": entry.mtime,
            "mtime_ns": entry.mtime_ns,  # in the default ukey: a rewrite within a second counts
            "islink": entry.is_link(),
            "file_id": entry.file_id_external,
            "external": dataclasses.asdict(entry.external) if entry.external else None,
        }
        if entry.is_link():
            info["destination"] = self.filespace.fs.read_symlink(path)
            target = self._follow(path, entry)
            if target is not None and (target.is_file() or follow):
                info["type"] = _TYPES[target.type]
                info["size"] = target.size
                info["external"] = dataclasses.asdict(target.external) if target.external else None
        return info

    def _follow(self, path: str, entry: DirEntry) -> DirEntry | None:
        """The entry a link finally points at, or ``None`` if it dangles or loops."""
        try:
            return self.filespace.fs.get_entry(path, follow_symlinks=True)
        except (OSError, ValueError):
            return None

    def created(self, path: str) -> datetime:
        return datetime.fromtimestamp(self.info(path)["created"], tz=UTC)

    def modified(self, path: str) -> datetime:
        return datetime.fromtimestamp(self.info(path)["mtime"], tz=UTC)

    # -- data -------------------------------------------------------------------------
    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> IO[bytes]:
        if not autocommit:
            raise NotImplementedError(
                "filespace files commit when closed; fsspec transactions are not supported"
            )
        path = self._strip_protocol(path)
        fs = self.filespace.fs
        if mode == "rb":
            reader: Any = fs.open(path, "rb", buffering=block_size or -1)
            try:
                reader.size = reader.seek(0, io.SEEK_END)  # what fsspec's callers look for
                reader.seek(0)
            except BaseException:
                reader.close()
                raise
            reader.path = path
            return cast(IO[bytes], reader)
        if self.auto_mkdir:
            self.makedirs(self._parent(path), exist_ok=True)
        stream: IO[bytes] = fs.open(path, mode, buffering=block_size or -1)
        return stream

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """Bytes ``[start, end)`` of a file (negative: from its end): one seek, one read."""
        path = self._strip_protocol(path)
        with self.filespace.fs.open(path, "rb") as handle:
            size = handle.seek(0, io.SEEK_END)
            first = _bound(start, size, 0)
            last = _bound(end, size, size)
            if first >= last:
                return b""
            handle.seek(first)
            data: bytes = handle.read(last - first)
            return data

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        with self.open(path, "xb" if mode == "create" else "wb", **kwargs) as handle:
            handle.write(value)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy a file's bytes into a new native file (a directory: make it)."""
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        fs = self.filespace.fs
        if fs.dir_exists(path1):
            self.makedirs(path2, exist_ok=True)
            return
        with fs.open(path1, "rb", buffering=0) as source, self.open(path2, "wb") as target:
            shutil.copyfileobj(source, target, _COPY_CHUNK)

    def prefetch(self, paths: Any, max_mb: float | None = None) -> Prefetch:
        """Fetch these files, in this order, into the cache ahead of the reader.

        ``fsp.fs.prefetch`` (see ``filespace.Prefetch``): ``paths`` are a list
        of paths or ``filespace://`` URLs.
        """
        if isinstance(paths, str):
            paths = [paths]
        stripped = [self._strip_protocol(path) for path in paths]
        return self.filespace.fs.prefetch(stripped, max_mb=max_mb)

    # -- namespace ----------------------------------------------------------------------
    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if self.exists(path):
            raise FileExistsError(errno.EEXIST, "file exists", path)
        if create_parents:
            self.makedirs(path, exist_ok=True)
        else:
            self.filespace.fs.create_dir(path)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._strip_protocol(path)
        if not exist_ok and self.filespace.fs.exists(path):
            raise FileExistsError(errno.EEXIST, "directory exists", path)
        self.filespace.fs.create_dir(path, parents=True)

    def rmdir(self, path: str) -> None:
        self.filespace.fs.delete_dir(self._strip_protocol(path))

    def rm_file(self, path: str) -> None:
        self.filespace.fs.delete(self._strip_protocol(path))

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Delete files, links and (with ``recursive``) directories with everything in them."""
        items = path if isinstance(path, list) else [path]
        literal = maxdepth is None and not any(_has_magic(str(item)) for item in items)
        if literal:
            paths = [self._strip_protocol(item) for item in items]
        else:
            paths = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)
        fs = self.filespace.fs
        for name in sorted(set(paths), reverse=True):  # children before their parents
            entry = fs.get_entry(name)
            if not entry.is_dir():
                fs.delete(name)
            elif recursive:
                fs.delete_dir(name, recursive=True)
            else:
                raise IsADirectoryError(errno.EISDIR, "is a directory (pass recursive=True)", name)

    def mv(
        self,
        path1: Any,
        path2: Any,
        recursive: bool = False,
        maxdepth: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Rename in place (no copy); into ``path2`` if it is a directory, as ``shutil.move``.

        A file at ``path2`` is replaced in the same transaction. Globs and lists
        fall back to fsspec's copy-then-delete.
        """
        if not isinstance(path1, str) or not isinstance(path2, str) or _has_magic(path1):
            super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
            return
        source, target = self._strip_protocol(path1), self._strip_protocol(path2)
        if source == target:
            return
        fs = self.filespace.fs
        entry = fs.get_entry(source)
        if fs.dir_exists(target):
            target = posixpath.join(target, posixpath.basename(source))
        elif self.auto_mkdir:
            self.makedirs(self._parent(target), exist_ok=True)
        fs.move(source, target, replace=not entry.is_dir())


def _bound(value: int | None, size: int, default: int) -> int:
    if value is None:
        return default
    if value < 0:
        return max(0, size + value)
    return min(value, size)


def _has_magic(path: str) -> bool:
    return any(char in path for char in "*?[")
