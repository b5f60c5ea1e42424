"""Fetching a whole object into the block cache ahead of its reader (``fs.prefetch``).

A ``Preloader`` is a ``Reader`` whose one job is ``preload``: claim each
block, skip those in memory, on disk or being loaded by someone else, and
fetch the rest in requests of up to ``REQUEST_SIZE``, made by the calling
thread (a prefetch thread; the readers' fetch pool is left alone). Blocks
someone else is loading are waited for: their answer confirms the object. Blocks go
to memory and disk, as a random read's do. An object already cached costs no
request, unless a revalidation window is set and has run out: then one 1-byte
check renews it, ahead of the reader who would otherwise pay for it.
"""

from __future__ import annotations

from concurrent import futures
from concurrent.futures import Future

from filespace.io.prefetch import Reader
from filespace.io.spans import runs
from filespace.objects import http


class Preloader(Reader):
    """A ``Reader`` that fills the cache with a whole object."""

    def preload(self) -> int:
        """Fetch every block not cached into the cache; bytes fetched.

        Raises the ``OSError`` a read would (``ESTALE``, ``EIO``, ...).
        """
        self._check_fork()
        fetched = 0
        loading: list[Future[memoryview]] = []
        with self._lock:
            self._begin()
            step = self._request_blocks()
            for first in range(0, self._blocks, step):
                indexes = range(first, min(first + step, self._blocks))
                claims = self._cache.claim([self._key(index) for index in indexes])
                missing: dict[int, Future[memoryview]] = {}
                for index, (flight, mine) in zip(indexes, claims, strict=True):
                    if not mine:
                        if not flight.done():
                            loading.append(flight)
                        continue  # in memory, or another reader is loading it
                    if self._cache.on_disk(self._key(index), self._length(index)):
                        self._cache.abandon(self._key(index))  # a reader finds it there
                    else:
                        missing[index] = flight
                for start, end in runs(list(missing)):
                    self._load(start, end, False, self._answers.epoch, True)
                for flight in missing.values():
                    problem = flight.exception()
                    if isinstance(problem, http.RangeError):
                        raise self._source.error(problem) from None
                    if problem is not None:
                        raise problem
                fetched += sum(self._length(index) for index in missing)
            # Blocks another reader is loading: their answer confirms the object
            # too (``Confirmations.answered``), so wait for it rather than ask.
            futures.wait(loading)
            self._answers.renew()  # the window starts now, ahead of the reader
        return fetched
