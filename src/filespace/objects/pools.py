"""The HTTP connection pools of this process, and one GET sent through them.

``pool`` reaches any address; ``guarded_pool`` (for HTTP links) only checked
ones (``objects.guard``). Both are urllib3 ``PoolManager``s made once per
process (a forked child makes its own), with no retries of their own: what
is retried, and how, is ``objects.http``'s business.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from filespace import runtime
from filespace.objects import guard as guards

if TYPE_CHECKING:
    import urllib3

_CONNECT_TIMEOUT_S = 5.0
# No byte for this long on an open connection is a stall: retry elsewhere.
_READ_TIMEOUT_S = 5.0


def _options() -> dict[str, Any]:
    import urllib3

    return {
        "num_pools": 64,
        "maxsize": 32,
        "block": False,
        "retries": False,
        "timeout": urllib3.Timeout(connect=_CONNECT_TIMEOUT_S, read=_READ_TIMEOUT_S),
    }


def _new_pool() -> urllib3.PoolManager:
    import urllib3

    return urllib3.PoolManager(**_options())


pool = runtime.singleton(_new_pool)
"""The connection pool of this process (a forked child makes its own)."""

guarded_pool = runtime.singleton(lambda: guards.guarded_pool(**_options()))
"""The pool for HTTP links: its connections reach only public addresses."""


def get(manager: urllib3.PoolManager, url: str, options: dict[str, Any]) -> Any:
    """GET ``url`` through ``manager``'s connection pool for its server.

    What ``PoolManager.request`` does for a URL without redirects, parsing the
    URL once: it parses and percent-checks the whole URL, then the server's
    pool checks the request target again, a byte at a time in Python, and a
    presigned URL's long query makes that a sixth of a small read's CPU.
    """
    origin, target = _split_url(url)
    scheme, host, port = _origin(origin)
    server = manager.connection_from_host(host, port=port, scheme=scheme)
    return server.urlopen("GET", target, assert_same_host=False, **options)


def _split_url(url: str) -> tuple[str, str]:
    """``scheme://authority`` and the request target (the pool drops a fragment)."""
    after = url.find("://")
    after = after + 3 if after >= 0 else 0
    cut = len(url)
    for mark in "/?#":
        found = url.find(mark, after)
        if 0 <= found < cut:
            cut = found
    target = url[cut:]
    if not target.startswith("/"):
        target = "/" + target
    return url[:cut], target


@functools.lru_cache(maxsize=256)
def _origin(origin: str) -> tuple[str | None, str | None, int | None]:
    """A URL's scheme, host and port (``LocationValueError`` if malformed); remembered."""
    import urllib3

    parsed = urllib3.util.parse_url(origin)
    return parsed.scheme, parsed.host, parsed.port
