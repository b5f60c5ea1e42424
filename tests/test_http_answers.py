"""How a ranged GET reads a server's answer (``objects.http``), against a real server.

Each path of the loopback server (``tests/loopback.py``) answers one way a server may: the
range asked for, the whole object (``Range`` ignored), another total size,
416, an unexpected status, a refusal, or a body cut short once. Loopback is
refused for HTTP links by default (API.md §7), so the tests through the API
allow private URLs first; the module's own functions are called without a
guard, as a data store's presigned URLs are.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

import filespace
from filespace import Filespace
from filespace.objects import http, pace
from filespace.objects.http import Identity
from tests.loopback import BODY, ERROR, GZIP, SIZE, Server


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
        ("/416", http.Stale, "^the object is shorter than linked \\(range 3-9 refused\\)"),
        (
            "/412",
            http.Stale,
            "^the object's ETag no longer matches \\(it was changed or replaced\\)$",
        ),
        ("/404", http.Stale, "^the object no longer exists$"),
        ("/redirect", http.Failed, "^unexpected HTTP 302$"),  # redirects are never followed
        ("/code-unclosed", http.Failed, "^unexpected HTTP 418$"),
        ("/code-first", http.Failed, "^unexpected HTTP 418 Teapot$"),
        ("/code-nested", http.Failed, "^unexpected HTTP 418 Teapot$"),
        ("/code-latin1", http.Failed, "^unexpected HTTP 418 T\ufffdapot$"),
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
    assert server.asked("/ranged") == []  # (where /redirect points)


@pytest.mark.parametrize("path", ["/expired", "/signature-expired"])
def test_an_expired_url_is_signed_afresh_once(server: Server, path: str) -> None:
    fresh: list[bool] = []

    def urls(again: bool) -> str:
        fresh.append(again)
        return server.url(path)

    with pytest.raises(http.Expired, match=r"^presigned URL expired$"):
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
    assert server.asked("/cut") == ["bytes=0-31", "bytes=16-31"]


def test_a_pulled_stream_resumes_too(server: Server) -> None:
    stream = http.RangeStream(lambda _fresh: server.url("/cut"), 2, 30, Identity(size=SIZE))
    target = bytearray(28)
    assert stream.readinto(memoryview(target)) == 28
    assert bytes(target) == BODY[2:30]
    assert stream.requests == 2 and stream.position == 30
    first, second = server.asked("/cut")
    assert first == "bytes=2-29" and second == f"bytes={2 + 14}-29"
    stream.close()


def test_a_pulled_stream_read_in_parts_is_one_request(server: Server) -> None:
    stream = http.RangeStream(lambda _fresh: server.url("/ranged"), 0, 28, Identity())
    first, second = bytearray(10), bytearray(18)
    assert stream.readinto(memoryview(first)) == 10 and stream.readinto(memoryview(second)) == 18
    assert bytes(first + second) == BODY[:28]
    assert stream.requests == 1 and server.asked("/ranged") == ["bytes=0-27"]


def test_finish_reads_a_small_answer_and_closes_a_long_one(server: Server) -> None:
    small = http.send(server.url("/418"), {}, None)
    assert http.finish(small) == ERROR % (b"Teapot", b"short and stout")
    whole = http.send(server.url("/whole"), {}, None)
    assert http.finish(whole) == BODY
    big = http.send(server.url("/ranged"), {"Range": "bytes=0-39"}, None)
    big.headers["Content-Length"] = str(64 * 1024 + 1)  # as if longer than worth reading
    assert http.finish(big) == b""


def test_if_match_names_the_linked_etag_quoted_once(server: Server) -> None:
    for etag in ("abc", '"q"', ""):
        assert http.get_range(server.url("/ranged"), 0, 2, Identity(etag=etag)) == BODY[:2]
    assert [seen.if_match for seen in server.requests] == ['"abc"', '"q"', None]


def test_connections_are_reused_only_after_a_body_read_to_its_end(server: Server) -> None:
    url = server.url("/ranged")
    http.get_range(url, 0, 4, Identity())
    http.get_range(url, 4, 8, Identity())  # the range was read whole: same connection
    stream = http.RangeStream(lambda _fresh: url, 8, 20, Identity())
    assert stream.readinto(memoryview(bytearray(12))) == 12
    stream.close()  # (read to its end: already given back)
    http.get_range(url, 20, 24, Identity())
    http.get_range(server.url("/whole"), 0, 3, Identity())  # 37 bytes left unread
    http.get_range(url, 0, 1, Identity())
    ports = [seen.port for seen in server.requests]
    assert ports[:4] == [ports[0]] * 4
    assert ports[4] == ports[0] and ports[5] != ports[0]


def _pieces(server: Server, path: str, start: int, end: int, **batch: int) -> list[Any]:
    """``(offset, bytes)`` of each piece ``stream_range`` hands over, 4-byte pieces."""
    pieces: list[tuple[int, bytes]] = []
    http.stream_range(
        lambda _fresh: server.url(path),
        start,
        end,
        Identity(),
        4,
        lambda at, data: pieces.append((at, bytes(data))),
        **batch,
    )
    return pieces


@pytest.mark.parametrize("batch", [1, 3])
def test_pieces_end_on_piece_boundaries(server: Server, batch: int) -> None:
    pieces = _pieces(server, "/ranged", 1, 13, batch=batch)
    assert pieces == [(1, BODY[1:4]), (4, BODY[4:8]), (8, BODY[8:12]), (12, BODY[12:13])]


def test_an_unaligned_stream_resumes_at_the_first_piece_not_handed_over(server: Server) -> None:
    # The first answer stops after bytes 1-6: piece 4-7 was not whole, so it is asked
    # again (read a piece at a time, as by default: two at a time would lose 1-3 too).
    assert [at for at, _ in _pieces(server, "/cut", 1, 13)] == [1, 4, 8, 12]
    assert server.asked("/cut") == ["bytes=1-12", "bytes=4-12"]


@pytest.mark.usefixtures("no_backoff")
def test_a_whole_object_answer_is_skipped_to_the_range(server: Server) -> None:
    assert http.get_range(server.url("/whole"), 1, 3, Identity()) == BODY[1:3]
    # The first whole body breaks off before the range begins: asked again.
    assert http.get_range(server.url("/whole-cut"), 20, 25, Identity()) == BODY[20:25]
    assert server.asked("/whole-cut") == ["bytes=20-24"] * 2


def test_encoded_objects_are_read_as_stored(server: Server) -> None:
    # Content-Encoding describes the stored bytes: they are handed over undecoded.
    assert http.get_range(server.url("/gzip"), 0, len(GZIP), Identity()) == GZIP
    assert http.get_range(server.url("/gzip-whole"), 5, 20, Identity()) == GZIP[5:20]
    assert http.finish(http.send(server.url("/gzip-whole"), {}, None)) == GZIP


def test_answers_without_length_headers(server: Server) -> None:
    identity = Identity(size=SIZE)
    assert http.get_range(server.url("/no-length"), 2, 9, identity) == BODY[2:9]
    assert http.get_range(server.url("/no-content-range"), 0, 8, identity) == BODY[:8]
    assert http.finish(http.send(server.url("/no-length"), {}, None)) == b""  # length unknown


def test_finish_reads_up_to_64_kib_and_gives_up_a_broken_body(server: Server) -> None:
    assert http.finish(http.send(server.url("/big"), {}, None)) == bytes(64 * 1024)
    broken = http.send(server.url("/whole-cut"), {}, None)  # 3 of 40 bytes, then closed
    assert http.finish(broken) == b""


def test_the_time_to_first_byte_is_observed_for_each_answer(server: Server) -> None:
    seen: list[float] = []
    started = time.monotonic()
    http.stream_range(
        lambda _fresh: server.url("/ranged"), 0, 8, Identity(), 8, lambda *_: None, seen.append
    )
    stream = http.RangeStream(lambda _fresh: server.url("/ranged"), 2, 10, Identity(), seen.append)
    assert stream.readinto(memoryview(bytearray(64))) == 8  # (no more than the range)
    took = time.monotonic() - started
    assert len(seen) == 2 and all(0 <= seconds <= took for seconds in seen)


def test_a_guard_is_asked_before_a_private_address_is_reached(server: Server) -> None:
    url = server.url("/ranged")
    assert http.get_range(url, 0, 4, Identity(), guard=lambda: True) == BODY[:4]
    refused = "^127.0.0.1 resolves to 127.0.0.1, a loopback address$"
    with pytest.raises(http.Blocked, match=refused) as blocked:
        http.get_range(url, 0, 4, Identity(), guard=lambda: False)
    assert (blocked.value.host, blocked.value.address) == ("127.0.0.1", "127.0.0.1")
    assert blocked.value.reason == "loopback"
    stream = http.RangeStream(lambda _fresh: url, 0, 4, Identity(), guard=lambda: False)
    with pytest.raises(http.Blocked, match=refused):
        stream.readinto(memoryview(bytearray(4)))
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("tail", "target"),
    [
        ("/ranged?X-Amz-Credential=AK%2F2026%2Fs3&X-Amz-Signature=ab12", None),
        ("/ranged?a=b#fragment", "/ranged?a=b"),
        ("/a%20b/c d?q=1 2", "/a%20b/c%20d?q=1%202"),  # encoded once, never twice
        ("?only=query", "/?only=query"),
        ("", "/"),
    ],
)
def test_the_request_target_is_the_urls_path_and_query(
    server: Server, tail: str, target: str | None
) -> None:
    import urllib3

    url = server.url("/ranged").removesuffix("/ranged") + tail
    with contextlib.suppress(http.RangeError):  # (only what the server was asked matters)
        http.get_range(url, 0, 4, Identity())
    assert server.requests[-1].path == (target or urllib3.util.parse_url(url).request_uri)


def test_a_malformed_url_fails_at_once() -> None:
    with pytest.raises(http.Failed, match=r"^malformed URL: No host specified\.$"):
        http.get_range("http:///object", 0, 4, Identity())


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without waiting between them (how long they wait is for benchmarks)."""
    monkeypatch.setattr(pace, "BASE_DELAY_S", 0.0)


