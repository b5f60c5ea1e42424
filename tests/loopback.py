"""A loopback HTTP/1.1 server answering each path one way a server may (tests of reads).

``ANSWERS`` are plain answers (status, body, headers); ``SPECIAL`` ones write
what a plain answer cannot: a body cut short, a missing length, a redirect.
Every request is recorded (path, ``Range``, ``If-Match``, client port).
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

BODY = bytes(range(48, 48 + 40))  # 40 printable bytes
SIZE = len(BODY)
GZIP = gzip.compress(BODY * 4, mtime=0)
LARGE = bytes(range(256)) * 2100  # a little over two 256 KiB blocks (a newline at 10)

Answer = Callable[[BaseHTTPRequestHandler, int, int, int], tuple[int, bytes, dict[str, str]]]
"""(handler, first, last, request number) -> (status, body, headers)."""


def _ranged(_h: BaseHTTPRequestHandler, first: int, last: int, _n: int) -> Any:
    return 206, BODY[first : last + 1], {"Content-Range": f"bytes {first}-{last}/{SIZE}"}


def _whole(_h: BaseHTTPRequestHandler, _first: int, _last: int, _n: int) -> Any:
    return 200, BODY, {}


def _other_total(_h: BaseHTTPRequestHandler, first: int, last: int, _n: int) -> Any:
    return 206, BODY[first : last + 1], {"Content-Range": f"bytes {first}-{last}/99"}


def _status(status: int, body: bytes = b"") -> Answer:
    return lambda _h, _first, _last, _n: (status, body, {})


ERROR = b"<Error><Code>%s</Code><Message>%s</Message></Error>"

ANSWERS: dict[str, Answer] = {
    "/ranged": _ranged,
    "/whole": _whole,
    "/total": _other_total,
    "/416": _status(416),
    "/412": _status(412),
    "/404": _status(404, ERROR % (b"NoSuchKey", b"gone")),
    "/418": _status(418, ERROR % (b"Teapot", b"short and stout")),
    "/403": _status(403),
    "/denied": _status(403, ERROR % (b"AccessDenied", b"not for you")),
    "/expired": _status(403, ERROR % (b"AccessDenied", b"Request has expired")),
    "/busy": _status(503, ERROR % (b"SlowDown", b"later")),
    "/signature-expired": _status(403, ERROR % (b"SignatureDoesNotMatch", b"Request has expired")),
    "/code-unclosed": _status(418, b"<Error><Code>Teapot"),
    "/code-first": _status(418, b"<Code>Teapot</Code>"),
    "/code-nested": _status(418, ERROR % (b"Teapot", b"<Code>Kettle</Code>")),
    "/code-latin1": _status(418, b"<Error><Code>T\xe9apot</Code></Error>"),
    "/big": _status(418, bytes(64 * 1024)),  # the longest answer worth reading
}


def _send(
    h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str], sent: int
) -> None:
    """Answer ``status`` with ``headers``; write the first ``sent`` bytes of ``body`` and close
    if fewer than all, else all of it (``Content-Length`` names the whole body either way)."""
    h.send_response(status)
    for name, value in headers.items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body[:sent])
    if sent < len(body):
        h.wfile.flush()
        h.close_connection = True


Special = Callable[[BaseHTTPRequestHandler, int, int, int], None]
"""(handler, first, last, request number): writes an answer the plain ones cannot."""


def _cut(h: BaseHTTPRequestHandler, first: int, last: int, n: int) -> None:
    body = BODY[first : last + 1]
    headers = {"Content-Range": f"bytes {first}-{last}/{SIZE}"}
    _send(h, 206, body, headers, len(body) // 2 if n == 1 else len(body))


def _cut_then_busy(h: BaseHTTPRequestHandler, first: int, last: int, n: int) -> None:
    if n > 1:
        _send(h, 503, ERROR % (b"SlowDown", b"later"), {}, 1 << 20)
    else:
        _cut(h, first, last, n)


def _whole_cut(h: BaseHTTPRequestHandler, _first: int, _last: int, n: int) -> None:
    _send(h, 200, BODY, {}, 3 if n == 1 else SIZE)  # the first whole body breaks off early


def _busy_once(h: BaseHTTPRequestHandler, first: int, last: int, n: int) -> None:
    if n == 1:
        _send(h, 503, ERROR % (b"SlowDown", b"later"), {}, 1 << 20)
    else:
        status, body, headers = _ranged(h, first, last, n)
        _send(h, status, body, headers, len(body))


def _no_length(h: BaseHTTPRequestHandler, _first: int, _last: int, _n: int) -> None:
    # The whole object, its end marked only by closing the connection.
    h.send_response(200)
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(BODY)
    h.close_connection = True


def _no_content_range(h: BaseHTTPRequestHandler, first: int, last: int, _n: int) -> None:
    _send(h, 206, BODY[first : last + 1], {}, SIZE)


def _gzip(h: BaseHTTPRequestHandler, first: int, last: int, _n: int) -> None:
    # An object stored gzip-encoded: its bytes are the compressed ones, as linked.
    headers = {"Content-Encoding": "gzip", "Content-Range": f"bytes {first}-{last}/{len(GZIP)}"}
    _send(h, 206, GZIP[first : last + 1], headers, len(GZIP))


def _gzip_whole(h: BaseHTTPRequestHandler, _first: int, _last: int, _n: int) -> None:
    _send(h, 200, GZIP, {"Content-Encoding": "gzip"}, len(GZIP))


def _redirect(h: BaseHTTPRequestHandler, _first: int, _last: int, _n: int) -> None:
    _send(h, 302, b"", {"Location": "/ranged"}, 0)


def _cut_always(h: BaseHTTPRequestHandler, first: int, last: int, _n: int) -> None:
    _cut(h, first, last, 1)


def _no_length_short(h: BaseHTTPRequestHandler, _first: int, _last: int, _n: int) -> None:
    # A whole object without a length, its connection closed after 3 bytes.
    h.send_response(200)
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(BODY[:3])
    h.close_connection = True


def _large(h: BaseHTTPRequestHandler, first: int, last: int, _n: int) -> None:
    headers = {"Content-Range": f"bytes {first}-{last}/{len(LARGE)}"}
    _send(h, 206, LARGE[first : last + 1], headers, last + 1 - first)


OBJECTS = {"/gzip": GZIP, "/gzip-whole": GZIP, "/large": LARGE}
"""The paths whose object is not ``BODY``."""

SPECIAL: dict[str, Special] = {
    "/large": _large,
    "/cut-always": _cut_always,
    "/no-length-short": _no_length_short,
    "/cut": _cut,
    "/cut-then-busy": _cut_then_busy,
    "/whole-cut": _whole_cut,
    "/busy-once": _busy_once,
    "/no-length": _no_length,
    "/no-content-range": _no_content_range,
    "/gzip": _gzip,
    "/gzip-whole": _gzip_whole,
    "/redirect": _redirect,
}


class Seen(NamedTuple):
    """One request as the server saw it."""

    path: str
    range: str
    if_match: str | None
    port: int  # the client's: one per connection


class Server:
    """A real HTTP/1.1 server on loopback answering each path as ``ANSWERS`` or ``SPECIAL`` say.

    Every request's path, ``Range`` and ``If-Match`` headers and client port are recorded.
    """

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                wanted = self.headers.get("Range", "")
                seen = Seen(self.path, wanted, self.headers.get("If-Match"), self.client_address[1])
                server.requests.append(seen)
                first, last = 0, SIZE - 1
                if wanted.startswith("bytes="):
                    first, last = (int(n) for n in wanted[6:].split("-"))
                    last = min(last, len(OBJECTS.get(self.path, BODY)) - 1)
                count = sum(1 for request in server.requests if request.path == self.path)
                if self.path in SPECIAL:
                    SPECIAL[self.path](self, first, last, count)
                    return
                answer: Answer = ANSWERS.get(self.path, _ranged)
                status, body, headers = answer(self, first, last, count)
                _send(self, status, body, headers, len(body))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def asked(self, path: str) -> list[str]:
        """The ``Range`` headers of the requests for ``path``, in order."""
        return [seen.range for seen in self.requests if seen.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
