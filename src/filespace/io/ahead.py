"""Fetching files a reader will open, in its order, ahead of it: ``fs.prefetch``.

A data loader knows the order it will read its files in (the sampler's order
for the epoch). A ``Prefetch`` walks that order with up to
``workers.PREFETCH_WORKERS`` threads, each taking the next file, asking how big it is
(``plan``) and fetching it into the block cache, so that about that many
requests are in flight and the round trip is hidden.

It keeps pace with the reader: the bytes of files fetched (or being fetched)
that the reader has not opened yet are "ahead". Files are looked up a little
ahead of the fetching (at most ``_LOOKAHEAD`` per thread), and admitted to be
fetched strictly in order, each only while it fits under the budget (with
nothing ahead, any file may: else a file larger than the budget would stop
everything). Each ``open`` of a path the prefetch holds (``opened``, called
by ``fs.open``) takes that file's bytes off what is ahead and lets the next
files in. A file the reader opens before its turn is skipped. Failures are
kept per path (``errors``) and never stop the other files.

The threads are this process's prefetch pool (``workers.prefetch_pool``), not
the fetch pool of readers: a prefetch never holds up a read.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from filespace import runtime
from filespace.io import workers

_LOOKAHEAD = 2

Plan = Callable[[str], tuple[int, Callable[[], int] | None]]
"""A path to its size and a call that fetches it into the cache (``None``: nothing to do)."""


def budget(max_mb: float | None, capacity: int) -> int:
    """Bytes a prefetch may keep ahead: ``max_mb`` (checked), a quarter of the cache by
    default, never more than the cache (``capacity`` bytes)."""
    if max_mb is None:
        return capacity // 4
    if isinstance(max_mb, bool) or not isinstance(max_mb, int | float) or not max_mb > 0:
        raise ValueError(f"max_mb must be a positive number, got {max_mb!r}")
    wanted = max_mb * 1024 * 1024
    return capacity if wanted >= capacity else int(wanted)  # (inf: the whole cache)


@dataclass
class _Planned:
    """A file looked up: its place in the order, size and fetch (``None``: nothing to do)."""

    index: int
    size: int
    fetch: Callable[[], int] | None


class Prefetch:
    """Files being fetched into the cache ahead of a reader (made by ``fs.prefetch``).

    ``done`` says whether it is over (every file fetched, skipped or failed,
    or cancelled), ``wait`` waits for that, ``cancel`` stops it (fetches under
    way finish; nothing new starts). ``errors`` maps each path that could not
    be fetched to its error, as ``open`` would raise it (a missing file:
    ``FileNotFoundError``; a changed object: ``StaleFileError``);
    ``fetched`` counts the files fetched (or found cached) so far, and
    ``ahead_bytes`` is how much of them the reader has not opened yet.
    """

    def __init__(
        self,
        paths: Sequence[str],
        plan: Plan,
        budget: int,
        *,
        width: int | None = None,
        pool: workers.Pool | None = None,
    ) -> None:
        self._paths = list(paths)
        self._plan = plan
        self._budget = budget
        self._width = width or workers.PREFETCH_WORKERS
        self._pool = pool or workers.prefetch_pool()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiting: dict[str, deque[int]] = {}  # path -> its indexes not opened yet
        for index, path in enumerate(self._paths):
            self._waiting.setdefault(path, deque()).append(index)
        self._opened: set[int] = set()
        self._next = 0  # the next index to look up
        self._planned: dict[int, _Planned | None] = {}  # looked up, not admitted (None: skip)
        self._admit = 0  # the next index to admit
        self._ready: deque[_Planned] = deque()  # admitted, not yet taken by a thread
        self._charged: dict[int, int] = {}  # index -> bytes counted ahead
        self._running = 0
        self._cancelled = False
        self._forks = runtime.forks()  # a forked child runs none of it
        self.ahead_bytes = 0
        self.fetched = 0
        self.errors: dict[str, Exception] = {}

    def __repr__(self) -> str:
        state = "done" if self.done else f"{self.fetched} of {len(self._paths)} fetched"
        return f"Prefetch({len(self._paths)} files, {state})"

    # -- public ------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Whether nothing more will be fetched: all files handled, or cancelled."""
        if self._forks != runtime.forks():
            return True  # (a parent thread may have held the lock at the fork)
        with self._lock:
            return self._over()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until ``done``; ``False`` if ``timeout`` seconds passed first.

        A prefetch that is as far ahead as its budget allows only goes on as
        the reader opens files, so waiting for it without reading may not end.
        In a forked child a parent's prefetch is over (its threads are not there).
        """
        if self._forks != runtime.forks():
            return True
        with self._changed:
            return self._changed.wait_for(self._over, timeout=timeout)

    def cancel(self) -> None:
        """Start nothing more; fetches under way finish (``wait`` waits for them)."""
        with self._changed:
            self._cancelled = True
            self._ready.clear()
            self._changed.notify_all()

    # -- the reader's progress ---------------------------------------------------------
    def opened(self, path: str) -> None:
        """The reader opened ``path`` (normalized): its bytes are no longer ahead."""
        with self._lock:
            pending = self._waiting.get(path)
            if not pending:
                return
            index = pending.popleft()
            self._opened.add(index)
            self.ahead_bytes -= self._charged.pop(index, 0)
            self._admit_in_order()
            starts = self._starts()
        self._launch(starts)

    def start(self) -> Prefetch:
        """Begin fetching (``fs.prefetch`` calls it)."""
        with self._lock:
            starts = self._starts()
        self._launch(starts)
        return self

    # -- scheduling (the lock is held) ------------------------------------------------------
    def _over(self) -> bool:
        if self._running:
            return False
        return self._cancelled or (self._admit >= len(self._paths) and not self._ready)

    def _may_look_up(self) -> bool:
        return self._next < len(self._paths) and self._next - self._admit < _LOOKAHEAD * self._width

    def _admit_in_order(self) -> None:
        """Admit looked-up files in order while each fits under the budget."""
        while self._admit in self._planned:
            item = self._planned[self._admit]
            if item is not None and self._admit not in self._opened:
                if self.ahead_bytes and self.ahead_bytes + item.size > self._budget:
                    return  # the reader must move on first
                self._charged[item.index] = item.size
                self.ahead_bytes += item.size
                self._ready.append(item)
            del self._planned[self._admit]
            self._admit += 1

    def _starts(self) -> int:
        """How many more threads to start for what there is to do now."""
        if self._cancelled:
            return 0
        work = len(self._ready) + (self._width if self._may_look_up() else 0)
        count = max(0, min(self._width - self._running, work))
        self._running += count
        return count

    def _launch(self, count: int) -> None:
        for _ in range(count):
            self._pool.submit(workers.Job(self._run, self._dropped), workers.URGENT)

    def _dropped(self) -> None:
        with self._changed:
            self._running -= 1
            self._changed.notify_all()

    # -- the threads ------------------------------------------------------------------------
    def _run(self) -> None:
        """Fetch admitted files, else look up the next ones, until there is nothing to do."""
        try:
            while True:
                with self._lock:
                    if self._cancelled:
                        return
                    if self._ready:
                        item: _Planned | int = self._ready.popleft()
                    elif self._may_look_up():
                        item = self._next
                        self._next += 1
                    else:
                        return
                if isinstance(item, int):
                    self._look_up(item)
                else:
                    self._fetch(item)
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    def _look_up(self, index: int) -> None:
        path = self._paths[index]
        planned: _Planned | None = None
        if index not in self._opened:  # (else the reader got there first)
            try:
                size, fetch = self._plan(path)
                planned = _Planned(index, size, fetch)
            except Exception as problem:  # noqa: BLE001 - kept for the caller, as open raises it
                self._fail(path, problem)
        with self._lock:
            self._planned[index] = planned
            self._admit_in_order()
            starts = self._starts()  # more may be ready than this thread fetches
        self._launch(starts)

    def _fetch(self, item: _Planned) -> None:
        path = self._paths[item.index]
        try:
            if item.fetch is not None:
                item.fetch()
        except Exception as problem:  # noqa: BLE001 - kept for the caller, as a read raises it
            self._fail(path, problem)
            with self._lock:
                self.ahead_bytes -= self._charged.pop(item.index, 0)  # nothing kept
                self._admit_in_order()
            return
        with self._lock:
            self.fetched += 1

    def _fail(self, path: str, problem: Exception) -> None:
        with self._lock:
            self.errors.setdefault(path, problem)


class Prefetches:
    """The prefetches of one ``Filesystem``, told of each ``open`` (see ``Prefetch.opened``).

    A prefetch belongs to the process that started it: a forked child (a
    data-loader worker) forgets its parent's, whose threads are not there and
    whose locks a parent thread may have held at the fork.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: weakref.WeakSet[Prefetch] = weakref.WeakSet()
        self._forks = runtime.forks()

    def __bool__(self) -> bool:
        return bool(self._running) and self._forks == runtime.forks()

    def add(self, prefetch: Prefetch) -> None:
        """Tell ``prefetch`` of every ``open`` from now on."""
        self._check_fork()
        with self._lock:
            self._running.add(prefetch)

    def opened(self, path: str) -> None:
        """The reader opened ``path`` (normalized)."""
        self._check_fork()
        with self._lock:
            running = list(self._running)
        for prefetch in running:  # (a done one just keeps count)
            prefetch.opened(path)

    def _check_fork(self) -> None:
        if self._forks != runtime.forks():
            self._forks = runtime.forks()
            self._lock = threading.Lock()
            self._running = weakref.WeakSet()