@pytest.mark.usefixtures("no_backoff")
def test_a_transient_answer_is_asked_again(server: Server) -> None:
    seen: list[float] = []
    http.stream_range(
        lambda _fresh: server.url("/busy-once"), 0, 8, Identity(), 8, lambda *_: None, seen.append
    )
    assert server.asked("/busy-once") == ["bytes=0-7"] * 2 and len(seen) == 1


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.parametrize(
    ("path", "start", "problem"),
    [
        ("/busy", 0, "HTTP 503 SlowDown"),
        ("/no-length-short", 8, "the connection closed early"),  # (skipping to byte 8)
        ("/cut-always", 4, "the connection closed 12 bytes early"),
    ],
)
def test_a_lasting_failure_gives_up_after_six_attempts(
    server: Server, path: str, start: int, problem: str
) -> None:
    with pytest.raises(
        http.Failed, match=rf"^gave up after 6 attempt\(s\) in \d+\.\d s: {problem}$"
    ):
        http.get_range(server.url(path), start, 16, Identity())
    assert len(server.asked(path)) == 6


@pytest.mark.usefixtures("no_backoff")
def test_a_pulled_stream_gives_up_after_six_attempts(server: Server) -> None:
    stream = http.RangeStream(lambda _fresh: server.url("/cut-always"), 5, 6, Identity())
    problem = r"^gave up after 6 attempt\(s\) in \d+\.\d s: the connection closed early$"
    with pytest.raises(http.Failed, match=problem):
        stream.readinto(memoryview(bytearray(1)))  # each answer breaks off before its byte
    assert server.asked("/cut-always") == ["bytes=5-5"] * 6


