"""Where HTTP links may point: the address policy, its sealed switch, and HTTP odds and ends.

HTTP links may not reach loopback, private, link-local (metadata),
unspecified, multicast or reserved addresses unless a keyholder allowed
private URLs (API.md §7). The addresses below are refused before any
connection is made, so those tests need no network; the rest use a real
HTTP server on loopback, which is why they allow private URLs first.
"""

from __future__ import annotations

import base64
import errno
import threading
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import ConnectSettings, Filespace, PrivateUrlError
from tests.fsfixtures import new_location

PUBLIC = "https://1.1.1.1/public.bin"  # a public address, never fetched here

# One URL per refused kind of address, in the spellings an attacker would try.
REFUSED = [
    ("http://127.0.0.1/x", "loopback"),
    ("http://2130706433/x", "loopback"),
    ("http://0x7f.1/x", "loopback"),
    ("http://localhost:8080/x", "loopback"),
    ("http://[::1]/x", "loopback"),
    ("http://[::ffff:127.0.0.1]/x", "loopback (IPv4 127.0.0.1 inside IPv6)"),
    ("http://169.254.169.254/latest/meta-data/", "link-local (cloud metadata)"),
    ("http://[fd00:ec2::254]/latest", "private (cloud metadata)"),
    ("http://169.254.1.2/x", "link-local"),
    ("http://[fe80::1]/x", "link-local"),
    ("https://10.0.0.5/x", "private"),
    ("http://172.16.3.4/x", "private"),
    ("http://192.168.1.1:8000/x", "private"),
    ("http://100.100.100.200/x", "private (shared address space)"),
    ("http://[fc00::5]/x", "private (unique local)"),
    ("http://0.0.0.0/x", "unspecified"),
    ("http://[::]/x", "unspecified"),
    ("http://224.0.0.1/x", "multicast"),
    ("http://[ff02::1]/x", "multicast"),
    ("http://255.255.255.255/x", "reserved"),
]


