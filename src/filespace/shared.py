"""One open ``Filespace`` per location and options, shared by a whole process.

Integrations that are handed a location again and again (fsspec builds a new
filesystem object per thread and per set of options; Dask and DataLoader
workers reopen by location) should not open a filespace, with its engine
connections, each time. ``open_shared`` opens one on first use and hands the
same one out after; the registry is a ``runtime`` singleton, so a forked child
opens its own instead of using its parent's connections, and everything still
open is synced and closed when the process exits.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path

from filespace import runtime
from filespace.space import Filespace
from filespace.space import open as open_filespace

_Options = tuple[str, str | bytes | None, str | None, int, float]


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spaces: dict[_Options, Filespace] = {}


_registry = runtime.singleton(_Registry)


def _options(
    location: str | os.PathLike[str],
    key: str | bytes | None,
    cache_dir: str | os.PathLike[str] | None,
    cache_size_mb: int,
    revalidate_after_s: float,
) -> _Options:
    cache = None if cache_dir is None else str(Path(cache_dir).absolute())
    return (os.fspath(location), key, cache, cache_size_mb, revalidate_after_s)


def open_shared(
    location: str | os.PathLike[str],
    *,
    key: str | bytes | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    cache_size_mb: int = 1024,
    revalidate_after_s: float = 0.0,
) -> Filespace:
    """This process's open filespace for these arguments, opened on first use.

    The same arguments give the same object until it is closed (by
    ``close_shared`` or ``Filespace.close``), after which the next call opens
    it again. Do not use it in a ``with`` block: that would close it for every
    other user in the process.
    """
    options = _options(location, key, cache_dir, cache_size_mb, revalidate_after_s)
    registry = _registry()
    with registry.lock:
        space = registry.spaces.get(options)
        if space is None or space.closed:
            space = open_filespace(
                location,
                key=key,
                cache_dir=cache_dir,
                cache_size_mb=cache_size_mb,
                revalidate_after_s=revalidate_after_s,
            )
            registry.spaces[options] = space
        return space


def close_shared(
    location: str | os.PathLike[str] | None = None,
    *,
    key: str | bytes | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    cache_size_mb: int = 1024,
    revalidate_after_s: float = 0.0,
) -> None:
    """Sync and close the shared filespace for these arguments; every one without ``location``."""
    registry = _registry()
    with registry.lock:
        if location is None:
            closing = list(registry.spaces.values())
            registry.spaces.clear()
        else:
            options = _options(location, key, cache_dir, cache_size_mb, revalidate_after_s)
            found = registry.spaces.pop(options, None)
            closing = [] if found is None else [found]
    for space in closing:
        space.close()


atexit.register(close_shared)