@pytest.mark.usefixtures("no_backoff")
def test_an_unreachable_server_gives_up_naming_the_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/object"
        with pytest.raises(http.Failed, match=r"s: NewConnectionError: .* Connection refused$"):
            http.get_range(url, 0, 4, Identity())
    stream = http.RangeStream(lambda _fresh: url, 0, 4, Identity())
    with pytest.raises(http.Failed, match=r"^gave up after 6 attempt"):
        stream.readinto(memoryview(bytearray(4)))


@pytest.mark.usefixtures("no_backoff")
def test_progress_starts_the_retry_budget_over(server: Server) -> None:
    # Bytes arrived, then only failures: six attempts counted from the progress.
    with pytest.raises(http.Failed, match=r"^gave up after 6 attempt\(s\).*SlowDown$"):
        http.get_range(server.url("/cut-then-busy"), 0, 16, Identity())
    assert len(server.asked("/cut-then-busy")) == 6


def test_the_time_budget_runs_from_the_first_failed_attempt(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "_RETRY_BUDGET_S", 1e-6)  # spent by the first request
    with pytest.raises(http.Failed, match=r"^gave up after 1 attempt\(s\)"):
        http.get_range(server.url("/busy"), 0, 4, Identity())
    # After bytes arrived the clock starts again with the next attempt.
    pieces: list[int] = []
    with pytest.raises(http.Failed, match=r"^gave up after 2 attempt\(s\)"):
        http.stream_range(
            lambda _fresh: server.url("/cut-then-busy"),
            0,
            16,
            Identity(),
            4,
            lambda at, _d: pieces.append(at),
        )
    assert pieces == [0, 4]


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
