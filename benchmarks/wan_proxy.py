"""A loopback TCP proxy that makes a local server look far away.

Each connection gets two threads. Every response (the first bytes the server
sends after the client sent some) is held until ``delay_ms`` after the
request went through, and each connection is paced to ``rate_mb_s`` megabytes
per second, roughly a long-haul link to S3. ``log`` prints one line per
request (method, path and Range). Faults (errors, resets, bodies cut short,
throttling) are ``tests/faultproxy.py``'s job.

    python benchmarks/wan_proxy.py --target 127.0.0.1:8333 [--delay-ms 20]
        [--rate-mb-s 100] [--log] [--port 0]

prints ``listening 127.0.0.1:PORT`` and serves until killed. ``WanProxy`` does
the same inside a process (``start()``, ``stop()``, ``address``).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

_CHUNK = 256 * 1024
_PACE_SLICE = 64 * 1024


class WanProxy:
    """Forwards ``127.0.0.1:port`` to ``target`` with latency and pacing."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        delay_ms: float = 20.0,
        rate_mb_s: float = 100.0,
        log: bool = False,
        port: int = 0,
    ) -> None:
        self.target = target
        self.delay = delay_ms / 1000.0
        self.rate = rate_mb_s * 1_000_000 if rate_mb_s > 0 else 0.0
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
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _say(self, text: str) -> None:
        if self.log:
            print(text, flush=True)

    def _note_request(self, data: bytes) -> None:
        """Count (and log) a request."""
        with self._lock:
            self.requests += 1
            number = self.requests
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        ranges = [
            line.split(":", 1)[1].strip() for line in head[1:] if line.lower().startswith("range:")
        ]
        self._say(f"request {number} {head[0].split('?')[0]} range={ranges[0] if ranges else '-'}")

    def _serve(self, client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            server = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state: dict[str, Any] = {"request_at": None}
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
                    self._note_request(data)
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
        except OSError:
            pass
        finally:
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.close()


def spawn(
    endpoint: str, *, delay_ms: float = 20.0, rate_mb_s: float = 100.0
) -> tuple[subprocess.Popen[str], str]:
    """This proxy in a process of its own in front of ``endpoint`` (``http://host:port``):
    the process (kill it when done) and the proxy's own endpoint."""
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--target",
            endpoint.removeprefix("http://"),
            "--delay-ms",
            str(delay_ms),
            "--rate-mb-s",
            str(rate_mb_s),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, "http://" + proc.stdout.readline().split()[1]


@contextlib.contextmanager
def spawned(endpoint: str, **options: float) -> Iterator[str]:
    """``spawn`` for a ``with`` block: the proxy's endpoint, the process ended after it."""
    proc, url = spawn(endpoint, **options)
    try:
        yield url
    finally:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the real server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--rate-mb-s", type=float, default=100.0, help="0: unlimited")
    parser.add_argument("--log", action="store_true")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    proxy = WanProxy(
        (host, int(port)),
        delay_ms=args.delay_ms,
        rate_mb_s=args.rate_mb_s,
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
