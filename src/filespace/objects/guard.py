"""Which addresses an HTTP link may reach, and connections made only to checked ones.

An HTTP link's URL comes from whoever made the link, and the reader fetches
it from wherever the reader runs: a URL naming the reader's own loopback, a
private network or a cloud metadata service would hand internal answers back
as file content. So an HTTP link is refused when its host *resolves* to one
of the addresses below, whatever the spelling (``2130706433``, ``0x7f.1``,
``localhost``, ``[::ffff:127.0.0.1]``):

- unspecified (``0.0.0.0/8``, ``::``), loopback (``127.0.0.0/8``, ``::1``);
- link-local, where cloud metadata lives (``169.254.0.0/16``, ``fe80::/10``);
- private (``10/8``, ``172.16/12``, ``192.168/16``, shared ``100.64/10``,
  unique-local ``fc00::/7`` with AWS's ``fd00:ec2::254``, site-local ``fec0::/10``);
- multicast (``224.0.0.0/4``, ``ff00::/8``) and reserved (``240.0.0.0/4``,
  ``192.0.0.0/24``, the documentation and benchmarking ranges);
- IPv6 forms that carry one of the IPv4 addresses above (mapped ``::ffff:0:0/96``,
  compatible ``::/96``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo).

The check is made on the address the socket then connects to: ``connect``
resolves the host once, refuses if *any* address is refused (so a name that
mixes a public and a private answer gets nowhere), and connects to the very
addresses it checked — never resolving again — so a DNS answer that changes
between the check and the connection (DNS rebinding) changes nothing.
``guarded_pool`` is a urllib3 pool whose connections are made that way; TLS
still names the URL's host (SNI, certificate) and so does the ``Host`` header.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import urllib3

Guard = Callable[[], bool]
"""Asked when a URL reaches a refused address: whether private addresses are allowed now."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = [
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "private (shared address space)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.169.254/32", "link-local (cloud metadata)"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "reserved (documentation)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved (benchmarking)"),
    ("198.51.100.0/24", "reserved (documentation)"),
    ("203.0.113.0/24", "reserved (documentation)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
]
_V6 = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("100::/64", "reserved (discard)"),
    ("2001:db8::/32", "reserved (documentation)"),
    ("fd00:ec2::254/128", "private (cloud metadata)"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private (site-local)"),
    ("ff00::/8", "multicast"),
]
_REFUSED: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = [
    (ipaddress.ip_network(net), reason) for net, reason in _V4 + _V6
]
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """A host resolved to an address HTTP links may not reach."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(host, address, reason)
        self.host = host
        self.address = address
        self.reason = reason

    def __str__(self) -> str:
        where = self.address if self.host == self.address else f"{self.host} ({self.address})"
        return f"{where} is a {self.reason} address"


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address: where the packets go
    if address in _COMPATIBLE or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(text: str) -> str | None:
    """Why an address (as ``getaddrinfo`` gives it) may not be reached, or ``None``."""
    address: IPAddress = ipaddress.ip_address(text.split("%", 1)[0])
    for network, reason in _REFUSED:
        if address.version == network.version and address in network:
            return reason
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            carried = refusal(str(inner))
            if carried is not None:
                return f"{carried} (IPv4 {inner} inside IPv6)"
    return None


def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` results for a TCP connection to ``host:port`` (brackets allowed)."""
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM)


def check(host: str, results: list[tuple[Any, ...]]) -> None:
    """Raise ``Refused`` if any resolved address of ``host`` may not be reached."""
    for *_, sockaddr in results:
        reason = refusal(str(sockaddr[0]))
        if reason is not None:
            raise Refused(host.strip("[]"), str(sockaddr[0]), reason)


def _connect(
    results: list[tuple[Any, ...]],
    timeout: object,
    source_address: tuple[str, int] | None,
    socket_options: Any,
) -> socket.socket:
    """A socket connected to the first of ``results`` that answers (no new lookup)."""
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in results:
        sock = socket.socket(family, kind, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if isinstance(timeout, (int, float)):
                sock.settimeout(timeout)
            if source_address is not None:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise last if last is not None else OSError("the host has no address")


def _new_conn(conn: Any) -> socket.socket:
    """urllib3's ``HTTPConnection._new_conn``, connecting only to checked addresses."""
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    try:
        results = resolve(conn._dns_host, conn.port)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    check(conn.host, results)
    try:
        return _connect(results, conn.timeout, conn.source_address, conn.socket_options)
    except TimeoutError as exc:
        raise ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out (connect timeout={conn.timeout})"
        ) from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from exc


def guarded_pool(**options: Any) -> urllib3.PoolManager:
    """A urllib3 ``PoolManager`` whose connections reach only checked addresses.

    A refused address raises ``Refused`` (not a urllib3 error, so it is never
    retried or wrapped) and the half-made connection is dropped by urllib3.
    """
    import urllib3
    from urllib3.connection import HTTPConnection, HTTPSConnection

    plain = type("CheckedHTTPConnection", (HTTPConnection,), {"_new_conn": _new_conn})
    tls = type("CheckedHTTPSConnection", (HTTPSConnection,), {"_new_conn": _new_conn})
    manager = urllib3.PoolManager(**options)
    manager.pool_classes_by_scheme = {
        "http": type("CheckedHTTPPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": plain}),
        "https": type("CheckedHTTPSPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": tls}),
    }
    return manager
