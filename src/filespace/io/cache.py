"""The block cache of external files: memory, then disk, loading each block once.

A block is named by ``(namespace, index)``. The namespace hashes what the
bytes belong to: the data store (or URL), the object key, the checksum (ETag)
and size seen at link time, and the block size. A changed object is linked
with a new checksum, so it can never be served an old entry; objects without
a checksum are not cached at all (nothing tells their versions apart).

- Memory: an LRU of blocks bounded in bytes, per ``BlockCache`` (so per open
  ``Filespace``).
- Disk: :class:`~filespace.io.diskcache.DiskTier` under
  ``<cache root>/<filespace id>``, bounded by ``cache_size_mb`` (0: no disk
  tier), shared with other processes; a directory that is not private is
  refused and a full or failing disk given up (:mod:`filespace.io.cachedir`),
  and the cache then runs from memory. Blocks are written by a background
  thread, in batches under one hold of the tier's ledger; when it falls behind
  by more than ``_HELP_PENDING`` bytes, each thread that brings a random or
  whole-file read's block writes a batch too (a busy process gives one thread
  few turns), and past ``_MAX_PENDING`` new blocks skip the disk (a stream's
  blocks never wait: a pass over a big object is never slower for its cache).
- Confirmations: when the server last confirmed an object (an ``If-Match``
  answered), in memory and as a stamp in the disk tier, so an open with a
  revalidation window (``filespace.open(revalidate_after_s=)``), in this
  process or the next, may skip asking again.
- Single flight: ``claim`` hands the first asker of a missing block the job of
  loading it and everyone else a future of the same bytes, so concurrent
  misses on one block cost one request.

The cache root is ``cache_dir`` if given, else ``$FILESPACE_CACHE_DIR``, else
``$XDG_CACHE_HOME/filespace``, else ``~/.cache/filespace``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from filespace import runtime
from filespace.io import cachedir
from filespace.io.diskcache import DiskTier

log = logging.getLogger(__name__)

BlockKey = tuple[str, int]
"""``(namespace, block index)``."""

CACHE_ENV = "FILESPACE_CACHE_DIR"
DEFAULT_MEMORY = 128 * 1024 * 1024
_MAX_PENDING = 64 * 1024 * 1024
_WRITE_BATCH = 2 * 1024 * 1024  # bytes of blocks the writer writes under one hold of the ledger
_HELP_PENDING = 16 * 1024 * 1024  # queued beyond this, filling threads write too
_HELP_BATCH = 512 * 1024  # what each of them writes at a time
_WRITER_IDLE_S = 2.0
_STREAMS_REMEMBERED = 4096
_DISK_FAILURES = 3  # consecutive refused writes before the disk tier is given up
_CLOCK_SLACK_S = 1.0  # a confirmation stamped later than now + this: the clock moved back


class Cancelled(Exception):
    """The load of a block was abandoned before it started; ask again."""


def namespace(source: str, checksum: str, size: int, block_size: int) -> str:
    """The namespace of an object's blocks (32 hex digits)."""
    text = f"{source}\x00{checksum}\x00{size}\x00{block_size}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where filespace caches live (one sub-directory per filespace id)."""
    if cache_dir is not None:
        return Path(cache_dir)
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "filespace"


