"""Ranged HTTP GETs over one pooled, thread-safe urllib3 client.

Every request names the bytes it wants and, when the object's identity is
known, the ETag it must still have (``If-Match``). Transient failures
(connection errors and resets, stalls past the read timeout, 429 and 5xx such
as 503 SlowDown, bodies cut short) are retried with exponential backoff and
full jitter, within both an attempt count and a time budget, paced by the
endpoint's ``objects.pace`` (``Retry-After``, slowing down after a throttle); what does not
pass is raised as one of the small error classes below, which the readers
turn into ``OSError`` with the file's path.

``stream_range`` hands a range over in pieces as they arrive and, after a
failure mid-body, asks again only for the bytes not yet handed over.

A request made with a ``guard`` (an HTTP link's URL) goes through a pool
whose connections reach only public addresses (``objects.guard``); when its
host resolves to a refused one, the guard is asked whether private addresses
are allowed now, and the request is either sent through the ordinary pool or
refused with ``Blocked``. Without a guard (a data store's presigned URL: its
endpoint was set by a keyholder) a URL is reached wherever it points.
Redirects are never followed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from filespace.objects import guard as guards
from filespace.objects import pace as paces
from filespace.objects import pools
from filespace.objects.guard import Guard
from filespace.redaction import without_query

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_ATTEMPTS = 6
# A lasting failure surfaces within about this long after the first one (plus
# the attempt under way): long enough to ride out a server restart or a burst
# of SlowDown, short enough that a dead endpoint is reported, not waited on.
_RETRY_BUDGET_S = 10.0
# The most one socket read of a RangeStream takes in: what a failure mid-read costs.
_INTO_PIECE = 256 * 1024
# An answer body read to its end (so its connection can be reused) if no longer.
_SMALL_BODY = 64 * 1024


class RangeError(Exception):
    """A ranged GET failed; subclasses say how."""


class Stale(RangeError):
    """The object is not the one linked (changed, replaced or deleted)."""


class Expired(RangeError):
    """The presigned URL was refused as expired or mis-signed: sign again."""


class Failed(RangeError):
    """A lasting failure (retries exhausted, or an answer that won't change)."""


class Blocked(RangeError):
    """An HTTP link's host resolved to an address it may not reach (``guard.refusal``)."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address}, a {reason} address")
        self.host = host
        self.address = address
        self.reason = reason


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


class _Transient(Exception):
    """One attempt failed in a way another attempt may not; ``throttle``: asked to slow down."""

    def __init__(self, message: str, throttle: bool = False, after: float | None = None) -> None:
        super().__init__(message)
        self.throttle = throttle
        self.retry_after = after


def _transient(exc: BaseException) -> _Transient:
    """A failed attempt, told without the URL's query string (its signature)."""
    return _Transient(f"{type(exc).__name__}: {without_query(str(exc), mark='?…')}")


class _Retry:
    """The retry budget of one range: attempts without progress, and time."""

    def __init__(self) -> None:
        self._failures = 0
        self._since: float | None = None
        self.pace = paces.Pace()  # the endpoint's, once a URL is known

    def attempt(self, url: str) -> None:
        """Note that an attempt at ``url`` starts (the clock runs from the first one)."""
        if self._since is None:
            self._since = time.monotonic()
        self.pace = paces.for_url(url)
        self.pace.wait()

    def progressed(self) -> None:
        """Bytes arrived: the budget starts over."""
        self._failures = 0
        self._since = None

    def failed(self, problem: _Transient) -> None:
        """Back off before the next attempt, or raise ``Failed`` if the budget is spent."""
        self._failures += 1
        if problem.throttle:
            self.pace.throttled(problem.retry_after)
        elapsed = time.monotonic() - (self._since or time.monotonic())
        if self._failures >= _ATTEMPTS or elapsed >= _RETRY_BUDGET_S:
            raise Failed(f"gave up after {self._failures} attempt(s) in {elapsed:.1f} s: {problem}")
        time.sleep(self.pace.delay(self._failures, problem.retry_after))


def stream_range(
    urls: Callable[[bool], str],
    start: int,
    end: int,
    identity: Identity,
    piece: int,
    deliver: Callable[[int, memoryview], None],
    observe: Callable[[float], None] | None = None,
    batch: int = 1,
    guard: Guard | None = None,
) -> None:
    """Hand over bytes ``[start, end)`` as ``deliver(offset, data)`` calls, in order.

    Pieces end on multiples of ``piece`` (and at ``end``), so a caller that
    starts on a boundary gets whole blocks. ``urls(fresh)`` gives the URL for
    each attempt; ``fresh=True`` after the server refused one as expired.
    After a failure mid-body only the bytes not yet delivered are asked again.
    ``observe`` is told each answered request's time to first byte. With
    ``batch`` > 1 the socket is read that many pieces at a time (fewer calls
    and allocations for a long stream; the pieces are views of one buffer).
    ``guard`` marks an HTTP link's URL (see the module's docstring).
    """
    import urllib3

    retry = _Retry()
    position = start
    while position < end:
        response = _answer(urls, position, end, identity, retry, observe, guard)
        complete = False
        try:
            while position < end:
                size = min(batch * piece - position % piece, end - position)
                try:
                    data: bytes = response.read(size, decode_content=False)
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise _transient(exc) from None
                if len(data) != size:
                    raise _Transient(f"the connection closed {end - position} bytes early")
                view = memoryview(data)
                done = 0
                while done < size:
                    step = min(piece - (position + done) % piece, size - done)
                    deliver(position + done, view[done : done + step])
                    done += step
                position += size
                retry.progressed()
            complete = response.status == 206
        except _Transient as exc:
            retry.failed(exc)
        finally:
            if complete:
                response.release_conn()
            else:
                response.close()  # unread bytes: this connection can't be reused


class RangeStream:
    """Bytes ``[start, end)`` pulled in order, each read landing in the caller's buffer.

    ``stream_range`` pushes block-sized pieces it allocates; this is read like
    a file, straight from the socket into the buffer ``readinto`` is given,
    so a long sequential read costs what a plain GET costs: one request, one
    copy (the kernel's). After a failure mid-body the rest is asked for
    again, with the same retry budget and URL re-signing as ``stream_range``.
    """

    def __init__(
        self,
        urls: Callable[[bool], str],
        start: int,
        end: int,
        identity: Identity,
        observe: Callable[[float], None] | None = None,
        guard: Guard | None = None,
    ) -> None:
        self.position = start
        self.end = end
        self.requests = 0  # answered requests so far
        self._urls = urls
        self._identity = identity
        self._observe = observe
        self._guard = guard
        self._response: Any = None
        self._retry = _Retry()

    def __repr__(self) -> str:
        return f"RangeStream(position={self.position}, end={self.end})"

    def readinto(self, target: memoryview) -> int:
        """Fill ``target`` with the next bytes; fewer only where the range ends."""
        want = min(len(target), self.end - self.position)
        done = 0
        while done < want:
            if self._response is None:
                self._open()
            try:
                count = _read_into(self._response, target[done:want])
            except _Transient as exc:
                self._drop()
                self._retry.failed(exc)
                continue
            done += count
            self.position += count
            self._retry.progressed()
        if self.position >= self.end and self._response is not None:
            self._response.release_conn()  # read to its end: the connection is reusable
            self._response = None
        return done

    def close(self) -> None:
        """Drop the request under way (its connection, holding unread bytes, is closed)."""
        self._drop()

    def _open(self) -> None:
        self._response = _answer(
            self._urls,
            self.position,
            self.end,
            self._identity,
            self._retry,
            self._observe,
            self._guard,
        )
        self.requests += 1

    def _drop(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.close()


def _answer(
    urls: Callable[[bool], str],
    position: int,
    end: int,
    identity: Identity,
    retry: _Retry,
    observe: Callable[[float], None] | None,
    guard: Guard | None,
) -> Any:
    """A response whose body starts at ``position``, asked again within ``retry``'s budget.

    A URL refused as expired is signed afresh once; a whole-object answer
    (200) has its first ``position`` bytes skipped.
    """
    fresh = False
    while True:
        url = urls(fresh)
        retry.attempt(url)
        sent = time.monotonic()
        try:
            response = _request(url, position, end, identity, guard)
        except Expired:
            if fresh:
                raise  # even a freshly signed URL is refused: don't loop
            fresh = True
            continue
        except _Transient as exc:
            retry.failed(exc)
            continue
        retry.pace.succeeded()
        if observe is not None:
            observe(time.monotonic() - sent)
        if response.status == 200:
            try:
                _discard(response, position)
            except _Transient as exc:
                response.close()
                retry.failed(exc)
                continue
        return response


def _read_into(response: Any, target: memoryview) -> int:
    """Read the body into ``target`` (at least one byte); ``_Transient`` if it broke off."""
    import http.client

    import urllib3

    # urllib3's readinto reads into a new bytes object and copies it; the
    # http.client response under it reads the socket into ``target`` itself.
    # Pieces of at most _INTO_PIECE: bytes of a read cut short by a failure
    # are lost with it, so the retry would ask for them again.
    target = target[:_INTO_PIECE]
    body = getattr(response, "_fp", None)
    try:
        if isinstance(body, http.client.HTTPResponse):
            count = body.readinto(target)
        else:
            data = response.read(len(target), decode_content=False)
            count = len(data)
            target[:count] = data
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        raise _transient(exc) from None
    if count == 0:
        raise _Transient("the connection closed early")
    return count


def _discard(response: Any, count: int) -> None:
    """Skip the first ``count`` bytes of a whole-object (200) body."""
    import urllib3

    while count > 0:
        try:
            data = response.read(min(count, 1 << 20), decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _transient(exc) from None
        if not data:
            raise _Transient("the connection closed early")
        count -= len(data)


def send(url: str, headers: dict[str, str], guard: Guard | None) -> Any:
    """The response to a GET of ``url`` (body not read); ``Blocked`` if the guard refuses.

    A guarded URL goes through ``guarded_pool``; only when its host resolves
    to a refused address is the guard asked, and if it allows private
    addresses the request goes through the ordinary pool instead.
    """
    options: dict[str, Any] = {
        "headers": headers,
        "preload_content": False,
        "decode_content": False,
        "redirect": False,
    }
    if guard is None:
        return pools.get(pools.pool(), url, options)
    try:
        return pools.get(pools.guarded_pool(), url, options)
    except guards.Refused as refused:
        if not guard():
            raise Blocked(refused.host, refused.address, refused.reason) from None
    return pools.get(pools.pool(), url, options)


def _request(url: str, start: int, end: int, identity: Identity, guard: Guard | None) -> Any:
    """One GET of ``[start, end)``: a 206 (or whole-object 200) response, or raise."""
    import urllib3

    headers = {"Range": f"bytes={start}-{end - 1}"}
    if identity.etag:
        headers["If-Match"] = _quoted(identity.etag)
    try:
        response: Any = send(url, headers, guard)
    except urllib3.exceptions.LocationValueError as exc:
        raise Failed(f"malformed URL: {exc}") from None  # asking again won't help
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _transient(exc) from None
    status = response.status
    try:
        if status == 206:
            _check_total(response.headers.get("Content-Range", ""), identity)
            return response
        if status == 200:
            # A server that ignores Range sends the whole body.
            length = response.headers.get("Content-Length", "")
            if identity.size is not None and length.isdigit() and int(length) != identity.size:
                raise Stale(f"the object is {length} bytes, linked as {identity.size}")
            return response
    except BaseException:
        response.close()
        raise
    body = finish(response)
    if status in _RETRY_STATUSES:
        code, after = _error_code(body), paces.retry_after(response.headers.get("Retry-After"))
        raise _Transient(f"HTTP {status} {code}".strip(), paces.is_throttle(status, code), after)
    if status == 412:
        raise Stale("the object's ETag no longer matches (it was changed or replaced)")
    if status == 404:
        raise Stale("the object no longer exists")
    if status == 416:
        raise Stale(f"the object is shorter than linked (range {start}-{end - 1} refused)")
    if status == 403:
        code = _error_code(body)
        if code in ("AccessDenied", "SignatureDoesNotMatch") and b"expired" in body:
            raise Expired("presigned URL expired")
        raise Failed(f"access denied by the server ({code or 'HTTP 403'})")
    raise Failed(f"unexpected HTTP {status} {_error_code(body)}".strip())


def finish(response: Any) -> bytes:
    """Read a small answer (an error, a probe's byte) to its end and give the connection back.

    A connection goes back to the pool only with its response read to the
    end; one whose body is long or breaks off is closed instead, so the next
    request on it cannot find a half-read answer (``ResponseNotReady``).
    """
    import urllib3

    length = response.headers.get("Content-Length", "")
    if not length.isdigit() or int(length) > _SMALL_BODY:
        response.close()
        return b""
    try:
        body: bytes = response.read(decode_content=False)
    except (urllib3.exceptions.HTTPError, OSError):
        response.close()
        return b""
    response.release_conn()
    return body


def get_range(
    url: str, start: int, end: int, identity: Identity, guard: Guard | None = None
) -> bytes:
    """Bytes ``[start, end)`` of the object at ``url``; ``end`` is exclusive."""
    if start >= end:
        return b""
    parts: list[memoryview] = []
    stream_range(
        lambda fresh: url,
        start,
        end,
        identity,
        end - start,
        lambda _at, data: parts.append(data),
        guard=guard,
    )
    return b"".join(parts)


def _check_total(content_range: str, identity: Identity) -> None:
    if identity.size is None or "/" not in content_range:
        return
    total = content_range.rsplit("/", 1)[1].strip()
    if total.isdigit() and int(total) != identity.size:
        raise Stale(f"the object is {total} bytes, linked as {identity.size}")
