"""``connect.mirror``: make a directory hold exactly one link per object under a prefix.

The bucket listing is streamed (it arrives in key order, a page at a time) and
turned into batches of ``BATCH_SIZE`` rows; each batch is one engine
transaction that adds, re-points or confirms its links and makes the missing
directories. Nothing is kept per object between batches, so memory does not
grow with the size of the bucket:

- every link a run confirms carries the run's mark (its start time) in the
  engine, never lowering a newer one; at the end one sweep walks ``dest_dir``
  and removes the store's links with an older mark (the objects that are gone),
  in transactions of ``SWEEP_BATCH`` links. A concurrent mirror of an
  overlapping prefix that started later keeps what it confirmed;
- a key that is also a directory prefix (``a/b`` while ``a/b/c`` exists) is
  recognized from the sorted order alone: ``a/b`` is held back while the keys
  that sort between ``a/b`` and ``a/b/`` stream by (a stack of at most one
  entry per ``/`` in a key), then linked, or skipped once ``a/b/...`` shows up.

A run killed half-way leaves whole batches behind with marks older than any
later run's, so running it again converges to the same tree.
"""

from __future__ import annotations

import dataclasses
import errno
import time
from collections.abc import Callable
from typing import TypeVar

from filespace import paths
from filespace.connect.bulk import DirCache
from filespace.connect.models import MirrorReport, SkippedKey
from filespace.errors import DataStoreError
from filespace.meta.engine import Engine
from filespace.meta.errors import engine_errors
from filespace.meta.records import MirrorRow, StoreRecord
from filespace.objects.s3 import ObjectSummary, S3AccessError, S3Client
from filespace.resolver import Resolver

BATCH_SIZE = 2000
"""Objects per transaction (listing pages hold 1,000)."""

SWEEP_BATCH = 5000
"""Links removed per transaction by the final sweep."""

MAX_PREFIX_BYTES = 1024

FILE_AND_PREFIX = "both a file and a directory prefix"
TOO_LARGE = "larger than 5 TiB"

_Row = MirrorRow
_T = TypeVar("_T")


