"""A loopback TCP proxy that makes a local server look far away, or unreliable.

Each connection gets two threads. Every response (the first bytes the server
sends after the client sent some) is held until ``delay_ms`` after the
request went through, and each connection is paced to ``rate_mb_s`` megabytes
per second, roughly a long-haul link to S3. For testing retries:
``reset_first=N`` resets (TCP RST) the first N connections as soon as their
request arrives or, with ``cut_after``, closes them (FIN) once that many bytes
of response went through: a body cut short, every byte sent still arriving;
``slowdown_first=N`` answers the first N requests ``503 SlowDown`` itself.
``log`` prints one line per request (method, path and Range), reset and
SlowDown.

    python benchmarks/wan_proxy.py --target 127.0.0.1:8333 [--delay-ms 20]
        [--rate-mb-s 100] [--reset-first 0] [--cut-after 0]
        [--slowdown-first 0] [--log] [--port 0]

prints ``listening 127.0.0.1:PORT`` and serves until killed. ``WanProxy`` does
the same inside a process (``start()``, ``stop()``, ``address``).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import struct
import sys
import threading
import time
from typing import Any

_CHUNK = 256 * 1024
_PACE_SLICE = 64 * 1024
_SLOWDOWN = (
    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {n}\r\n"
    b"Connection: close\r\n\r\n"
)
_SLOWDOWN_BODY = (
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)


class WanProxy:
    """Forwards ``127.0.0.1:port`` to ``target`` with latency, pacing and resets."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        delay_ms: float = 20.0,
        rate_mb_s: float = 100.0,
        reset_first: int = 0,
        cut_after: int = 0,
        slowdown_first: int = 0,
        log: bool = False,
        port: int = 0,
    ) -> None:
        self.target = target
        self.delay = delay_ms / 1000.0
        self.rate = rate_mb_s * 1_000_000 if rate_mb_s > 0 else 0.0
        self.reset_first = reset_first
        self.cut_after = cut_after
        self.slowdown_first = slowdown_first
        self.log = log
        self.connections = 0
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", port), backlog=128)
        self.address = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._stopping = False

    def start(self) -> WanProxy:
        threading.Thread(target=self._accept, name="wan-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                reset = self.connections <= self.reset_first
            threading.Thread(target=self._serve, args=(client, reset), daemon=True).start()

    def _say(self, text: str) -> None:
        if self.log:
            print(text, flush=True)

    def _note_request(self, data: bytes) -> bool:
        """Count (and log) a request; ``True`` if it is to be answered SlowDown."""
        with self._lock:
            self.requests += 1
            number = self.requests
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        ranges = [
            line.split(":", 1)[1].strip() for line in head[1:] if line.lower().startswith("range:")
        ]
        self._say(f"request {number} {head[0].split('?')[0]} range={ranges[0] if ranges else '-'}")
        return number <= self.slowdown_first

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # The other thread may be blocked reading this socket, which keeps
            # it open past close() (no RST would go out, and the client would
            # wait for its read timeout): wake that read first.
            sock.shutdown(socket.SHUT_RD)
        with contextlib.suppress(OSError):
            sock.close()

    def _serve(self, client: socket.socket, reset: bool) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if reset and not self.cut_after:
            with contextlib.suppress(OSError):
                data = client.recv(_CHUNK)
                if data:
                    self._note_request(data)
            self._say("reset")
            self._reset(client)
            return
        try:
            server = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state: dict[str, Any] = {"request_at": None, "cut": reset}
        up = threading.Thread(target=self._upstream, args=(client, server, state), daemon=True)
        up.start()
        self._downstream(server, client, state)
        up.join()

    def _upstream(
        self, client: socket.socket, server: socket.socket, state: dict[str, Any]
    ) -> None:
        try:
            while True:
                data = client.recv(_CHUNK)
                if not data:
                    break
                if state["request_at"] is None:
                    if self._note_request(data):
                        self._say("slowdown")
                        head = _SLOWDOWN.replace(b"{n}", str(len(_SLOWDOWN_BODY)).encode())
                        client.sendall(head + _SLOWDOWN_BODY)
                        self._reset(server)
                        break
                    state["request_at"] = time.monotonic()
                server.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_WR)

    def _downstream(
        self, server: socket.socket, client: socket.socket, state: dict[str, Any]
    ) -> None:
        clock = time.monotonic()
        sent = 0
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        try:
            while True:
                size = server.recv_into(buffer)
                if not size:
                    break
                requested = state["request_at"]
                if requested is not None:
                    state["request_at"] = None
                    wait = requested + self.delay - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    clock = time.monotonic()
                for start in range(0, size, _PACE_SLICE):
                    piece = view[start : min(start + _PACE_SLICE, size)]
                    if self.rate:
                        clock = max(clock, time.monotonic() - 0.002) + len(piece) / self.rate
                        ahead = clock - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
                    client.sendall(piece)
                    sent += len(piece)
                    if state["cut"] and sent >= self.cut_after:
                        self._say(f"cut after {sent} bytes")
                        with contextlib.suppress(OSError):
                            client.shutdown(socket.SHUT_RDWR)  # (wakes the other thread too)
                        return
        except OSError:
            pass
        finally:
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the real server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--rate-mb-s", type=float, default=100.0, help="0: unlimited")
    parser.add_argument("--reset-first", type=int, default=0)
    parser.add_argument("--cut-after", type=int, default=0, help="bytes of response first")
    parser.add_argument("--slowdown-first", type=int, default=0)
    parser.add_argument("--log", action="store_true")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    proxy = WanProxy(
        (host, int(port)),
        delay_ms=args.delay_ms,
        rate_mb_s=args.rate_mb_s,
        reset_first=args.reset_first,
        cut_after=args.cut_after,
        slowdown_first=args.slowdown_first,
        log=args.log,
        port=args.port,
    ).start()
    print(f"listening {proxy.address[0]}:{proxy.address[1]}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
