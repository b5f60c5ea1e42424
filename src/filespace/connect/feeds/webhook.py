"""A webhook listener (MinIO's and Ceph RGW's webhook targets POST event documents to it).

``http://HOST:PORT/PATH``: listens on HOST (loopback unless ``?expose=1``
allows another address) for POSTs to PATH carrying ``Authorization: Bearer
TOKEN``, where TOKEN is the filespace's webhook token (sealed under the
filespace key; ``ConnectManager.set_webhook_token``). A POST is answered only
once the change it carries is committed: 200 then, 503 if the follower could
not commit it in time or stopped, so the sender retries (both MinIO and Ceph
do). Plain HTTP: put TLS in front (a reverse proxy) when the sender is not on
this machine.
"""

from __future__ import annotations

import hmac
import ipaddress
import queue
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from filespace.connect.feeds.base import FeedError, Message
from filespace.redaction import public_location

MAX_BODY = 16 * 2**20
"""Largest document accepted (S3's notifications are at most 64 KiB)."""

ANSWER_WITHIN_S = 60.0
"""How long a POST waits for its change to be committed before it is refused (503)."""


class _Pending:
    """A POST waiting for its answer."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.done = threading.Event()
        self.ok = False


class WebhookFeed:
    """An HTTP listener on one address."""

    drains = False

    def __init__(self, source: str, token: Callable[[], str | None]) -> None:
        parts = urlsplit(source)
        options = dict(parse_qsl(parts.query))
        self._public = public_location(source)
        host = parts.hostname or ""
        try:
            port = parts.port
        except ValueError:
            port = None
        if not host or port is None:
            raise ValueError(f"{self._public}: give the address to listen on (http://HOST:PORT/)")
        if not _is_loopback(host) and options.get("expose") != "1":
            raise ValueError(
                f"{self._public}: {host} is not a loopback address; add ?expose=1 to listen there"
            )
        self.host, self.port = host, port
        self.path = parts.path or "/"
        self._token = token
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._held: list[_Pending] = []
        """Fetched and not yet acknowledged: refused on ``close``, so the sender retries."""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"WebhookFeed({self._public!r})"

    @property
    def address(self) -> tuple[str, int]:
        """Where the listener is bound (the port is the real one when 0 was asked for)."""
        if self._server is None:
            return self.host, self.port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def connect(self) -> None:
        if self._server is not None:
            return
        token = self._token()
        if not token:
            raise FeedError(
                f"cannot listen at {self._public}: no webhook token is set "
                "(filespace connect webhook-token set; fsp.connect.set_webhook_token)"
            )
        handler = _handler(token.encode(), self.path, self._queue)
        try:
            self._server = ThreadingHTTPServer((self.host, self.port), handler)
        except OSError as exc:
            raise FeedError(f"cannot listen at {self._public}: {exc.strerror or exc}") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="filespace-webhook", daemon=True
        )
        self._thread.start()

    def fetch(self, limit: int, wait_s: float) -> list[Message]:
        found: list[Message] = []
        try:
            pending = self._queue.get(timeout=wait_s) if wait_s > 0 else self._queue.get_nowait()
            found.append(Message(pending.body, pending))
            while len(found) < limit:
                pending = self._queue.get_nowait()
                found.append(Message(pending.body, pending))
        except queue.Empty:
            pass
        self._held.extend(message.tag for message in found)
        return found

    def ack(self, messages: Sequence[Message]) -> None:
        for message in messages:
            message.tag.ok = True
            message.tag.done.set()
        acked = {id(message.tag) for message in messages}
        self._held = [pending for pending in self._held if id(pending) not in acked]

    def outstanding(self) -> int:
        return 0  # a sender keeps what it was refused

    def queued(self) -> int | None:
        return None  # senders post when they like

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        held, self._held = self._held, []
        for pending in held:  # fetched, never committed: refused, the sender sends them again
            pending.done.set()
        while True:  # refused too
            try:
                self._queue.get_nowait().done.set()
            except queue.Empty:
                break


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _handler(token: bytes, path: str, waiting: queue.Queue[_Pending]) -> Any:
    expected = b"Bearer " + token

    class Handler(BaseHTTPRequestHandler):
        server_version = "filespace"

        def log_message(self, format: str, *args: Any) -> None:
            return  # requests are counted by the follower, not printed

        def do_POST(self) -> None:
            given = self.headers.get("Authorization", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, expected):
                self._answer(401, b"a bearer token is required\n")
                return
            if urlsplit(self.path).path != path:
                self._answer(404, b"not here\n")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._answer(411, b"Content-Length is required\n")
                return
            if not 0 <= length <= MAX_BODY:
                self._answer(413, b"too large\n")
                return
            pending = _Pending(self.rfile.read(length))
            waiting.put(pending)
            if pending.done.wait(ANSWER_WITHIN_S) and pending.ok:
                self._answer(200, b"")
            else:
                self._answer(503, b"not committed; send it again\n")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
