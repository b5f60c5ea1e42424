"""``connect.link_files``: many links at once, and the directory cache it shares with mirror.

Items are checked at the boundary; a bad one becomes a ``LinkFailure`` and the
rest go on. Objects given without size and checksum are looked up with
HeadObject, ``HEAD_WORKERS`` at a time (fewer while the server throttles:
its pace's share, ``objects.pace``). Links are then written in batches of
``BATCH_SIZE``: each batch is one engine transaction (all or nothing) that
inserts its rows set-wise and bumps the counters once. Parent directories are
resolved once per call, following symbolic links as ``link_file`` does, so a
million items over a thousand directories cost a thousand lookups.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from filespace import paths
from filespace.connect import validation as check
from filespace.connect.access import head_object
from filespace.connect.models import LinkFailure, LinkItem, LinkReport
from filespace.errors import DataStoreError, ObjectNotFoundError
from filespace.meta.engine import Engine, NameTaken, NoSuchEntry
from filespace.meta.errors import engine_errors
from filespace.meta.records import ROOT_ID, LinkRow, StoreRecord
from filespace.objects.s3 import S3Client
from filespace.resolver import Resolver

BATCH_SIZE = 20000
"""Links per transaction. Each batch also touches every parent directory once
(mtime) and checks them once, so with many directories small batches pay that
per link; 20,000 holds SQLite's write lock for about half a second."""

HEAD_WORKERS = 16
"""HeadObject requests in flight for items given without size and checksum."""

_PLAIN_ETAG = re.compile(r"[0-9A-Za-z]{1,64}(?:-[0-9]{1,5})?")
"""ETags as S3 hands them out (MD5 hex, multipart ``hex-parts``): valid as they are."""

_PLAIN_PATH = re.compile(r"(?:/(?!\.\.?(?:/|$))[^/\x00]{1,255})+")
"""An absolute path of valid names with no empty, ``.`` or ``..`` part (ASCII: bytes = chars)."""

_MISSING = 0
_BLOCKED = -1
_REASONS = {NameTaken: "path taken", NoSuchEntry: "missing parent"}

# (file_path, object_id, parent path, name, size or None, checksum)
_Parsed = tuple[str, str, str, str, int | None, str]


