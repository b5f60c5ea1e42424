"""How fast one endpoint may be asked, learned from its throttling answers.

S3 answers ``503 SlowDown`` (other servers ``429``) to a client that asks
too fast, and asks it to back off exponentially with jitter and to slow down
rather than retry at the same rate. One ``Pace`` per endpoint (``of``) is
shared by everything in this process that talks to it: the readers' ranged
GETs (``objects.http``) and botocore's listings, HEADs and block GETs and
PUTs (``objects.s3`` hooks it into botocore's retry events). The retry loops
stay where they are; the pace only says how long to wait and how much to
send:

- ``delay``: full-jitter exponential backoff, ``uniform(0, min(cap, base *
  2**attempt))``, and never less than the server's ``Retry-After`` (itself
  capped), which also holds every other request to the endpoint back.
- ``wait``: after a throttle, request starts are spaced out. The allowed rate
  is cut to half the rate measured over the last second (at most one cut per
  second: the answers to requests already in flight say nothing new), grows
  by about ``_STEP`` requests/s (or ``_GROWTH`` of itself, if more) per second
  of successes, and is lifted after ``_QUIET_S`` without a throttle (additive
  increase, multiplicative decrease).
- ``limit``: the share of its concurrency a caller may use (readahead GETs in
  flight, HEAD workers) halves on a throttle and grows back by one in
  ``_SLOTS`` per ``_SLOTS * share`` successes; ``slot`` holds a caller to it.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from filespace import runtime

BASE_DELAY_S = 0.1
MAX_DELAY_S = 5.0
"""The longest single wait, ``Retry-After`` included."""

THROTTLE_STATUSES = frozenset({429, 503})
THROTTLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "RequestLimitExceeded"}
)

_STEP = 0.5  # requests/s the allowed rate grows per second of successes, at least
_GROWTH = 0.05  # ... or this part of itself, for a fast endpoint
_MIN_RATE = 0.5  # requests/s: the slowest the pace ever goes
_QUIET_S = 30.0  # no throttle for this long: the rate limit is lifted
_SLOTS = 64  # the resolution of the concurrency share


class Pace:
    """The shared pace of one endpoint (thread-safe); see the module's docstring."""

    def __init__(
        self,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Condition()
        self._rate: float | None = None  # requests/s allowed; None: as fast as asked
        self._next = 0.0  # no request starts before this
        self._starts: deque[float] = deque()  # request starts in the last second
        self._slots = float(_SLOTS)
        self._cut_at = -1e18
        self._busy = 0  # callers inside ``slot``
        self.throttles = 0  # throttling answers seen

    def __repr__(self) -> str:
        return f"Pace(rate={self.rate}, share={self.share:.3f}, throttles={self.throttles})"

    @property
    def rate(self) -> float | None:
        """Requests per second allowed now (``None``: not limited)."""
        return self._rate

    @property
    def share(self) -> float:
        """The part of their concurrency callers may use now, in (0, 1]."""
        return self._slots / _SLOTS

    def limit(self, ceiling: int) -> int:
        """How many of ``ceiling`` concurrent requests a caller may have in flight now."""
        return max(1, min(ceiling, int(ceiling * self._slots / _SLOTS)))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        with self._lock:
            jitter = self._rng.uniform(0.0, min(MAX_DELAY_S, BASE_DELAY_S * 2**attempt))
        return max(jitter, min(MAX_DELAY_S, retry_after)) if retry_after else jitter

    def wait(self) -> None:
        """Before a request: sleep until this endpoint may be asked again."""
        with self._lock:
            now = self._clock()
            while self._starts and self._starts[0] <= now - 1.0:
                self._starts.popleft()
            start = max(now, self._next)
            if self._rate is not None:
                if now - self._cut_at >= _QUIET_S:
                    self._rate = None
                else:
                    self._next = start + 1.0 / self._rate
            self._starts.append(start)
        if start > now:
            self._sleep(start - now)

    def throttled(self, retry_after: float | None = None) -> None:
        """An answer said to slow down: cut the rate and the concurrency share."""
        with self._lock:
            now = self._clock()
            self.throttles += 1
            if retry_after:
                self._next = max(self._next, now + min(MAX_DELAY_S, retry_after))
            if now - self._cut_at < 1.0:
                return
            self._cut_at = now
            measured = float(sum(1 for at in self._starts if at > now - 1.0))
            current = measured if self._rate is None else min(self._rate, max(measured, 1.0))
            self._rate = max(_MIN_RATE, current / 2)
            # The next request (the throttled one's retry, often) keeps the new spacing.
            last = self._starts[-1] if self._starts else now
            self._next = max(self._next, last + 1.0 / self._rate)
            self._slots = max(1.0, self._slots / 2)

    def succeeded(self) -> None:
        """An answer came without a throttle: grow the rate and the share a little."""
        with self._lock:
            if self._rate is not None:
                self._rate += max(_STEP, _GROWTH * self._rate) / self._rate
            if self._slots < _SLOTS:
                self._slots = min(float(_SLOTS), self._slots + 1.0 / self._slots)
            self._lock.notify_all()

    @contextmanager
    def slot(self, ceiling: int) -> Iterator[None]:
        """Hold one of ``limit(ceiling)`` places for the duration of a request."""
        with self._lock:
            while self._busy >= self.limit(ceiling):
                self._lock.wait(1.0)
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                self._lock.notify_all()


def is_throttle(status: int, code: str) -> bool:
    """Whether an answer (HTTP status, S3 error code) asks the client to slow down."""
    return status in THROTTLE_STATUSES or code in THROTTLE_CODES


def endpoint_of(url: str) -> str:
    """The part of ``url`` a pace belongs to: ``scheme://host:port``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header's seconds (an HTTP date is not honoured: ``None``)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def _registry() -> dict[str, Pace]:
    return {}


_paces = runtime.singleton(_registry)
_registry_lock = threading.Lock()


def of(endpoint: str) -> Pace:
    """The pace of ``endpoint`` (``scheme://host:port``) in this process."""
    paces = _paces()
    found = paces.get(endpoint)
    if found is None:
        with _registry_lock:
            found = paces.setdefault(endpoint, Pace())
    return found


def for_url(url: str) -> Pace:
    """The pace of the endpoint ``url`` points at."""
    return of(endpoint_of(url))
