"""The block caches on this machine: what is there (``cache_info``) and pruning it.

Each filespace opened with a disk tier has a directory under the cache root
(``cache_root()``) with a marker saying which location it came from and when
it was last opened (:mod:`filespace.io.cachedir`). ``prune_caches`` removes the
caches nobody needs: unused for a while, or whose location no longer holds
their filespace. A cache in use by an open filespace (in any process) is never
removed, nor one the cache directory rules refuse (another user's).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from filespace.errors import NotAFilespaceError
from filespace.io import cachedir
from filespace.io.cache import cache_root
from filespace.space import _existing_engine

_DAY_S = 24 * 3600.0


@dataclass(frozen=True)
class CacheInfo:
    """One filespace's block cache on this machine."""

    filespace_id: str
    directory: str
    location: str | None
    """Where the filespace was opened from, in its public form (None: not recorded)."""
    size: int
    """Bytes of block files (headers included)."""
    blocks: int
    last_used: float
    """When a filespace last opened it, in seconds since the epoch."""
    budget_mb: int | None
    """The ``cache_size_mb`` it was last opened with."""
    in_use: bool
    """Whether an open filespace (in any process) is using it now."""
    refused: str | None
    """Why it is not used (another user's, or not private), or None."""


@dataclass(frozen=True)
class PrunedCache:
    """A cache ``prune_caches`` removed (or, in a dry run, would remove), and why."""

    cache: CacheInfo
    reason: str


def cache_info(cache_dir: str | os.PathLike[str] | None = None) -> list[CacheInfo]:
    """Every filespace cache under the cache root (``cache_dir``, as ``open`` takes it)."""
    return [_info(entry) for entry in cachedir.entries(cache_root(cache_dir))]


def prune_caches(
    older_than_days: float = 30,
    *,
    everything: bool = False,
    check_locations: bool = True,
    dry_run: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[PrunedCache]:
    """Remove the caches nobody needs; what went (or would go, ``dry_run``) and why.

    A cache goes when it was last used more than ``older_than_days`` days ago,
    or (``check_locations``) when its location is gone or holds another
    filespace; with ``everything``, every cache goes. A cache in use by an open
    filespace, or refused (another user's), stays whatever is asked. A location
    that cannot be reached now (a server down, a password not at hand) keeps its
    cache. Raises ``PermissionError`` naming the cache root when it is not this
    user's own.
    """
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int | float):
        raise TypeError(f"older_than_days must be a number, got {older_than_days!r}")
    if not older_than_days >= 0:
        raise ValueError(f"older_than_days must be >= 0, got {older_than_days!r}")
    root = cache_root(cache_dir)
    if root.exists():
        why = cachedir.refusal(root, root=True)
        if why is not None:
            raise PermissionError(13, f"cache root refused ({why}): not pruning it", str(root))
    now = time.time()
    pruned = []
    for entry in cachedir.entries(root):
        if entry.in_use or entry.refused is not None:
            continue
        reason = _reason(entry, now, older_than_days, everything, check_locations)
        if reason is None:
            continue
        if dry_run or cachedir.remove(entry.directory):
            pruned.append(PrunedCache(_info(entry), reason))
    return pruned


def _reason(
    entry: cachedir.Entry, now: float, days: float, everything: bool, check_locations: bool
) -> str | None:
    if everything:
        return "not in use"
    idle = (now - entry.last_used) / _DAY_S
    if idle > days:
        return f"unused for {idle:.0f} days"
    if check_locations and entry.location is not None:
        return _gone(entry.location, entry.filespace_id)
    return None


def _gone(location: str, filespace_id: str) -> str | None:
    """Why ``location`` no longer holds ``filespace_id``, or None (there, or cannot tell)."""
    try:
        engine = _existing_engine(location)
    except (FileNotFoundError, NotAFilespaceError):
        return f"no filespace at {location} any more"
    except Exception:  # noqa: BLE001 - unreachable or unreadable: keep the cache
        return None
    try:
        found = engine.settings().get("filespace_id")
    except Exception:  # noqa: BLE001 - as above
        return None
    finally:
        engine.close()
    if found != filespace_id:
        return f"{location} holds another filespace now"
    return None


def _info(entry: cachedir.Entry) -> CacheInfo:
    return CacheInfo(
        filespace_id=entry.filespace_id,
        directory=str(entry.directory),
        location=entry.location,
        size=entry.size,
        blocks=entry.blocks,
        last_used=entry.last_used,
        budget_mb=entry.budget_mb,
        in_use=entry.in_use,
        refused=entry.refused,
    )


__all__ = ["CacheInfo", "PrunedCache", "cache_info", "prune_caches"]