class DirCache:
    """Directory ids by absolute path, for one call.

    Each path is looked up once, from its parent's id (one engine lookup per
    directory); symbolic links on the way are followed as the resolver does.
    A path maps to its directory id, ``_MISSING`` or ``_BLOCKED`` (something
    other than a directory is there, or on the way).
    """

    def __init__(self, engine: Engine, resolver: Resolver) -> None:
        self._engine = engine
        self._resolver = resolver
        self._ids: dict[str, int] = {"/": ROOT_ID}

    def forget(self) -> None:
        """Drop everything learnt (a cached directory turned out to be gone)."""
        self._ids = {"/": ROOT_ID}

    def get(self, path: str) -> int:
        """The directory id at ``path`` (normalized), ``_MISSING`` or ``_BLOCKED``."""
        found = self._ids.get(path)
        if found is not None:
            return found
        chain: list[str] = []
        while path not in self._ids:
            chain.append(path)
            path = path.rpartition("/")[0] or "/"
        state = self._ids[path]
        for step in reversed(chain):
            if state > 0:
                state = self._step(state, step)
            self._ids[step] = state
        return state

    def prefetch(self, wanted: Iterable[str]) -> None:
        """Learn many directories with one engine query per parent directory.

        Directories and missing names are settled here; anything else (a
        symlink, a file in the way) is left for ``get`` to look at one by one.
        """
        unknown = {path for path in wanted if path not in self._ids}
        levels: dict[int, set[str]] = defaultdict(set)
        for start in unknown:
            path = start
            while path not in self._ids and path not in levels[path.count("/")]:
                levels[path.count("/")].add(path)
                path = path.rpartition("/")[0] or "/"
        for depth in sorted(levels):
            by_parent: dict[str, list[str]] = defaultdict(list)
            for path in levels[depth]:
                by_parent[path.rpartition("/")[0] or "/"].append(path)
            for parent_path, children in by_parent.items():
                parent = self._ids.get(parent_path)
                if parent is None:
                    continue  # behind a symlink: resolved one by one later
                if parent <= 0:
                    for child in children:
                        self._ids[child] = parent
                    continue
                names = {child.rpartition("/")[2]: child for child in children}
                found = self._engine.lookup_many(parent, list(names))
                for name, child in names.items():
                    entry = found.get(name)
                    if entry is None:
                        self._ids[child] = _MISSING
                    elif entry.is_dir:
                        self._ids[child] = entry.id

    def _step(self, parent_id: int, path: str) -> int:
        entry = self._engine.lookup(parent_id, path.rpartition("/")[2])
        if entry is None:
            return _MISSING
        if entry.is_dir:
            return entry.id
        if entry.type == "link":
            try:
                target = self._resolver.walk(path, follow_last=True)
            except OSError:
                return _BLOCKED
            return target.id if target.is_dir else _BLOCKED
        return _BLOCKED

    def ensure(self, wanted: Iterable[str]) -> None:
        """Make the missing directories among ``wanted`` (and their parents), in one go."""
        chains: list[tuple[int, list[str], str]] = []
        for path in sorted(set(wanted)):
            if self.get(path) != _MISSING:
                continue
            names: list[str] = []
            top = path
            while self._ids[top] == _MISSING:
                top, _, name = top.rpartition("/")
                top = top or "/"
                names.append(name)
            if self._ids[top] > 0:
                names.reverse()
                chains.append((self._ids[top], names, top))
        if not chains:
            return
        made = self._engine.make_dirs(
            [(start, names) for start, names, _ in chains], time.time_ns()
        )
        for (_, names, top), ids in zip(chains, made, strict=True):
            base = top.rstrip("/")
            for depth, name in enumerate(names):
                base = f"{base}/{name}"
                if ids is not None:
                    self._ids[base] = ids[depth]
                else:  # something is in the way somewhere: look the chain up again
                    self._ids.pop(base, None)


def link_files(
    engine: Engine,
    resolver: Resolver,
    store: StoreRecord,
    client: Callable[[], S3Client],
    items: Iterable[LinkItem | tuple[Any, ...]],
    *,
    create_parents: bool,
) -> LinkReport:
    """Link ``items`` to objects of ``store``; see ``ConnectManager.link_files``."""
    if not isinstance(create_parents, bool):
        raise ValueError("create_parents must be a bool")
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise ValueError("items must be an iterable of LinkItem or tuples")
    report = LinkReport()
    dirs = DirCache(engine, resolver)
    pool: ThreadPoolExecutor | None = None
    iterator = iter(items)
    try:
        while chunk := list(itertools.islice(iterator, BATCH_SIZE)):
            parsed: list[_Parsed] = []
            for item in chunk:
                outcome = _parse(item)
                if isinstance(outcome, LinkFailure):
                    report.failed.append(outcome)
                else:
                    parsed.append(outcome)
            if any(entry[4] is None for entry in parsed):
                if pool is None:
                    pool = ThreadPoolExecutor(HEAD_WORKERS, thread_name_prefix="filespace-head")
                parsed = _learn_sizes(pool, client(), parsed, report)
            _link_batch(engine, store, dirs, parsed, report, create_parents=create_parents)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return report


_DEFAULTS: tuple[object, ...] = (None, None, None, "")


