"""How a ranged GET reads a server's answer (``objects.http``), against a real server.

Each path of the loopback server below answers one way a server may: the
range asked for, the whole object (``Range`` ignored), another total size,
416, an unexpected status, a refusal, or a body cut short once. Loopback is
refused for HTTP links by default (API.md §7), so the tests through the API
allow private URLs first; the module's own functions are called without a
guard, as a data store's presigned URLs are.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import filespace
from filespace import Filespace
from filespace.objects import http
from filespace.objects.http import Identity

BODY = bytes(range(48, 48 + 40))  # 40 printable bytes
SIZE = len(BODY)

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
}


class Server:
    """A real HTTP/1.1 server on loopback answering each path as ``ANSWERS`` says.

    ``/cut`` sends a 206 whose body stops half-way on its first request and
    closes the connection; later requests get the range asked for. Every
    request's path and ``Range`` header is recorded.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                wanted = self.headers.get("Range", "")
                server.requests.append((self.path, wanted))
                first, last = 0, SIZE - 1
                if wanted.startswith("bytes="):
                    first, last = (int(n) for n in wanted[6:].split("-"))
                    last = min(last, SIZE - 1)
                count = sum(1 for path, _ in server.requests if path == self.path)
                if self.path == "/cut" and count == 1:
                    self._cut(first, last)
                    return
                answer = ANSWERS.get(self.path, _ranged)
                status, body, headers = answer(self, first, last, count)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _cut(self, first: int, last: int) -> None:
                body = BODY[first : last + 1]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {first}-{last}/{SIZE}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True

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
        return [wanted for seen, wanted in self.requests if seen == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    web = Server()
    yield web
    web.close()


def test_a_ranged_answer(server: Server) -> None:
    url = server.url("/ranged")
    assert http.get_range(url, 5, 12, Identity(size=SIZE)) == BODY[5:12]
    assert http.get_range(url, 0, SIZE, Identity()) == BODY
    assert http.get_range(url, 7, 7, Identity()) == b""  # nothing asked, nothing sent
    assert server.asked("/ranged") == ["bytes=5-11", f"bytes=0-{SIZE - 1}"]


def test_a_server_that_ignores_range_sends_the_whole_object(server: Server) -> None:
    url = server.url("/whole")
    assert http.get_range(url, 5, 12, Identity(size=SIZE)) == BODY[5:12]  # the rest skipped
    assert http.get_range(url, 0, 3, Identity()) == BODY[:3]
    with pytest.raises(http.Stale, match=f"the object is {SIZE} bytes, linked as 41"):
        http.get_range(url, 0, 3, Identity(size=41))


def test_another_total_size_is_stale(server: Server) -> None:
    url = server.url("/total")
    with pytest.raises(http.Stale, match=f"the object is 99 bytes, linked as {SIZE}"):
        http.get_range(url, 0, 4, Identity(size=SIZE))
    assert http.get_range(url, 0, 4, Identity()) == BODY[:4]  # no size known: nothing to check


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("/416", http.Stale, "the object is shorter than linked \\(range 3-9 refused\\)"),
        ("/412", http.Stale, "the object's ETag no longer matches"),
        ("/404", http.Stale, "the object no longer exists"),
        ("/418", http.Failed, "^unexpected HTTP 418 Teapot$"),
        ("/403", http.Failed, "^access denied by the server \\(HTTP 403\\)$"),
        ("/denied", http.Failed, "^access denied by the server \\(AccessDenied\\)$"),
    ],
)
def test_answers_that_fail_at_once(
    server: Server, path: str, error: type[http.RangeError], message: str
) -> None:
    with pytest.raises(error, match=message):
        http.get_range(server.url(path), 3, 10, Identity(etag="abc", size=SIZE))
    assert server.asked(path) == ["bytes=3-9"]  # no retry: asking again won't help


def test_an_expired_url_is_signed_afresh_once(server: Server) -> None:
    fresh: list[bool] = []

    def urls(again: bool) -> str:
        fresh.append(again)
        return server.url("/expired")

    with pytest.raises(http.Expired, match="presigned URL expired"):
        http.stream_range(urls, 0, 4, Identity(), 4, lambda _at, _data: None)
    assert fresh == [False, True]


def test_a_body_cut_short_is_asked_again_from_where_it_stopped(server: Server) -> None:
    pieces: list[tuple[int, bytes]] = []
    http.stream_range(
        lambda _fresh: server.url("/cut"),
        0,
        32,
        Identity(size=SIZE),
        4,
        lambda at, data: pieces.append((at, bytes(data))),
    )
    assert b"".join(data for _, data in pieces) == BODY[:32]
    assert [at for at, _ in pieces] == list(range(0, 32, 4))
    first, second = server.asked("/cut")
    assert first == "bytes=0-31"
    assert second.startswith("bytes=") and second != first and second.endswith("-31")


def test_a_pulled_stream_resumes_too(server: Server) -> None:
    stream = http.RangeStream(lambda _fresh: server.url("/cut"), 2, 30, Identity(size=SIZE))
    target = bytearray(28)
    assert stream.readinto(memoryview(target)) == 28
    assert bytes(target) == BODY[2:30]
    assert stream.requests == 2 and stream.position == 30
    first, second = server.asked("/cut")
    assert first == "bytes=2-29" and second == f"bytes={2 + 14}-29"
    stream.close()


def test_finish_reads_a_small_answer_and_closes_a_long_one(server: Server) -> None:
    small = http.send(server.url("/418"), {}, None)
    assert http.finish(small) == ERROR % (b"Teapot", b"short and stout")
    whole = http.send(server.url("/whole"), {}, None)
    assert http.finish(whole) == BODY
    big = http.send(server.url("/ranged"), {"Range": "bytes=0-39"}, None)
    big.headers["Content-Length"] = str(64 * 1024 + 1)  # as if longer than worth reading
    assert http.finish(big) == b""


@pytest.fixture
def web_space(fsp: Filespace, server: Server) -> Filespace:
    """A filespace whose HTTP links may reach loopback, one link per answer."""
    fsp.connect.enable()
    fsp.connect.configure(allow_private_urls=True)
    for path in ("/whole", "/total", "/416", "/418", "/busy"):
        fsp.connect.link_http_file(path, server.url(path), size=SIZE)
    return fsp


def test_answers_through_the_api(web_space: Filespace, server: Server) -> None:
    fs = web_space.fs
    with fs.open("/whole", "rb") as handle:
        handle.seek(30)
        assert handle.read(5) == BODY[30:35]
    assert fs.read_file("/whole") == BODY
    for path in ("/total", "/416"):
        with pytest.raises(filespace.StaleFileError) as stale:
            fs.read_file(path)
        assert stale.value.errno == errno.ESTALE and stale.value.filename == path
    with pytest.raises(filespace.ExternalReadError, match="unexpected HTTP 418 Teapot") as eio:
        fs.read_file("/418")
    assert eio.value.errno == errno.EIO and eio.value.filename == "/418"