def mirror(
    engine: Engine,
    resolver: Resolver,
    store: StoreRecord,
    client: S3Client,
    prefix: str,
    dest_dir: str,
    *,
    strip_prefix: bool,
    delete: bool,
    dry_run: bool,
    progress: Callable[[MirrorReport], object] | None,
) -> MirrorReport:
    """Mirror ``prefix`` of ``store`` into ``dest_dir``; see ``ConnectManager.mirror``."""
    check_prefix(prefix)
    dest = paths.normalize(dest_dir)
    for name, flag in (("strip_prefix", strip_prefix), ("delete", delete), ("dry_run", dry_run)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be a bool")
    if progress is not None and not callable(progress):
        raise ValueError("progress must be callable or None")

    base_id = destination(engine, resolver, dest, dry_run=dry_run)
    # Marks are start times: a link confirmed by this run or by any run that
    # started later (a concurrent mirror of an overlapping prefix) is kept.
    mark = time.time_ns()
    report = MirrorReport(dry_run=dry_run)
    planner = _Planner(strip_length(prefix) if strip_prefix else 0, dest, report)
    kept = 0
    batch: list[_Row] = []

    def flush() -> None:
        nonlocal kept
        if not batch:
            return
        if base_id is None:  # dry run into a directory that does not exist yet
            report.added += len(batch)
        else:
            counts = _guarded(
                dest,
                store.name,
                lambda: engine.mirror_batch(
                    store.id, base_id, batch, mark, time.time_ns(), delete=delete, dry_run=dry_run
                ),
            )
            report.added += counts.added
            report.updated += counts.updated
            report.unchanged += counts.unchanged
            report.removed += counts.removed
            kept += counts.kept
            report.skipped.extend(
                SkippedKey(batch[index].object_key, reason) for index, reason in counts.skipped
            )
        batch.clear()
        if progress is not None:
            progress(dataclasses.replace(report, skipped=list(report.skipped)))

    try:
        for summary in client.list_objects(prefix):
            batch.extend(planner.add(summary))
            if len(batch) >= BATCH_SIZE:
                flush()
    except S3AccessError as exc:
        raise DataStoreError(f"cannot list s3://{store.bucket}/{prefix}: {exc}") from None
    batch.extend(planner.finish())
    flush()
    if delete and base_id is not None:
        swept = _guarded(
            dest,
            store.name,
            lambda: engine.sweep_links(store.id, base_id, mark, dry_run=dry_run, batch=SWEEP_BATCH),
        )
        # A dry run marks nothing: every link of the store under dest_dir is
        # counted, less those a real run would have kept.
        report.removed += swept - kept if dry_run else swept
        if progress is not None:
            progress(dataclasses.replace(report, skipped=list(report.skipped)))
    return report


def check_prefix(prefix: object) -> None:
    """``ValueError`` unless ``prefix`` is text a key may start with."""
    if not isinstance(prefix, str):
        raise ValueError("prefix must be a string")
    if "\x00" in prefix or len(paths.utf8_text(prefix, "prefix")) > MAX_PREFIX_BYTES:
        raise ValueError(f"prefix must be at most {MAX_PREFIX_BYTES} bytes of text without NUL")


def _guarded(dest: str, store: str, work: Callable[[], _T]) -> _T:
    """Run ``work``, its engine errors raised as public ones naming ``dest`` and ``store``."""
    with engine_errors(path=dest, store=store):
        return work()


def destination(engine: Engine, resolver: Resolver, dest: str, *, dry_run: bool) -> int | None:
    """The id of ``dest``, made (with its parents) if missing; ``None`` on a dry run then."""
    try:
        entry = resolver.walk(dest, follow_last=True)
    except FileNotFoundError:
        if dry_run:
            return None
        dirs = DirCache(engine, resolver)
        dirs.ensure([dest])
        made = dirs.get(dest)
        if made <= 0:
            raise NotADirectoryError(errno.ENOTDIR, "a file is in the way", dest) from None
        return made
    if not entry.is_dir:
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", dest)
    return entry.id


def strip_length(prefix: str) -> int:
    """How much of each key ``strip_prefix`` removes: the prefix up to its last ``/``.

    A prefix that ends in ``/`` (or is empty) goes whole; ``logs/2024-`` strips
    ``logs/`` only, so ``logs/2024-01/a`` becomes ``2024-01/a`` — every key keeps a
    non-empty first name and no two keys land on one path.
    """
    return prefix.rfind("/") + 1


class _Planner:
    """Turns listed objects into rows, holding back keys that may be directory prefixes."""

    def __init__(self, strip: int, dest: str, report: MirrorReport) -> None:
        self._strip = strip
        self._room = room_below(dest)
        self._report = report
        self._held: list[tuple[str, ObjectSummary]] = []

    def add(self, summary: ObjectSummary) -> list[_Row]:
        """Rows now known to be files (not including ``summary`` itself, which is held)."""
        rel = self._relative(summary)
        if rel is None:
            return []
        ready: list[_Row] = []
        if self._held and self._held[-1][0] == rel:
            self._skip(summary, "listed twice")
            return ready
        while self._held:
            top, held = self._held[-1]
            if rel.startswith(top) and len(rel) > len(top):
                follower = rel[len(top)]
                if follower == "/":
                    self._skip(held, FILE_AND_PREFIX)
                    self._held.pop()
                    continue
                if follower < "/":
                    break  # a key like "a/b-c" sorts between "a/b" and "a/b/": undecided
            ready.append(_row(top, held))
            self._held.pop()
        self._held.append((rel, summary))
        return ready

    def finish(self) -> list[_Row]:
        ready = [_row(rel, held) for rel, held in reversed(self._held)]
        self._held.clear()
        return ready

    def _skip(self, summary: ObjectSummary, reason: str) -> None:
        self._report.skipped.append(SkippedKey(summary.key, reason))

    def _relative(self, summary: ObjectSummary) -> str | None:
        """The path of an object under ``dest_dir``, or ``None`` (skipped) if it has none."""
        rel, reason = relative_path(summary.key, summary.size, self._strip, self._room)
        if reason:
            self._skip(summary, reason)
        return rel


def room_below(dest: str) -> int:
    """How many bytes a relative path below ``dest`` (normalized) may have."""
    return paths.MAX_PATH_BYTES - (1 if dest == "/" else len(dest.encode()) + 1)


def relative_path(key: str, size: int, strip: int, room: int) -> tuple[str | None, str]:
    """An object's path below the destination, or ``None`` and why not.

    ``strip`` characters of the key go first (``strip_length``); ``room`` is
    ``room_below(dest)``. A directory marker (a key ending in ``/`` with no
    bytes) is ``(None, "")``: not an object to link, silently passed over.
    """
    if key.endswith("/"):
        return (None, "") if size == 0 else (None, "empty name")
    if size > paths.MAX_FILE_SIZE:
        return None, TOO_LARGE
    rel = key[strip:]
    reason = _path_problem(rel, room)
    return (None, reason) if reason else (rel, "")


def _path_problem(rel: str, room: int) -> str:
    if "\x00" in rel:
        return "NUL in name"
    for name in rel.split("/"):
        if not name:
            return "empty name"
        if name in (".", ".."):
            return "'.' or '..' name"
        if len(name) > paths.MAX_NAME_BYTES // 4 and len(name.encode()) > paths.MAX_NAME_BYTES:
            return f"name longer than {paths.MAX_NAME_BYTES} bytes"
    if len(rel) > room // 4 and len(rel.encode()) > room:
        return f"path longer than {paths.MAX_PATH_BYTES} bytes"
    return ""


def _row(rel: str, summary: ObjectSummary) -> _Row:
    directory, _, name = rel.rpartition("/")
    return MirrorRow(directory, name, summary.key, summary.size, summary.etag)
