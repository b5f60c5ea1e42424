"""Ranged HTTP GETs over one pooled, thread-safe urllib3 client.

Every request names the bytes it wants and, when the object's identity is
known, the ETag it must still have (``If-Match``). Transient failures are
retried with exponential backoff and full jitter; what does not pass is raised
as one of the small error classes below, which the readers turn into
``OSError`` with the file's path.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import urllib3

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_ATTEMPTS = 6
_BASE_DELAY_S = 0.1
_MAX_DELAY_S = 3.0

_pools: dict[int, urllib3.PoolManager] = {}
_pool_lock = threading.Lock()


def pool() -> urllib3.PoolManager:
    """The connection pool of this process (a forked child makes its own)."""
    pid = os.getpid()
    manager = _pools.get(pid)
    if manager is None:
        with _pool_lock:
            manager = _pools.get(pid)
            if manager is None:
                import urllib3

                manager = urllib3.PoolManager(
                    num_pools=64,
                    maxsize=32,
                    block=False,
                    retries=False,
                    timeout=urllib3.Timeout(connect=5.0, read=30.0),
                )
                _pools.clear()
                _pools[pid] = manager
    return manager


class RangeError(Exception):
    """A ranged GET failed; subclasses say how."""


class Stale(RangeError):
    """The object is not the one linked (changed, replaced or deleted)."""


class Expired(RangeError):
    """The presigned URL was refused as expired or mis-signed: sign again."""


class Failed(RangeError):
    """A lasting failure (retries exhausted, or an answer that won't change)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """What the bytes must belong to: an ETag and/or a total size."""

    etag: str = ""
    size: int | None = None


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def _error_code(body: bytes) -> str:
    start = body.find(b"<Code>")
    end = body.find(b"</Code>")
    if start < 0 or end < 0:
        return ""
    return body[start + 6 : end].decode("utf-8", "replace")


def get_range(url: str, start: int, end: int, identity: Identity) -> bytes:
    """Bytes ``[start, end)`` of the object at ``url``; ``end`` is exclusive."""
    import urllib3

    headers = {"Range": f"bytes={start}-{end - 1}"}
    if identity.etag:
        headers["If-Match"] = _quoted(identity.etag)
    last_problem = ""
    for attempt in range(_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, min(_MAX_DELAY_S, _BASE_DELAY_S * 2**attempt)))
        try:
            response: Any = pool().request(
                "GET", url, headers=headers, preload_content=True, redirect=True
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            last_problem = f"{type(exc).__name__}: {_without_query(str(exc))}"
            continue
        status = response.status
        if status in _RETRY_STATUSES:
            last_problem = f"HTTP {status} {_error_code(response.data)}".strip()
            continue
        if status == 412:
            raise Stale("the object's ETag no longer matches (it was changed or replaced)")
        if status == 404:
            raise Stale("the object no longer exists")
        if status == 416:
            raise Stale(f"the object is shorter than linked (range {start}-{end - 1} refused)")
        if status == 403:
            code = _error_code(response.data)
            if code in ("AccessDenied", "SignatureDoesNotMatch") and b"expired" in response.data:
                raise Expired("presigned URL expired")
            raise Failed(f"access denied by the server ({code or 'HTTP 403'})")
        if status == 206:
            _check_total(response.headers.get("Content-Range", ""), identity)
            data: bytes = response.data
            return data
        if status == 200:
            # A server that ignores Range sends the whole body.
            data = response.data
            if identity.size is not None and len(data) != identity.size:
                raise Stale(f"the object is {len(data)} bytes, linked as {identity.size}")
            return data[start:end]
        raise Failed(f"unexpected HTTP {status} {_error_code(response.data)}".strip())
    raise Failed(f"gave up after {_ATTEMPTS} attempts: {last_problem}")


def _check_total(content_range: str, identity: Identity) -> None:
    if identity.size is None or "/" not in content_range:
        return
    total = content_range.rsplit("/", 1)[1].strip()
    if total.isdigit() and int(total) != identity.size:
        raise Stale(f"the object is {total} bytes, linked as {identity.size}")


def probe(url: str) -> tuple[int, str]:
    """Size and validator (ETag) of the resource at ``url``, via a 1-byte GET."""
    import urllib3

    try:
        response: Any = pool().request(
            "GET", url, headers={"Range": "bytes=0-0"}, preload_content=False, redirect=True
        )
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Failed(f"unreachable: {type(exc).__name__}") from None
    try:
        status = response.status
        etag = response.headers.get("ETag", "")
        if status == 206:
            total = response.headers.get("Content-Range", "").rsplit("/", 1)[-1].strip()
            if total.isdigit():
                return int(total), etag
            raise Failed("the server did not say the resource's size")
        if status == 200:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit():
                return int(length), etag
            raise Failed("the server did not say the resource's size")
        raise Failed(f"HTTP {status}")
    finally:
        response.release_conn()


def _without_query(text: str) -> str:
    """Drop presigned query strings (signatures) from a message."""
    cut = text.find("?")
    return text if cut < 0 else text[:cut] + "?…"
