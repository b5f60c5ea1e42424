"""``connect.follow``: apply the event documents a feed delivers; reconcile now and then.

The loop: fetch what the feed has (up to ``FETCH_LIMIT`` messages, waiting at
most ``WAIT_S`` for the first), apply their records (``events.Applier``: one
engine transaction per 2,000 keys), and only then acknowledge the messages. A
crash before the acknowledgement makes the feed deliver them again, and
applying them again changes nothing (they are stale by then): at-least-once,
with the same end state as exactly-once.

A feed that fails while running is connected again with backoff (``BACKOFF_S``
growing to ``MAX_BACKOFF_S``); what it had delivered and not been acknowledged
comes back. With ``reconcile_every``, an incremental ``mirror`` of the prefix
runs at start and then every that many seconds (at the end, with
``until="drained"``), catching changes whose events were never delivered.

A drain (``until="drained"``, ``follow --once``) ends after a batch when the feed
says nothing more is waiting (``Feed.queued``: RabbitMQ's queue count, JetStream's
pending count), or else at the first fetch that finds nothing.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from filespace.connect.events import Applier, parse_records
from filespace.connect.feeds import Feed, FeedError
from filespace.connect.models import MirrorReport, SyncReport
from filespace.redaction import public_location

FETCH_LIMIT = 1000
"""Messages applied together (one acknowledgement). MinIO and Ceph send one record per
message, so this is what amortizes a batch's fixed cost when events come fast."""

WAIT_S = 0.5
"""How long a fetch waits for a first message: the longest a stop waits too."""

DRAIN_WAIT_S = 0.1
"""In a drain that has had messages, how long an empty fetch waits before the feed counts
as drained: by then the broker is handing over what is queued without a pause."""

BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0

KEPT = 100
"""Skipped keys and errors kept in ``stats`` (the most recent ones); all are counted."""


@dataclass
class FollowStats:
    """What a follower has done so far."""

    messages: int = 0
    report: SyncReport = field(default_factory=SyncReport)
    """Every record's outcome; ``skipped`` and ``errors`` hold the last 100 (see counts)."""
    skipped: int = 0
    errors: int = 0
    reconciles: int = 0
    reconciled: int = 0
    """Links the reconciles added, re-pointed or removed (not counted in ``report``)."""
    reconnects: int = 0
    last_problem: str = ""
    """The last time the feed failed, what it said (no password)."""


Until = Literal["drained"] | float | None


class Follower:
    """Applies what a feed delivers to one directory; ``run`` it, ``stop`` it from anywhere."""

    def __init__(
        self,
        source: str,
        feed: Feed,
        applier: Applier,
        reconcile: Callable[[], MirrorReport] | None,
        reconcile_every: float | None,
        progress: Callable[[FollowStats], object] | None = None,
    ) -> None:
        self._source = public_location(source)
        self._feed = feed
        self._applier = applier
        self._reconcile = reconcile
        self._every = reconcile_every
        self._progress = progress
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stats = FollowStats()

    def __repr__(self) -> str:
        return f"Follower({self._source!r})"

    @property
    def stats(self) -> FollowStats:
        """A copy of the counts so far."""
        with self._lock:
            return _copy(self._stats)

    def stop(self) -> None:
        """Ask ``run`` to return after the batch in hand is committed and acknowledged."""
        self._stop.set()

    def run(self, until: Until = None) -> FollowStats:
        """Run until ``stop()``, for ``until`` seconds, or till the feed is empty (``"drained"``).

        ``FeedError`` if the feed cannot be reached at start; later failures are
        retried with backoff. A webhook is never drained: ``"drained"`` then ends
        at the first wait with nothing posted. A drain also waits for messages a
        killed run had fetched and not acknowledged, until the broker delivers
        them again (JetStream: after the consumer's AckWait).
        """
        if (
            until is not None
            and until != "drained"
            and (isinstance(until, bool) or not isinstance(until, int | float) or until < 0)
        ):
            raise ValueError(f'until must be None, "drained" or seconds, got {until!r}')
        deadline = None if until is None or until == "drained" else time.monotonic() + until
        self._feed.connect()
        self._tell()  # connected: the progress callback hears it before any batch
        next_reconcile = time.monotonic() if self._every and until != "drained" else None
        first_wait = WAIT_S
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if next_reconcile is not None and now >= next_reconcile:
                    self._reconciled()
                    next_reconcile = time.monotonic() + (self._every or 0)
                wait = first_wait if deadline is None else max(0.0, min(WAIT_S, deadline - now))
                got = self._batch(wait)
                if got > 0 and until == "drained":
                    first_wait = DRAIN_WAIT_S
                    if self._empty():
                        break
                if got == 0 and until == "drained" and not self._outstanding():
                    break
            if until == "drained" and self._every and not self._stop.is_set():
                self._reconciled()
        finally:
            self._feed.close()
        return self.stats

    def _batch(self, wait: float) -> int:
        """Fetch, apply and acknowledge one batch; how many messages (-1: the feed failed)."""
        try:
            messages = self._feed.fetch(FETCH_LIMIT, wait)
        except FeedError as exc:
            self._reconnect(str(exc))
            return -1
        if not messages:
            return 0
        report = self._applier.apply(
            outcome for message in messages for outcome in parse_records(message.body)
        )
        try:
            self._feed.ack(messages)
        except FeedError as exc:
            # Committed but not acknowledged: they come again, stale, and change nothing.
            self._reconnect(str(exc))
        with self._lock:
            stats = self._stats
            stats.messages += len(messages)
            stats.skipped += len(report.skipped)
            stats.errors += len(report.errors)
            stats.report.add(report)
            del stats.report.skipped[:-KEPT]
            del stats.report.errors[:-KEPT]
        self._tell()
        return len(messages)

    def _empty(self) -> bool:
        """Whether the feed says nothing is waiting (``False`` when it cannot tell)."""
        try:
            queued = self._feed.queued()
        except FeedError as exc:
            self._reconnect(str(exc))
            return False
        return queued == 0 and not self._outstanding()

    def _outstanding(self) -> bool:
        """Whether a consumer that went away (a killed run) still holds messages."""
        try:
            return self._feed.outstanding() > 0
        except FeedError as exc:
            self._reconnect(str(exc))
            return True

    def _reconnect(self, problem: str) -> None:
        """Connect the feed again, backing off, until it answers or ``stop()``."""
        delay = BACKOFF_S
        with self._lock:
            self._stats.last_problem = problem
        self._tell()
        self._feed.close()
        while not self._stop.is_set():
            self._stop.wait(random.uniform(delay / 2, delay))
            if self._stop.is_set():
                return
            try:
                self._feed.connect()
            except FeedError as exc:
                with self._lock:
                    self._stats.last_problem = str(exc)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            with self._lock:
                self._stats.reconnects += 1
            self._tell()
            return

    def _reconciled(self) -> None:
        if self._reconcile is None:
            return
        mirrored = self._reconcile()
        with self._lock:
            self._stats.reconciled += mirrored.added + mirrored.updated + mirrored.removed
            self._stats.reconciles += 1
        self._tell()

    def _tell(self) -> None:
        if self._progress is not None:
            self._progress(self.stats)


def _copy(stats: FollowStats) -> FollowStats:
    report = dataclasses.replace(
        stats.report, skipped=list(stats.report.skipped), errors=list(stats.report.errors)
    )
    return dataclasses.replace(stats, report=report)
