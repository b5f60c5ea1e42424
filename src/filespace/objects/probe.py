"""What linking asks of an HTTP(S) URL before anything is stored.

``probe`` learns a resource's size and ETag with one ranged GET (through
the guarded pool, so its address is checked); ``check_reach`` checks the
address of a URL linked without a request (its size given).
"""

from __future__ import annotations

from typing import Any

from filespace.objects import guard as guards
from filespace.objects import http
from filespace.objects.guard import Guard


def probe(url: str, guard: Guard | None = None) -> tuple[int, str]:
    """Size and validator (ETag, as sent) of the resource at ``url``, via a 1-byte GET."""
    import urllib3

    try:
        response: Any = http.send(url, {"Range": "bytes=0-0"}, guard)
    except urllib3.exceptions.LocationValueError as exc:
        raise http.Failed(f"malformed URL: {exc}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise http.Failed(f"unreachable: {type(exc).__name__}") from None
    status = response.status
    headers = response.headers
    http.finish(response)  # before anything is raised: the connection must not go back half-read
    etag = headers.get("ETag", "")
    if status == 206:
        total = headers.get("Content-Range", "").rsplit("/", 1)[-1].strip()
        if total.isdigit():
            return int(total), etag
        raise http.Failed("the server did not say the resource's size")
    if status == 200:
        length = headers.get("Content-Length")
        if length is not None and length.isdigit():
            return int(length), etag
        raise http.Failed("the server did not say the resource's size")
    raise http.Failed(f"HTTP {status}")


def check_reach(url: str, guard: Guard) -> None:
    """Raise ``Blocked`` if ``url``'s host resolves to a refused address the guard won't allow.

    For a link made without a request (its size given): the address the
    reader connects to is checked again at every connection. A host that does
    not resolve here passes (the reader's connection will tell).
    """
    import urllib3

    try:
        parsed = urllib3.util.parse_url(url)
        host = parsed.host or ""
        results = guards.resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except (OSError, ValueError):  # UnicodeError is a ValueError
        return
    try:
        guards.check(host, results)
    except guards.Refused as refused:
        if not guard():
            raise http.Blocked(refused.host, refused.address, refused.reason) from None
