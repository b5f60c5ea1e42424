"""A loopback HTTP proxy in front of the test S3 server that fails requests on purpose.

It reads each request on a client connection, decides its fate from the
rules it was given, and either answers it itself (an error status), drops the
connection, or forwards it to the server over its own kept-alive connection
and hands the answer back whole, cut short, stalled or slowed down. What it
saw is recorded (``seen``): one ``Seen`` per request, with the fault it got.

A ``Rule`` picks requests by method and by regular expressions on the path
and the query string, then by position among the requests it matched
(``nth``, 1-based) or at random (``chance``, from the proxy's seeded
``random.Random``); ``times`` bounds how often it fires. The first rule that
fires wins. ``throttle_rps`` answers ``503 SlowDown`` to requests beyond that
many per second (a token bucket holding one second's worth, at least one
request), like S3 does to a prefix asked too fast.

Faults (``Fault``): ``500``, ``503`` (SlowDown, with ``Retry-After`` when the
rule gives ``retry_after``), ``429``; ``RESET_BEFORE`` (TCP reset before
the status line), ``RESET_MID`` (reset after half the body), ``RESET_UPLOAD``
(half the request's body reaches the server, then both connections are
reset: an upload cut off), ``TRUNCATE``
(``Content-Length`` promised, half the body, then a clean close),
``STALL`` (half the body, then nothing for ``stall_s``), ``TRICKLE``
(the body in small pieces with pauses, every byte right); a rule's
``cut_at`` says how many body bytes go before the break instead of half
(a body no longer than that passes whole, recorded as passed).
``delay_s`` holds every answer from the server that long (requests pile up).

    with FaultProxy(server.endpoint, [Rule(Fault.S503, method="GET", nth={1})]) as proxy:
        ... use proxy.endpoint ...
        assert proxy.faults() == [...]
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urlsplit


class Fault(enum.Enum):
    S500 = "500"
    S503 = "503"
    S429 = "429"
    RESET_BEFORE = "reset-before"
    RESET_MID = "reset-mid"
    RESET_UPLOAD = "reset-upload"
    TRUNCATE = "truncate"
    STALL = "stall"
    TRICKLE = "trickle"


THROTTLED = "throttled"
"""What ``Seen.fault`` says of a request refused by ``throttle_rps``."""

_ERRORS = {
    Fault.S500: (500, "Internal Server Error", "InternalError", "We encountered an error."),
    Fault.S503: (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    Fault.S429: (429, "Too Many Requests", "TooManyRequests", "Too many requests."),
}
_BODY_FAULTS = {Fault.RESET_MID, Fault.TRUNCATE, Fault.STALL, Fault.TRICKLE}


@dataclass
class Rule:
    """Which requests get ``fault``; ``None`` fields match anything."""

    fault: Fault
    method: str | None = None
    path: str | None = None  # a regular expression searched in the path
    query: str | None = None  # ... and in the query string
    nth: frozenset[int] | set[int] | None = None  # positions among the matches, 1-based
    chance: float = 1.0  # drawn from the proxy's seeded random generator
    times: int | None = None  # fires at most this often
    retry_after: float | None = None  # seconds, for error statuses
    cut_at: int | None = None  # body bytes sent before a body fault (default: half)
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def matches(self, method: str, path: str, query: str) -> bool:
        return (
            (self.method is None or method == self.method)
            and (self.path is None or re.search(self.path, path) is not None)
            and (self.query is None or re.search(self.query, query) is not None)
        )


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it, and what it did with it."""

    number: int
    method: str
    path: str
    query: str
    range: str
    fault: str  # a Fault's value, THROTTLED, or "" for passed through
    at: float  # time.monotonic() when it arrived
    busy: int  # requests being handled when it arrived, itself included


class _Request:
    def __init__(self, line: bytes, headers: list[tuple[str, str]], body: bytes) -> None:
        self.line = line
        self.headers = headers
        self.body = body
        parts = line.decode("latin-1").split()
        self.method = parts[0] if parts else ""
        target = urlsplit(parts[1] if len(parts) > 1 else "/")
        self.path, self.query = target.path, target.query

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return ""

    def raw(self) -> bytes:
        lines = [self.line.rstrip(b"\r\n")]
        for key, value in self.headers:
            if key.lower() not in ("expect", "transfer-encoding"):
                lines.append(f"{key}: {value}".encode("latin-1"))
        if self.header("transfer-encoding"):
            lines.append(f"Content-Length: {len(self.body)}".encode())
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body


