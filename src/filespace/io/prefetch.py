"""Reading one object in blocks: fetch what is asked, prefetch what comes next.

The object is an external one (``io.external``) or a native file's blocks in
a remote block store (``blocks.native.StoredBlocks``, whole-block requests,
no near-server streaming); what follows is told for the external case.

The object is cut into ``BLOCK_SIZE`` blocks, the unit of the cache and of
every request. One ``Reader`` serves one open handle:

1. A read names a position, a buffer and how much the caller really wants
   (``want``; the buffered layer passes the size the user asked for, so a
   4 KiB read does not turn into its 1 MiB buffer refill). The blocks under
   ``[position, position + want)`` are claimed from the cache: a memory hit
   is used at once, a block another reader is loading is waited on, a block
   on disk is read in place, and the rest is fetched, split over the pool's
   threads so a cold read of several blocks costs about one round trip. The
   reading thread does one of those requests itself instead of waiting.
2. A read that starts where the last one ended is sequential: the readahead
   window doubles (from one block, or the read's size if larger, up to
   ``MAX_WINDOW``) and the blocks up to ``position + want + window`` are
   requested in GETs of up to ``REQUEST_SIZE``, behind any urgent fetch. Any
   other read resets the window and drops readahead not yet started. While
   the server throttles, the window is capped at its pace's share of
   ``MAX_WINDOW`` (``objects.pace``).
3. The read then returns everything contiguous that is ready: at least the
   wanted bytes, plus the rest of the last block and any prefetched blocks
   that already arrived.

Why these sizes (measured on loopback SeaweedFS and through a 20 ms proxy,
see ``docs/benchmarks-history.md``): a ranged GET of up to 256 KiB costs about the
same as one of 4 KiB, so a random read pays one round trip and little
bandwidth; 8 MiB GETs amortize per-request costs for streaming; 64 MiB in
flight keeps eight such GETs going, what a 20 ms, 100 MB/s-per-connection
link needs. A near server (the quickest answer under ``NEAR_S``) gets 32 MiB
GETs instead: there the client and server share the CPU, and fewer, longer
streams cost less of it.

Sequential reads from a near server skip the blocks. Once a buffered
handle reads on from where it stopped (or asks for ``REQUEST_SIZE`` or more
at once) from a server whose quickest answer came under ``NEAR_S``, one GET
for the rest of the object is read straight into the caller's buffers
(``http.RangeStream``), continued by each following sequential read and
dropped by any other read. On loopback the client and server share the CPU,
and the block path's extra copy of every byte and per-block bookkeeping are
what the client spends most (see ``docs/benchmarks-history.md``); a far server needs
the parallel readahead instead. Such streams are not cached (a near server
answers as fast as the disk tier would), and unbuffered handles never use
them, since each of their reads must reach the server.

What is cached: blocks of random reads (and of objects up to
``REQUEST_SIZE``) go to memory and disk. Blocks of a stream skip the memory
tier (the stream holds what it needs itself) and go to disk only when it
pays: from a far server, and from the second time the object is streamed
on (an empty marker file records the first, for every process). So a one-off
scan of a big object neither pushes everything else out of the cache nor
pays for writing what nobody reads again, while a re-read object is on disk
from its third pass. A near server gives blocks back as fast as the disk
would, so its streams are not written at all.

Consistency (``io.confirm``): cached blocks are the linked version's bytes;
every request carries ``If-Match``; a buffered handle's first read and every
read of an unbuffered (``strict``) one reach the server, unless a revalidation
window (``revalidate_after_s``) says a recent confirmation stands in.

``io.preload.Preloader`` is a ``Reader`` that fetches whole objects into
the cache for ``fs.prefetch``.

Failures of a block another handle was loading are not taken as final (that
request may have been signed before a rekey or sent before this open): the
block is loaded again by this handle first.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from functools import partial

from filespace import runtime
from filespace.io import workers
from filespace.io.cache import BlockCache, BlockKey, Cancelled
from filespace.io.confirm import Confirmations
from filespace.io.source import BlockSource
from filespace.io.spans import parts_joined, runs
from filespace.objects import http

BLOCK_SIZE = 256 * 1024
REQUEST_SIZE = 8 * 1024 * 1024
NEAR_REQUEST_SIZE = 32 * 1024 * 1024
NEAR_S = 0.005
MAX_WINDOW = 64 * 1024 * 1024
# A stream's blocks are read from the socket this many at a time (views of one
# buffer; they are not kept in memory, so the shared buffer costs nothing).
_STREAM_BATCH = 4


class Reader:
    """Block reads of one object for one open handle (thread-safe)."""

    def __init__(
        self,
        source: BlockSource,
        cache: BlockCache | None = None,
        namespace: str | None = None,
        *,
        block_size: int = BLOCK_SIZE,
        pool: workers.Pool | None = None,
        strict: bool = False,
        request_size: int | None = None,
        sequential_from: int = -1,
        revalidate_after_s: float = 0.0,
        confirms: bool = True,
    ) -> None:
        self._source = source
        self._size = source.size
        self._block = block_size
        self._blocks = -(-source.size // block_size)
        shared = cache is not None and namespace is not None
        # Without a shared cache the blocks still need a single-flight table
        # (this handle's own), and nothing is kept beyond what it holds.
        self._cache = cache if cache is not None and shared else BlockCache(None, 0, memory=0)
        self._namespace = namespace if namespace is not None and shared else secrets.token_hex(16)
        self._answers = Confirmations(
            source,
            self._cache,
            self._namespace,
            check=shared and confirms,  # (a native file's stored blocks never change)
            strict=strict,
            window=revalidate_after_s,
        )
        self._pool = pool or workers.pool()
        self._ahead: dict[int, Future[memoryview]] = {}  # blocks this handle holds or awaits
        self._mine: set[int] = set()  # ...of which this handle is loading these
        self._jobs: list[workers.Job] = []  # its queued readahead
        self._request_size = request_size  # bytes per readahead request, if fixed
        self._next = sequential_from  # where a sequential read would start
        self._window = 0
        self._requested = 0  # blocks below this index were asked for by readahead
        self._stream_to_disk: bool | None = None  # known once this handle streams
        self._direct: http.RangeStream | None = None  # a near server's stream, read in place
        self._lock = threading.Lock()
        self._forks = runtime.forks()

    def __repr__(self) -> str:
        return f"Reader({self._source.path!r}, window={self._window})"

    @property
    def strict(self) -> bool:
        """Whether every read must reach the server (an unbuffered handle's)."""
        return self._answers.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._answers.strict = value

    # -- public --------------------------------------------------------------------
    def readinto(self, position: int, target: memoryview, want: int) -> int:
        """Copy bytes at ``position`` into ``target``: at least ``want`` of them unless EOF."""
        self._check_fork()
        with self._lock:
            count = min(len(target), self._size - position)
            if count <= 0:
                return 0
            self._begin()
            if self._goes_direct(position, want):
                return self._read_direct(position, target[:count])
            self._end_direct()
            copied = 0
            for part in self._parts(position, max(1, min(want, count)), count):
                target[copied : copied + len(part)] = part
                copied += len(part)
            self._confirm(position)
            return copied

    def read_all(self, position: int) -> bytes:
        """Everything from ``position`` to the end, prefetching at full window."""
        self._check_fork()
        with self._lock:
            if position >= self._size:
                return b""
            self._begin()
            parts: list[memoryview] = []
            start = position
            self._next, self._window = position, MAX_WINDOW  # the caller wants it all
            while position < self._size:
                remaining = self._size - position
                got = self._parts(position, min(remaining, REQUEST_SIZE), remaining)
                parts.extend(got)
                position += sum(len(part) for part in got)
            self._confirm(start)
            return parts_joined(parts)

    def holds(self, index: int) -> bool:
        """Whether block ``index`` is held, loading or queued for this handle."""
        return index in self._ahead

    def close(self) -> None:
        """Drop readahead not yet started, every block held and any direct stream."""
        with self._lock:
            self._end_direct()
            self._cancel_readahead()
            self._ahead.clear()
            self._mine.clear()

    # -- one read -----------------------------------------------------------------------
    def _check_fork(self) -> None:
        """A forked child inherits loads that the parent's threads will finish, not its own."""
        if self._forks != runtime.forks():
            self._forks = runtime.forks()
            self._lock = threading.Lock()
            self._ahead.clear()
            self._mine.clear()
            self._jobs.clear()
            self._direct = None  # the parent's connection: not ours to read or close
            self._pool = workers.pool()

    # -- streaming from a near server -----------------------------------------------------
    def _goes_direct(self, position: int, want: int) -> bool:
        """Whether this read streams straight into the caller's buffer (see the docstring)."""
        latency = self._source.latency
        return (
            not self.strict
            and latency is not None
            and latency < NEAR_S
            and self._size > REQUEST_SIZE
            and (position == self._next or want >= REQUEST_SIZE)
        )

    def _read_direct(self, position: int, target: memoryview) -> int:
        """Read ``len(target)`` bytes at ``position`` from one long GET, into ``target``."""
        stream = self._direct
        if stream is None or stream.position != position or stream.position >= stream.end:
            self._end_direct()
            self._cancel_readahead()  # the stream takes over from readahead
            self._ahead.clear()  # (loads under way still fill the cache for others)
            self._mine.clear()
            self._requested = 0
            stream = self._direct = self._source.open_stream(position, self._size)
        answered = stream.requests
        try:
            count = stream.readinto(target)
        except http.RangeError as problem:
            self._end_direct()
            raise self._source.error(problem) from None
        if stream.requests > answered:
            self._answers.answered(self._answers.epoch)  # the server answered during this read
        self._next = position + count
        self._confirm(position)
        return count

    def _end_direct(self) -> None:
        stream, self._direct = self._direct, None
        if stream is not None:
            stream.close()

    def _parts(self, position: int, want: int, limit: int) -> list[memoryview]:
        """Views of the bytes from ``position``: ``want`` or more, ``limit`` at most."""
        block = self._block
        first = position // block
        needed = (position + want - 1) // block + 1  # blocks [first, needed) must be waited for
        self._adapt(position, first, needed, want)
        inline = self._ensure(first, needed, urgent=True, run=False)
        if self._window:
            self._read_ahead(needed, position + want + self._window)
        if inline is not None:
            inline()  # after the readahead is queued, so both are under way
        parts: list[memoryview] = []
        taken = 0
        offset = position - first * block
        for index in itertools.count(first):
            flight = self._ahead.get(index)
            if flight is None:
                break
            if index >= needed and not (flight.done() and flight.exception() is None):
                break  # not wanted: take it only if it is already here
            page = self._result(index)
            if page is None:
                break
            part = page[offset : offset + limit - taken]
            parts.append(part)
            taken += len(part)
            offset = 0
            if taken >= limit:
                break
        end = position + taken
        for index in [i for i in self._ahead if i < end // block]:
            del self._ahead[index]  # consumed (or skipped); the cache keeps a copy
            self._mine.discard(index)
        self._next = end
        return parts

    def _adapt(self, position: int, first: int, needed: int, want: int) -> None:
        """Grow the window on sequential reads; reset it and drop readahead on others."""
        if position == self._next:
            self._window = min(self._max_window(), max(2 * self._window, want, self._block))
            if self._stream_to_disk is None and self._size > REQUEST_SIZE:
                # (Small objects are cached whole anyway: no marker needed.)
                self._stream_to_disk = self._answers.check and self._cache.streamed_before(
                    self._namespace
                )
            return
        if self._next < position < self._requested * self._block and self._window:
            return  # a skip forward inside the readahead: still streaming
        self._window = 0
        self._cancel_readahead()
        for index in [i for i in self._ahead if not first <= i < needed]:
            del self._ahead[index]
            self._mine.discard(index)
        self._requested = 0

    def _max_window(self) -> int:
        """``MAX_WINDOW``, or the server's pace's share of it while it throttles."""
        pace = self._source.pace
        if pace is None:
            return MAX_WINDOW
        return max(self._block, pace.limit(MAX_WINDOW // self._block) * self._block)

    def _read_ahead(self, start_block: int, end: int) -> None:
        """Ask for blocks up to byte ``end`` beyond those already asked for."""
        stop = min(self._blocks, -(-end // self._block))
        begin = max(start_block, self._requested)
        if stop <= begin:
            return
        window_blocks = max(1, self._window // self._block)
        if stop - begin < min(self._request_blocks(), window_blocks) // 2 and stop < self._blocks:
            return  # wait until a worthwhile request's worth is due
        self._ensure(begin, stop, urgent=False)
        self._requested = stop

    def _result(self, index: int) -> memoryview | None:
        """Block ``index``, waiting for it; ``OSError`` naming this handle's path on failure."""
        retries = 2
        while True:
            flight = self._ahead.get(index)
            if flight is None:
                return None
            try:
                return flight.result()
            except Exception as problem:
                self._ahead.pop(index, None)  # a later read tries again
                mine = index in self._mine
                self._mine.discard(index)
                # Another handle's load may have been dropped, or may have failed
                # for its own reasons (a request signed before a rekey, made
                # before this open): load the block here before failing.
                if isinstance(problem, Cancelled) or (not mine and retries):
                    retries -= 1
                    self._ensure(index, index + 1, urgent=True)
                    continue
                if isinstance(problem, http.RangeError):
                    raise self._source.error(problem) from None
                raise

    def _begin(self) -> None:
        self._answers.begin()

    def _confirm(self, position: int) -> None:
        """Unless the server answered this read (or the window allows), ask it."""
        self._answers.confirm(min(position, self._size - 1))

    # -- loading ------------------------------------------------------------------------
    def _key(self, index: int) -> BlockKey:
        return (self._namespace, index)

    def _length(self, index: int) -> int:
        return min(self._block, self._size - index * self._block)

    def _ensure(
        self, first: int, stop: int, *, urgent: bool, run: bool = True
    ) -> workers.Job | None:
        """Make every block in ``[first, stop)`` held, loading or queued by this handle.

        One urgent request is done by the calling thread (it would only wait
        otherwise): at once, or, with ``run=False``, by calling the job returned.
        """
        missing = [index for index in range(first, stop) if index not in self._ahead]
        if not missing:
            return None
        claims = self._cache.claim([self._key(index) for index in missing])
        owned: list[int] = []
        for index, (flight, mine) in zip(missing, claims, strict=True):
            self._ahead[index] = flight
            if mine:
                owned.append(index)
                self._mine.add(index)
        # Blocks of a stream are not kept in memory (the stream holds what it
        # needs, and a scan would flush everything else out); random reads' are.
        keep = not self._window or self._size <= REQUEST_SIZE
        if urgent and owned:
            # The caller waits for these anyway: look on disk right here.
            misses = []
            for index in owned:
                page = self._cache.read_disk(self._key(index), self._length(index))
                if page is None:
                    misses.append(index)
                else:
                    self._cache.fill(self._key(index), page, memory=keep, disk=False)
            owned = misses
        inline: workers.Job | None = None
        for start, end in runs(owned):
            for chunk_start, chunk_end in self._split(start, end, urgent):
                job = workers.Job(
                    partial(
                        self._load, chunk_start, chunk_end, not urgent, self._answers.epoch, keep
                    ),
                    partial(self._abandon, chunk_start, chunk_end),
                )
                if urgent and inline is None:
                    inline = job  # this thread would only wait: let it fetch instead
                    continue
                self._pool.submit(job, workers.URGENT if urgent else workers.READAHEAD)
                if not urgent:
                    self._jobs.append(job)
        if len(self._jobs) > 64:
            self._jobs = [job for job in self._jobs if job.queued]
        if inline is not None and run:
            inline()
            return None
        return inline

    def _request_blocks(self) -> int:
        """Blocks per streaming GET: larger (fewer in flight) when the server is near."""
        latency = self._source.latency
        size = NEAR_REQUEST_SIZE if latency is not None and latency < NEAR_S else REQUEST_SIZE
        return max(1, (self._request_size or size) // self._block)

    def _split(self, start: int, end: int, urgent: bool) -> Iterator[tuple[int, int]]:
        """Requests for blocks ``[start, end)``: spread over the pool when a reader waits."""
        count = end - start
        size = self._request_blocks()
        if urgent:
            size = max(1, min(size, -(-count // self._pool.workers)))
        for chunk in range(start, end, size):
            yield chunk, min(chunk + size, end)

    def _load(self, first: int, stop: int, look_on_disk: bool, epoch: int, keep: bool) -> None:
        """In a pool thread: fill blocks ``[first, stop)`` from disk or the network."""
        try:
            fetch = list(range(first, stop))
            if look_on_disk:
                fetch = []
                for index in range(first, stop):
                    page = self._cache.read_disk(self._key(index), self._length(index))
                    if page is None:
                        fetch.append(index)
                    else:
                        self._cache.fill(self._key(index), page, memory=keep, disk=False)
            if fetch:
                # One request from the first miss to the last: scattered hits
                # in between are fetched again rather than paid a round trip each.
                self._source.stream(
                    fetch[0] * self._block,
                    min((fetch[-1] + 1) * self._block, self._size),
                    self._block,
                    partial(self._deliver, epoch, keep, frozenset(fetch)),
                    1 if keep else _STREAM_BATCH,
                )
        except BaseException as problem:
            for index in range(first, stop):
                self._cache.fail(self._key(index), problem)  # no-op for blocks already filled
            if not isinstance(problem, Exception):
                raise

    def _deliver(
        self, epoch: int, keep: bool, wanted: frozenset[int], offset: int, data: memoryview
    ) -> None:
        # The server answered this If-Match after read ``epoch`` began.
        self._answers.answered(epoch)
        if offset // self._block not in wanted:
            return  # filled from disk already
        # Random reads' blocks always go to disk; a stream's only from a far
        # server, from its second pass on (see the module docstring).
        latency = self._source.latency
        far = latency is not None and latency >= NEAR_S
        disk = keep or (far and bool(self._stream_to_disk))
        self._cache.fill(self._key(offset // self._block), data, memory=keep, disk=disk)

    def _abandon(self, first: int, stop: int) -> None:
        for index in range(first, stop):
            self._cache.abandon(self._key(index))

    def _cancel_readahead(self) -> None:
        for job in self._jobs:
            job.cancel()
        self._jobs.clear()
