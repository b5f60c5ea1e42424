"""Presigned GET URLs for linked objects, cached and re-signed before expiry.

A URL is reused while more of its lifetime is left than a margin (a tenth of
the lifetime, at least 30 s, at most half the lifetime), so a read that
outlasts a short-lived URL quietly gets a fresh one.
Each signer belongs to one set of credentials: a rekey makes a new signer and
drops the old one with every URL it signed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from filespace.objects.s3 import S3Client

_CACHED_URLS = 4096
_MIN_MARGIN_S = 30.0


class UrlSigner:
    """Signs GET URLs for one data store's credentials."""

    def __init__(
        self,
        client: S3Client,
        lifetime_s: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` tells the seconds that count down a URL's life (tests set it)."""
        self.client = client
        self._clock = clock
        self._lifetime_s = lifetime_s
        self._margin_s = min(max(lifetime_s / 10, _MIN_MARGIN_S), lifetime_s / 2)
        self._urls: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"UrlSigner({self.client!r}, lifetime_s={self._lifetime_s})"

    def url(self, key: str, *, fresh: bool = False) -> str:
        """A URL for ``key`` with comfortable time left; ``fresh`` forces a new one."""
        now = self._clock()
        with self._lock:
            cached = self._urls.get(key)
            if cached is not None and not fresh and cached[1] - now > self._margin_s:
                self._urls.move_to_end(key)
                return cached[0]
        signed = self.client.presign_get(key, self._lifetime_s)
        with self._lock:
            self._urls[key] = (signed, now + self._lifetime_s)
            self._urls.move_to_end(key)
            while len(self._urls) > _CACHED_URLS:
                self._urls.popitem(last=False)
        return signed