class FaultProxy:
    """Forwards ``127.0.0.1:port`` to ``target`` (``http://host:port``), failing as told."""

    def __init__(
        self,
        target: str,
        rules: Iterable[Rule] = (),
        *,
        seed: int = 0,
        throttle_rps: float = 0.0,
        stall_s: float = 30.0,
        trickle: tuple[int, float] = (4096, 0.005),
        delay_s: float = 0.0,
    ) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rules = list(rules)
        self.throttle_rps = throttle_rps
        self.stall_s = stall_s
        self.trickle = trickle
        self.delay_s = delay_s  # every answer from the server is held this long
        self.seen: list[Seen] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._tokens = max(1.0, throttle_rps)
        self._refilled = time.monotonic()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        host, port = self._listener.getsockname()[:2]
        self.endpoint = f"http://{host}:{port}"
        self._sockets: set[socket.socket] = set()
        self._busy = 0

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> FaultProxy:
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop accepting, end stalls and close every connection."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def faults(self, kind: Fault | str | None = None) -> list[Seen]:
        """The requests that got a fault (of ``kind``, if given)."""
        name = kind.value if isinstance(kind, Fault) else kind
        with self._lock:
            return [s for s in self.seen if s.fault and (name is None or s.fault == name)]

    def requests(self, method: str | None = None, query: str | None = None) -> list[Seen]:
        """The requests seen, by method and a regular expression on the query."""
        with self._lock:
            return [
                s
                for s in self.seen
                if (method is None or s.method == method)
                and (query is None or re.search(query, s.query))
            ]

    # -- the fate of one request --

    def _decide(self, request: _Request) -> tuple[str, Rule | None]:
        with self._lock:
            for rule in self.rules:
                if not rule.matches(request.method, request.path, request.query):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                rule.matched += 1
                if rule.nth is not None and rule.matched not in rule.nth:
                    continue
                if rule.chance < 1.0 and self._random.random() >= rule.chance:
                    continue
                rule.fired += 1
                return rule.fault.value, rule
            if self.throttle_rps and not self._take_token():
                return THROTTLED, None
            return "", None

    def _take_token(self) -> bool:
        now = time.monotonic()
        rate = self.throttle_rps
        self._tokens = min(max(1.0, rate), self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _record(self, request: _Request, fault: str) -> int:
        with self._lock:
            self.seen.append(
                Seen(
                    len(self.seen) + 1,
                    request.method,
                    request.path,
                    request.query,
                    request.header("range") or "-",
                    fault,
                    time.monotonic(),
                    self._busy,
                )
            )
            return len(self.seen) - 1

    def _passed(self, index: int) -> None:
        """The fault decided for request ``index`` did not apply after all."""
        with self._lock:
            self.seen[index] = dataclasses.replace(self.seen[index], fault="")

    # -- connections --

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> socket.socket:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        reader = client.makefile("rb")
        upstream = _Upstream(self)
        try:
            while not self._stopping.is_set():
                request = _read_request(reader, client)
                if request is None:
                    return
                fault, rule = self._decide(request)
                with self._lock:
                    self._busy += 1
                try:
                    index = self._record(request, fault)
                    if not self._handle(client, upstream, request, fault, rule, index):
                        return
                finally:
                    with self._lock:
                        self._busy -= 1
        except OSError:
            return
        finally:
            reader.close()
            upstream.close()
            with contextlib.suppress(OSError):
                client.close()
            self._forget(client)

    def _handle(
        self,
        client: socket.socket,
        upstream: _Upstream,
        request: _Request,
        fault: str,
        rule: Rule | None,
        index: int,
    ) -> bool:
        """Answer one request as its fault says; ``False`` when the connection ends."""
        if fault == THROTTLED:
            client.sendall(_error(Fault.S503, None))
            return True
        kind = Fault(fault) if fault else None
        if kind in _ERRORS:
            client.sendall(_error(kind, rule.retry_after if rule else None))
            return True
        if kind is Fault.RESET_BEFORE:
            _reset(client)
            return False
        if kind is Fault.RESET_UPLOAD:
            self._cut_upload(request)
            _reset(client)
            return False
        head, body, close = upstream.ask(request)
        if self.delay_s:
            self._stopping.wait(self.delay_s)
        cut = len(body) // 2 if rule is None or rule.cut_at is None else rule.cut_at
        if kind in _BODY_FAULTS and len(body) > cut:
            self._break_body(client, head, body, kind, cut)
            return False
        if kind is not None:
            self._passed(index)  # too short a body to break
        client.sendall(head + body)
        return not close and request.header("connection").lower() != "close"

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _cut_upload(self, request: _Request) -> None:
        raw = request.raw()
        upload = self._track(socket.create_connection(self.target))
        try:
            upload.sendall(raw[: len(raw) - len(request.body) // 2 - 1])
            _reset(upload)
        finally:
            upload.close()
            self._forget(upload)

    def _break_body(
        self, client: socket.socket, head: bytes, body: bytes, kind: Fault, cut: int
    ) -> None:
        if kind is Fault.TRICKLE:
            client.sendall(head)
            piece, pause = self.trickle
            for start in range(0, len(body), piece):
                client.sendall(body[start : start + piece])
                if self._stopping.wait(pause):
                    return
            return
        client.sendall(head + body[:cut])
        if kind is Fault.RESET_MID:
            _reset(client)
        elif kind is Fault.STALL:
            self._stopping.wait(self.stall_s)
        # TRUNCATE: the connection closes cleanly with the body short.


class _Upstream:
    """The kept-alive connection to the server of one client connection."""

    def __init__(self, proxy: FaultProxy) -> None:
        self._proxy = proxy
        self._sock: socket.socket | None = None
        self._reader: BinaryIO | None = None

    def ask(self, request: _Request) -> tuple[bytes, bytes, bool]:
        if self._sock is None or self._reader is None:
            self._sock = self._proxy._track(socket.create_connection(self._proxy.target))
            self._reader = self._sock.makefile("rb")
        self._sock.sendall(request.raw())
        head, body, close = _read_response(self._reader, request.method)
        if close:
            self.close()
        return head, body, close

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._proxy._forget(self._sock)
        self._sock = self._reader = None


def _read_request(reader: BinaryIO, client: socket.socket) -> _Request | None:
    line = reader.readline()
    if not line.strip():
        return None
    headers = _read_headers(reader)
    request = _Request(line, headers, b"")
    if request.header("expect").lower() == "100-continue":
        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if request.header("transfer-encoding").lower() == "chunked":
        request.body = _read_chunks(reader, keep_framing=False)
    else:
        request.body = _read_exactly(reader, int(request.header("content-length") or 0))
    return request


def _read_headers(reader: BinaryIO) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        line = reader.readline()
        if not line:
            raise OSError("connection closed in the headers")
        if line in (b"\r\n", b"\n"):
            return headers
        key, _, value = line.decode("latin-1").partition(":")
        headers.append((key.strip(), value.strip()))


def _read_exactly(reader: BinaryIO, count: int) -> bytes:
    data = reader.read(count) if count else b""
    if len(data) != count:
        raise OSError("connection closed in a body")
    return data


def _read_chunks(reader: BinaryIO, *, keep_framing: bool) -> bytes:
    out = bytearray()
    while True:
        size_line = reader.readline()
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        data = _read_exactly(reader, size + 2)  # the chunk and its CRLF
        if keep_framing:
            out += size_line + data
        else:
            out += data[:size]
        if size == 0:
            break
    if keep_framing:
        return bytes(out)
    while reader.readline() not in (b"\r\n", b"\n", b""):  # trailers
        pass
    return bytes(out)


def _read_response(reader: BinaryIO, method: str) -> tuple[bytes, bytes, bool]:
    """Status line and headers, body (chunk framing kept), and whether the server closes."""
    status = reader.readline()
    if not status:
        raise OSError("the server closed the connection")
    headers = _read_headers(reader)
    names = {key.lower(): value for key, value in headers}
    code = int(status.split()[1])
    head = status + b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers) + b"\r\n"
    close = names.get("connection", "").lower() == "close"
    if method == "HEAD" or code in (204, 304) or 100 <= code < 200:
        return head, b"", close
    if names.get("transfer-encoding", "").lower() == "chunked":
        return head, _read_chunks(reader, keep_framing=True), close
    if "content-length" in names:
        return head, _read_exactly(reader, int(names["content-length"])), close
    return head, reader.read(), True


def _error(kind: Fault, retry_after: float | None) -> bytes:
    status, reason, code, message = _ERRORS[kind]
    body = f"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>{code}</Code>"
    body += f"<Message>{message}</Message></Error>"
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
    if retry_after is not None:
        head += f"Retry-After: {retry_after:g}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return (head + body).encode()


def _reset(sock: socket.socket) -> None:
    """Make the coming close a TCP reset (RST), not a clean FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def rate(seen: Sequence[Seen]) -> float:
    """Requests per second over the span of ``seen`` (first to last arrival)."""
    if len(seen) < 2:
        return 0.0
    return (len(seen) - 1) / max(1e-9, seen[-1].at - seen[0].at)