class Web:
    """A real HTTP/1.1 server on loopback (keep-alive, ranges) that counts its requests.

    ``/data`` has a strong ETag, ``/weak`` a weak one (a strict server: any
    ``If-Match`` fails, as RFC 9110's strong comparison says), ``/moved``
    redirects to ``/data`` and anything else is a 404 with a body.
    """

    BODY = b"0123456789abcdefghij"

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                web.requests.append((self.path, dict(self.headers.items())))
                if self.path in ("/data", "/weak"):
                    self._object('"v1"' if self.path == "/data" else 'W/"v1"')
                elif self.path == "/moved":
                    self._answer(302, b"", {"Location": "/data"})
                else:
                    self._answer(404, b"<Error><Code>NoSuchKey</Code></Error>" * 20)

            def _object(self, etag: str) -> None:
                match = self.headers.get("If-Match")
                if match is not None and (etag.startswith("W/") or match != etag):
                    self._answer(412, b"precondition failed")
                    return
                body, headers = Web.BODY, {"ETag": etag}
                wanted = self.headers.get("Range", "")
                if wanted.startswith("bytes="):
                    first, last = (int(n) for n in wanted[6:].split("-"))
                    last = min(last, len(body) - 1)
                    headers["Content-Range"] = f"bytes {first}-{last}/{len(body)}"
                    self._answer(206, body[first : last + 1], headers)
                else:
                    self._answer(200, body, headers)

            def _answer(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def web() -> Iterator[Web]:
    server = Web()
    yield server
    server.close()


@pytest.fixture
def space(fsp: Filespace) -> Filespace:
    """A filespace (each engine) with Connect on and the default settings."""
    fsp.connect.enable()
    return fsp


@pytest.mark.parametrize(("url", "reason"), REFUSED, ids=[u for u, _ in REFUSED])
def test_refused_addresses(space: Filespace, url: str, reason: str) -> None:
    connect = space.connect
    for size in (None, 7):  # probed, or only resolved: refused either way
        with pytest.raises(PrivateUrlError) as refused:
            connect.link_http_file("/f", url, size=size)
        assert refused.value.reason == reason
        assert refused.value.errno == errno.EACCES and refused.value.filename == "/f"
        assert isinstance(refused.value, RuntimeError)
        assert "allow_private_urls=True" in str(refused.value)
        assert not space.fs.exists("/f")
    # Made while allowed, a link is refused again at every read once disallowed.
    connect.configure(allow_private_urls=True)
    connect.link_http_file("/f", url, size=7)
    connect.configure(allow_private_urls=False)
    with pytest.raises(PrivateUrlError) as read:
        space.fs.read_file("/f")
    assert (read.value.reason, read.value.filename) == (reason, "/f")
    connect.link_http_file("/ok", "https://example.invalid/x", size=1)  # a name, unresolved
    with pytest.raises(PrivateUrlError):
        connect.update_http_file_url("/ok", url, size=7)
    assert connect.get_external_file("/ok").url == "https://example.invalid/x"


def test_names_are_judged_by_the_address_they_resolve_to(space: Filespace, web: Web) -> None:
    """``localhost`` is a name: the address it resolves to (loopback) is what is checked,
    at link time and again when a connection is made for a read."""
    connect = space.connect
    url = web.url("/data", host="localhost")
    with pytest.raises(PrivateUrlError, match=r"localhost resolves to 127\.0\.0\.1, a loopback"):
        connect.link_http_file("/d", url)
    assert web.requests == []  # refused before connecting
    connect.configure(allow_private_urls=True)
    connect.link_http_file("/d", url)
    assert space.fs.read_file("/d") == Web.BODY
    connect.configure(allow_private_urls=False)
    seen = len(web.requests)
    with pytest.raises(PrivateUrlError, match=r"localhost resolves to 127\.0\.0\.1"):
        space.fs.read_file("/d")  # its blocks are cached, yet nothing is served
    assert len(web.requests) == seen


def test_allow_then_refuse_again(space: Filespace, web: Web) -> None:
    connect = space.connect
    assert connect.get_settings() == ConnectSettings(allow_private_urls=False)
    with pytest.raises(PrivateUrlError):
        connect.link_http_file("/d", web.url("/data"))
    assert connect.configure(allow_private_urls=True) == ConnectSettings(allow_private_urls=True)
    assert connect.get_settings().allow_private_urls is True
    connect.link_http_file("/d", web.url("/data"))
    assert connect.get_external_file("/d").checksum == "v1"
    with space.fs.open("/d", "rb", buffering=0) as handle:
        assert handle.read(4) == b"0123"
        assert connect.configure() == ConnectSettings(allow_private_urls=True)  # no change
        connect.configure(allow_private_urls=False)
        seen = len(web.requests)
        with pytest.raises(PrivateUrlError):  # an open handle is refused at its next read
            handle.read(4)
        assert len(web.requests) == seen
    with pytest.raises(PrivateUrlError):
        connect.link_http_file("/e", web.url("/data"))
    connect.configure(allow_private_urls=True)
    assert space.fs.read_file("/d") == Web.BODY


def test_configure_checks_its_input(space: Filespace) -> None:
    with pytest.raises(ValueError, match="allow_private_urls must be a bool"):
        space.connect.configure(allow_private_urls="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="allow_private_urls"):
        space.connect.configure(allow_private_urls=1)  # type: ignore[arg-type]
    assert space.connect.get_settings() == ConnectSettings()
    settings = space.connect.get_settings()
    with pytest.raises(FrozenInstanceError):
        settings.allow_private_urls = True  # type: ignore[misc]


def test_configure_needs_connect(fsp: Filespace) -> None:
    with pytest.raises(filespace.ConnectUnavailableError):
        fsp.connect.configure(allow_private_urls=True)
    with pytest.raises(filespace.ConnectUnavailableError):
        fsp.connect.get_settings()


@pytest.fixture
def keyed(engine_name: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A filespace (each engine) whose key is not stored: opened without it, there is none."""
    key = filespace.generate_key()
    with new_location(engine_name, tmp_path) as (location, options):
        with filespace.create(location, name="keyed", key=key, **options) as fsp:
            fsp.connect.enable()
        yield location, key


def _engine(fsp: Filespace) -> Any:
    """The engine itself: what an engine writer without the key can change."""
    return fsp._engine


def test_only_a_keyholder_can_allow_private_urls(
    keyed: tuple[str, str], tmp_path: Path, engine_name: str
) -> None:
    location, key = keyed
    with filespace.open(location) as writer:  # engine access, no key
        with pytest.raises(filespace.KeyNotFoundError):
            writer.connect.configure(allow_private_urls=True)
        assert writer.connect.get_settings().allow_private_urls is False  # nothing stored
        # What an engine writer can write: garbage, an unsealed value, another
        # filespace's sealed "allowed", another record's sealed value.
        with new_location(engine_name, tmp_path / "other") as (elsewhere, options):
            with filespace.create(elsewhere, name="other", **options) as other:
                other.connect.enable()
                other.connect.configure(allow_private_urls=True)
                foreign = _engine(other).settings()["connect_settings"]
        allowed = '{"allow_private_urls": true}'
        with filespace.open(location, key=key) as keyholder:
            keyholder.connect.configure(allow_private_urls=False)
            mine = _engine(keyholder).settings()["connect_settings"]
            # The right key, sealed for another record (as a data store's secret is).
            elsewhere_sealed = keyholder._sealer().seal(allowed, "data_store:x:secret_key")
        raw = base64.b64decode(mine)
        forged = [
            "not base64!",
            base64.b64encode(allowed.encode()).decode(),
            foreign,
            base64.b64encode(raw[:-1] + bytes([raw[-1] ^ 1])).decode(),
            base64.b64encode(elsewhere_sealed).decode(),
        ]
        for value in forged:
            _engine(writer).set_setting("connect_settings", value)
            with filespace.open(location, key=key) as keyholder:
                with pytest.raises(filespace.WrongKeyError):
                    keyholder.connect.get_settings()
                with pytest.raises(filespace.WrongKeyError):  # never read as "allowed"
                    keyholder.connect.link_http_file("/x", "http://10.0.0.1/x", size=1)
                assert not keyholder.fs.exists("/x")
        # Removing the value only restores the default: refused.
        _engine(writer).set_setting("connect_settings", "")
    with filespace.open(location, key=key) as keyholder:
        assert keyholder.connect.get_settings() == ConnectSettings()
        with pytest.raises(PrivateUrlError):
            keyholder.connect.link_http_file("/x", "http://10.0.0.1/x", size=1)
        keyholder.connect.configure(allow_private_urls=True)  # a keyholder repairs it
        keyholder.connect.link_http_file("/x", "http://10.0.0.1/x", size=1)


def test_weak_etag_is_not_kept(space: Filespace, web: Web) -> None:
    space.connect.configure(allow_private_urls=True)
    space.connect.link_http_file("/w", web.url("/weak"))
    info = space.connect.get_external_file("/w")
    assert (info.size, info.checksum) == (len(Web.BODY), "")
    assert space.fs.read_file("/w") == Web.BODY  # no If-Match, which could never match
    assert all("If-Match" not in headers for _, headers in web.requests)


def test_a_failed_link_leaves_the_connection_usable(space: Filespace, web: Web) -> None:
    space.connect.configure(allow_private_urls=True)
    with pytest.raises(RuntimeError, match="HTTP 404") as kept:  # the caller keeps it
        space.connect.link_http_file("/missing", web.url("/missing"))
    space.connect.link_http_file("/d", web.url("/data"))  # the same host, next request
    assert space.fs.read_file("/d") == Web.BODY
    assert kept.value is not None


def test_redirects_are_not_followed(space: Filespace, web: Web) -> None:
    space.connect.configure(allow_private_urls=True)
    with pytest.raises(RuntimeError, match="HTTP 302"):
        space.connect.link_http_file("/m", web.url("/moved"))
    assert [path for path, _ in web.requests] == ["/moved"]


PORT = "the port must be a number from 1 to 65535"
CONTROL = "may not contain spaces or control characters"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com:70000/x", PORT),
        ("http://example.com:0/x", PORT),
        ("http://example.com:port/x", PORT),
        ("http://example.com/\udc80", "lone surrogate"),
        ("http://example.com/a\x1b[2Jb", CONTROL),
        ("http://example.com/a b", CONTROL),
        ("http://example.com/a\x85b", CONTROL),
        ("http://user:pw@example.com/x", "may not carry a user name or password"),
        ("http://[::1/x", "Invalid IPv6 URL"),
        ("ftp://example.com/x", "must be http:// or https:// with a host"),
    ],
)
def test_malformed_urls_fail_at_once(space: Filespace, url: str, why: str) -> None:
    space.connect.link_http_file("/h", PUBLIC, size=1)
    with pytest.raises(ValueError, match=why):
        space.connect.link_http_file("/f", url)
    with pytest.raises(ValueError, match=why):
        space.connect.link_http_file("/f", url, size=3)
    with pytest.raises(ValueError, match=why):
        space.connect.update_http_file_url("/h", url)
    with pytest.raises(ValueError, match=why):
        filespace.validate_http_url(url)
    assert not space.fs.exists("/f")
    assert space.connect.get_external_file("/h").url == PUBLIC


def test_a_stored_malformed_url_fails_without_retries(space: Filespace) -> None:
    """An engine writer can store any URL: reading it fails at once, not after retries."""
    space.connect.link_http_file("/h", PUBLIC, size=4)
    entry_id = space.fs.get_entry("/h").file_id_external
    _engine(space).update_link(
        entry_id, size=4, checksum="", url="http://example.com:70000/x", now_ns=1
    )
    with pytest.raises(filespace.ExternalReadError, match="malformed URL") as failed:
        space.fs.read_file("/h")
    assert "attempt" not in str(failed.value)
