"""Whether the reads of one handle were confirmed by the server: epochs and the window.

Cached blocks are the bytes of the version that was linked (the namespace
includes its checksum), so serving them is never serving another version.
Each request carries ``If-Match``, so once the object changes, the next block
that needs the network fails with ``ESTALE``. When every block is cached,
what happens is decided per read:

- A buffered handle (the default ``open``) makes its first read reach the
  server: if no request of that read was answered, a 1-byte ``If-Match`` GET
  confirms the object (and that the current credentials may read it) before
  the bytes are returned. Later reads serve cached blocks without asking. So
  every ``open`` sees a change made before it, and an open handle may go on
  reading cached bytes of the version it opened (they are that version).
- An unbuffered handle (``buffering=0``, ``strict``) does the same for every
  read, as ``O_DIRECT`` would: each read costs at least one request, and a
  change made between two reads fails the second with ``ESTALE``.
- A revalidation window (``window`` > 0 seconds, buffered handles only): the
  first read of a handle skips that 1-byte request when the server confirmed
  the object (any ``If-Match`` answered, in any process sharing the disk
  tier) less than that long ago. Handles with a window record when
  (``BlockCache.confirmed``); the time recorded is when the read that got
  the answer began. Bytes that must still be fetched carry ``If-Match`` as
  always.

Reads are numbered ("epochs"): the first read, and with ``strict`` every
read, gets a new number, and must see a server answer to a request made
since it began before it returns.
"""

from __future__ import annotations

import time

from filespace.io.cache import BlockCache
from filespace.io.source import BlockSource
from filespace.objects import http


class Confirmations:
    """The epochs of one handle's reads, and which of them the server answered."""

    def __init__(
        self,
        source: BlockSource,
        cache: BlockCache,
        namespace: str,
        *,
        check: bool,
        strict: bool,
        window: float,
    ) -> None:
        self._source = source
        self._cache = cache
        self._namespace = namespace
        self.check = check  # blocks may come from elsewhere: confirm the first read
        self.strict = strict
        self.window = window
        self.epoch = 0
        self.confirmed = 0  # the last epoch a server answer was seen for
        self._noted = 0  # the last epoch whose confirmation the cache was told of
        self._began = 0.0  # when the current epoch began (time.time())

    def begin(self) -> None:
        """A read starts: a new epoch if it must be confirmed on its own."""
        if self.strict or (self.check and self.epoch == 0):
            self.epoch += 1
            self._began = time.time()

    def answered(self, epoch: int) -> None:
        """The server answered a request made during ``epoch`` (any thread).

        With a window the cache hears of it at once, before the block is handed
        over: a reader waiting for a block a prefetch is loading then finds the
        object confirmed instead of asking again.
        """
        self.confirmed = max(self.confirmed, epoch)
        self.note()

    def confirm(self, offset: int) -> None:
        """Unless the server answered this epoch (or the window allows), ask it at ``offset``."""
        if self.confirmed < self.epoch:
            if (
                not self.strict
                and self.window > 0
                and self._cache.confirmed_within(self._namespace, self.window)
            ):
                self.confirmed = self._noted = self.epoch  # no answer: nothing to record
                return
            try:
                self._source.check(offset)
            except http.RangeError as problem:
                raise self._source.error(problem) from None
            self.confirmed = self.epoch
        self.note()

    def renew(self) -> None:
        """After a preload: with a window, make sure it starts now (ask if nothing did)."""
        if self.check and self.confirmed < self.epoch and self.window > 0:
            self.confirm(0)
        self.note()

    def note(self) -> None:
        """With a window: tell the cache the server confirmed the object this epoch (once)."""
        if self.window > 0 and self.check and self._noted < self.epoch <= self.confirmed:
            self._noted = self.epoch
            self._cache.confirmed(self._namespace, self._began)