def _parse(item: object) -> _Parsed | LinkFailure:
    """Check one item; a ``LinkFailure`` says what is wrong with it."""
    file_path: object
    object_id: object
    size: object
    checksum: object
    if isinstance(item, LinkItem):
        file_path, object_id, size, checksum = (
            item.file_path,
            item.object_id,
            item.size,
            item.checksum,
        )
    elif isinstance(item, tuple | list) and 2 <= len(item) <= 4:
        file_path, object_id, size, checksum = tuple(item) + _DEFAULTS[len(item) :]
    else:
        return LinkFailure(
            _text(item), "", "not a LinkItem or (file_path, object_id, size, checksum) tuple"
        )
    try:
        if not isinstance(file_path, str):
            raise TypeError(f"file_path must be str, not {type(file_path).__name__}")
        parent, name = _parent_and_name(file_path)
        key = check.object_key(object_id)
        known = None if size is None else check.size(size)
        if isinstance(checksum, str) and _PLAIN_ETAG.fullmatch(checksum):
            etag = checksum  # what check.checksum would return, at a fraction of the cost
        else:
            etag = check.checksum("" if checksum is None else checksum)
        if (known is None) != (etag == ""):
            raise ValueError("give both size and checksum, or neither")
    except (TypeError, ValueError) as exc:
        return LinkFailure(_text(file_path), _text(object_id), str(exc))
    return (file_path, key, parent, name, known, etag)


def _parent_and_name(path: str) -> tuple[str, str]:
    """The normalized parent path and the name, with a fast path for plain ASCII paths."""
    if len(path) <= paths.MAX_PATH_BYTES and path.isascii() and _PLAIN_PATH.fullmatch(path):
        parent, _, name = path.rpartition("/")
        return parent or "/", name
    names = paths.split(path)  # the slow path, which also words the error
    if not names:
        raise ValueError("the root directory cannot be a link")
    return "/" + "/".join(names[:-1]), names[-1]


def _text(value: object) -> str:
    return value if isinstance(value, str) else repr(value)[:200]


def _learn_sizes(
    pool: ThreadPoolExecutor, client: S3Client, parsed: list[_Parsed], report: LinkReport
) -> list[_Parsed]:
    """Fill in size and ETag by HeadObject where they were not given."""
    unknown = [entry for entry in parsed if entry[4] is None]

    pace = client.pace

    def head(key: str) -> tuple[int, str] | str:
        try:
            with pace.slot(HEAD_WORKERS):
                found = head_object(client, key)
        except ObjectNotFoundError:
            return "object not found"
        except (DataStoreError, ValueError) as exc:  # ValueError: over 5 TiB
            return str(exc)
        return found.size, found.etag

    keys = sorted({entry[1] for entry in unknown})
    answers = dict(zip(keys, pool.map(head, keys), strict=True))
    complete: list[_Parsed] = []
    for entry in parsed:
        if entry[4] is not None:
            complete.append(entry)
            continue
        answer = answers[entry[1]]
        if isinstance(answer, str):
            report.failed.append(LinkFailure(entry[0], entry[1], answer))
        else:
            complete.append((*entry[:4], answer[0], answer[1]))
    return complete


def _link_batch(
    engine: Engine,
    store: StoreRecord,
    dirs: DirCache,
    parsed: Sequence[_Parsed],
    report: LinkReport,
    *,
    create_parents: bool,
) -> None:
    """Link one batch; a parent that vanished since it was cached is looked up again once."""
    pending = list(parsed)
    for attempt in range(2):
        dirs.prefetch(entry[2] for entry in pending)
        if create_parents:
            dirs.ensure(entry[2] for entry in pending if dirs.get(entry[2]) == _MISSING)
        rows: list[LinkRow] = []
        owners: list[_Parsed] = []
        for entry in pending:
            parent = dirs.get(entry[2])
            if parent > 0:
                rows.append(LinkRow(parent, entry[3], entry[1], entry[4] or 0, entry[5]))
                owners.append(entry)
            else:
                report.failed.append(LinkFailure(entry[0], entry[1], "missing parent"))
        if not rows:
            return
        with engine_errors(store=store.name):
            failures = engine.create_links(store.id, rows, time.time_ns())
        report.linked += len(rows) - len(failures)
        pending = []
        for index, kind in failures:
            if kind is NoSuchEntry and attempt == 0:
                pending.append(owners[index])
            else:
                entry = owners[index]
                report.failed.append(LinkFailure(entry[0], entry[1], _REASONS[kind]))
        if not pending:
            return
        dirs.forget()
