"""The fetch threads of this process: a small pool with priorities and cancelling.

Blocks a reader is waiting for go before readahead, and readahead that a
reader gave up on (it seeked away or closed) is dropped before it starts, so
a random read after a long sequential one does not queue behind it. The
threads are daemons (a request stuck at exit does not hold the interpreter)
and a forked child starts its own.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable

from filespace import runtime

URGENT = 0
READAHEAD = 1
WORKERS = 8


class Job:
    """One queued call; ``cancel`` stops it if it has not started."""

    __slots__ = ("_lock", "_on_cancel", "_run", "_state")

    def __init__(self, run: Callable[[], None], on_cancel: Callable[[], None]) -> None:
        self._run = run
        self._on_cancel = on_cancel
        self._state = "queued"
        self._lock = threading.Lock()

    def cancel(self) -> bool:
        """Drop the job unless it already started; ``True`` if it was dropped."""
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "cancelled"
        self._on_cancel()
        return True

    @property
    def queued(self) -> bool:
        """Not started and not cancelled."""
        return self._state == "queued"

    def _start(self) -> bool:
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "running"
            return True

    def __call__(self) -> None:
        if self._start():
            self._run()


class Pool:
    """``WORKERS`` daemon threads taking jobs by priority, then in order."""

    def __init__(self, workers: int = WORKERS) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Job]] = queue.PriorityQueue()
        self._order = itertools.count()
        self.workers = workers
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, job: Job, priority: int) -> Job:
        """Queue ``job``; lower priorities run first."""
        self._queue.put((priority, next(self._order), job))
        if len(self._threads) < self.workers:
            with self._lock:
                if len(self._threads) < self.workers:
                    thread = threading.Thread(
                        target=self._work, name=f"filespace-fetch-{len(self._threads)}", daemon=True
                    )
                    self._threads.append(thread)
                    thread.start()
        return job

    def _work(self) -> None:
        while True:
            _, _, job = self._queue.get()
            try:
                job()
            except Exception:  # noqa: BLE001, S112 - jobs report their own failures
                continue


pool = runtime.singleton(Pool)
"""The fetch pool of this process (a forked child makes its own)."""

PREFETCH_WORKERS = 16

prefetch_pool = runtime.singleton(lambda: Pool(PREFETCH_WORKERS))
"""The threads of ``fs.prefetch`` (``io.ahead``): apart, so a prefetch never holds up a read."""