class BlockCache:
    """Blocks of external files in memory and on disk, loaded once at a time."""

    def __init__(
        self,
        directory: Path | None,
        capacity: int,
        *,
        memory: int = DEFAULT_MEMORY,
    ) -> None:
        self.disk: DiskTier | None = None
        if directory is not None and capacity > 0:
            self.disk = DiskTier(directory, capacity)
        self._memory_limit = memory
        self._memory: OrderedDict[BlockKey, memoryview] = OrderedDict()
        self._memory_bytes = 0
        self._flights: dict[BlockKey, Future[memoryview]] = {}
        self._streamed: OrderedDict[str, None] = OrderedDict()  # namespaces, most recent last
        self._confirmations: OrderedDict[str, float] = OrderedDict()  # namespace -> when
        self._lock = threading.Lock()
        # The disk writer.
        self._queue: deque[tuple[BlockKey, memoryview]] = deque()
        self._due: OrderedDict[str, None] = OrderedDict()  # namespaces to stamp on disk
        self._pending = 0
        self._writing = 0  # batches being written (by the writer and helpers)
        self._writer: threading.Thread | None = None
        self._wake = threading.Condition(self._lock)
        self._disk_failures = 0
        self.dropped = 0  # blocks that skipped the disk because it fell behind
        self._lease: cachedir.Lease | None = None
        _caches.add(self)

    @classmethod
    def for_filespace(
        cls,
        filespace_id: str,
        cache_dir: str | os.PathLike[str] | None,
        cache_size_mb: int,
        *,
        location: str = "",
    ) -> BlockCache:
        """The cache of one filespace, as ``filespace.open`` configures it.

        ``location`` (its public form) goes into the directory's marker, so a
        prune can tell later whether the filespace is still there.
        """
        if cache_size_mb <= 0:
            return cls(None, 0)
        root = cache_root(cache_dir)
        try:
            lease = cachedir.Lease.take(root, filespace_id, location, cache_size_mb)
        except OSError as exc:
            cachedir.warn_refused(root / filespace_id, exc)
            return cls(None, 0)
        try:
            cachedir.auto_prune(root)
        except OSError as exc:  # housekeeping must never stop an open
            log.debug("pruning the caches under %s failed: %s", root, exc)
        cache = cls(lease.directory / cachedir.BLOCKS, cache_size_mb * 1024 * 1024)
        cache._lease = lease
        return cache

    def close(self) -> None:
        """Stop using the disk tier's directory (it may be pruned once nothing else does)."""
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()

    def __repr__(self) -> str:
        return f"BlockCache(disk={self.disk!r}, memory={self._memory_limit})"

    @property
    def capacity(self) -> int:
        """How many bytes of blocks it keeps: the disk tier's bound, else the memory tier's."""
        return self.disk.capacity if self.disk is not None else self._memory_limit

    # -- memory and single flight ----------------------------------------------------
    def claim(self, keys: Sequence[BlockKey]) -> list[tuple[Future[memoryview], bool]]:
        """For each key, a future of its bytes and whether the caller must load it.

        A caller that gets ``True`` must end with ``fill``, ``fail`` or
        ``abandon`` for that key, or other readers wait on it forever.
        """
        claimed: list[tuple[Future[memoryview], bool]] = []
        with self._lock:
            for key in keys:
                page = self._memory.get(key)
                if page is not None:
                    self._memory.move_to_end(key)
                    done: Future[memoryview] = Future()
                    done.set_result(page)
                    claimed.append((done, False))
                    continue
                flight = self._flights.get(key)
                if flight is not None:
                    claimed.append((flight, False))
                    continue
                flight = Future()
                self._flights[key] = flight
                claimed.append((flight, True))
        return claimed

    def fill(
        self, key: BlockKey, data: memoryview, *, memory: bool = True, disk: bool = True
    ) -> None:
        """A claimed block arrived: keep it in the tiers asked for and wake its readers."""
        with self._lock:
            if memory:
                self._remember(key, data)
            flight = self._flights.pop(key, None)
            if disk:
                self._enqueue(key, data)
            # Only blocks kept in memory (random and whole-file reads) help a
            # lagging writer: a stream's pass over a big object must never be
            # slower for its cache, so its blocks skip the disk instead.
            behind = disk and memory and self._pending > _HELP_PENDING
        if flight is not None:
            flight.set_result(data)
        if behind:
            self._help_writer()

    def fail(self, key: BlockKey, error: BaseException) -> None:
        """A claimed block could not be loaded: its readers get ``error``."""
        with self._lock:
            flight = self._flights.pop(key, None)
        if flight is not None:
            flight.set_exception(error)

    def abandon(self, key: BlockKey) -> None:
        """A claimed block will not be loaded after all (readers ask again)."""
        self.fail(key, Cancelled())

    def _remember(self, key: BlockKey, data: memoryview) -> None:
        size = len(data)
        if size > self._memory_limit:
            return
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_bytes -= len(old)
        self._memory[key] = data
        self._memory_bytes += size
        while self._memory_bytes > self._memory_limit:
            _, evicted = self._memory.popitem(last=False)
            self._memory_bytes -= len(evicted)

    def streamed_before(self, namespace: str) -> bool:
        """Note that an object is being streamed; whether it was before (by any process).

        Streams are admitted to the disk tier on their second pass, so a
        one-off scan of a big object does not push everything else out.
        """
        with self._lock:
            seen = namespace in self._streamed
            self._streamed[namespace] = None
            self._streamed.move_to_end(namespace)
            if len(self._streamed) > _STREAMS_REMEMBERED:
                self._streamed.popitem(last=False)
            disk = self.disk
        if disk is not None:
            seen = disk.mark(namespace) or seen
        return seen

    def confirmed(self, namespace: str, when: float) -> None:
        """The server confirmed the object of ``namespace`` at ``when`` (``time.time()``)."""
        with self._lock:
            if self._confirmations.get(namespace, 0.0) < when:
                self._confirmations[namespace] = when
            self._confirmations.move_to_end(namespace)
            if len(self._confirmations) > _STREAMS_REMEMBERED:
                self._confirmations.popitem(last=False)
            # The stamp is written by the disk writer once no block waits: a file
            # made in a busy directory can cost a millisecond, which neither the
            # reader nor the blocks queued for the disk should wait for.
            if self.disk is not None:
                self._due[namespace] = None
                if len(self._due) > _STREAMS_REMEMBERED:
                    self._due.popitem(last=False)  # (the disk is far behind: skip the oldest)
                self._start_writer()

    def confirmed_within(self, namespace: str, seconds: float) -> bool:
        """Whether the server confirmed that object less than ``seconds`` ago (any process)."""
        now = time.time()
        with self._lock:
            when = self._confirmations.get(namespace)
            disk = self.disk
        if (when is None or now - when >= seconds) and disk is not None:
            stamped = disk.stamped(namespace)  # another process may have asked since
            if stamped is not None and (when is None or stamped > when):
                when = stamped
        # A confirmation "from the future" means the clock moved back: trust nothing.
        return when is not None and now - seconds < when <= now + _CLOCK_SLACK_S

    def on_disk(self, key: BlockKey, length: int) -> bool:
        """Whether the disk tier has a file of the right length for the block (not read)."""
        return self.disk is not None and self.disk.has(key[0], key[1], length)

    def read_disk(self, key: BlockKey, length: int) -> memoryview | None:
        """The block from the disk tier, if there intact (call for claimed keys)."""
        if self.disk is None:
            return None
        return self.disk.get(key[0], key[1], length)

    # -- the disk writer -------------------------------------------------------------
    def _enqueue(self, key: BlockKey, data: memoryview) -> None:
        """Queue a block for the disk (the lock is held)."""
        if self.disk is None:
            return
        if self._pending + len(data) > _MAX_PENDING:
            self.dropped += 1
            return
        self._queue.append((key, data))
        self._pending += len(data)
        self._start_writer()

    def _start_writer(self) -> None:
        """Start (or wake) the disk writer (the lock is held)."""
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name="filespace-cache-writer", daemon=True
            )
            self._writer.start()
        elif not self._writing:
            self._wake.notify_all()  # (flush() waits on the same condition)

    def _write_loop(self) -> None:
        disk = self.disk
        assert disk is not None
        while True:
            batch: list[tuple[BlockKey, memoryview]] = []
            namespace, when = "", None
            with self._lock:
                if not self._queue and not self._due:
                    self._wake.wait(_WRITER_IDLE_S)
                if not self._queue and not self._due:
                    self._writer = None  # idle: the next block starts a new thread
                    self._wake.notify_all()
                    return
                if self._queue:  # blocks first; stamps when none waits
                    batch = self._take_batch()
                else:
                    namespace, _ = self._due.popitem(last=False)
                    when = self._confirmations.get(namespace)
                    self._writing += 1
            if batch:
                self._write_batch(disk, batch)
                with self._lock:
                    if self.disk is None:
                        self._writer = None
                        return
                continue
            if when is not None:
                disk.stamp(namespace, when)  # (best effort; never raises)
            with self._lock:
                self._writing -= 1
                self._wake.notify_all()

    def _help_writer(self) -> None:
        """The disk fell behind: the thread that brought a block writes a few itself.

        A busy process gives its one writer thread few turns of the interpreter,
        and it needs one for every file it writes. Each thread that fills the
        queue past ``_HELP_PENDING`` writing a small batch (waiting its turn at
        the ledger) keeps the disk tier whole, so the next pass reads it, at the
        price of slowing this pass down to what the disk takes: a reader that
        re-reads its data wins that back at once.
        """
        with self._lock:
            disk = self.disk
            if disk is None or self._pending <= _HELP_PENDING or not self._queue:
                return
            batch = self._take_batch(_HELP_BATCH)
        self._write_batch(disk, batch)

    def _take_batch(self, most: int = _WRITE_BATCH) -> list[tuple[BlockKey, memoryview]]:
        """Queued blocks, oldest first, up to ``most`` bytes (the lock is held)."""
        batch: list[tuple[BlockKey, memoryview]] = []
        size = 0
        while self._queue and size < most:
            batch.append(self._queue.popleft())
            size += len(batch[-1][1])
        self._writing += 1
        return batch

    def _write_batch(self, disk: DiskTier, batch: list[tuple[BlockKey, memoryview]]) -> None:
        """Write a taken batch under one hold of the disk's ledger; give the disk up if it
        keeps refusing."""
        try:
            stored = disk.put_many(batch)
        except Exception:  # noqa: BLE001 - a cache write must never break a read
            stored = [False] * len(batch)
        with self._lock:
            self._writing -= 1
            self._pending -= sum(len(data) for _, data in batch)
            for ok in stored:
                self._disk_failures = 0 if ok else self._disk_failures + 1
            if self._disk_failures >= _DISK_FAILURES and self.disk is disk:
                self.disk = None  # the disk keeps refusing: run from memory
                self._queue.clear()
                self._due.clear()
                self._pending = 0
                cachedir.warn_given_up(disk.directory, disk.last_error)
            if not self._queue:
                self._wake.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until queued blocks are on disk; ``False`` if ``timeout`` passed first."""
        with self._lock:
            return self._wake.wait_for(
                lambda: not self._queue and not self._due and not self._writing, timeout=timeout
            )

    def _after_fork(self) -> None:
        """In a forked child: the parent's threads, loads and locks are not here."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._flights.clear()
        self._queue.clear()
        self._due.clear()
        self._pending = 0
        self._writing = 0
        self._writer = None

    def clear_memory(self) -> None:
        """Forget the memory tier (the disk tier stays)."""
        with self._lock:
            self._memory.clear()
            self._memory_bytes = 0


_caches: weakref.WeakSet[BlockCache] = weakref.WeakSet()


@runtime.on_fork
def _reset_after_fork() -> None:
    for cache in list(_caches):
        cache._after_fork()
