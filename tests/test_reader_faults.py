"""External reads when things go wrong: resets, SlowDown, a paused or restarted
server, short-lived URLs. Faults come from the real server (pause, restart) or
from ``tests/faultproxy.py`` (every other HTTP fault is in ``test_faults.py``)."""

from __future__ import annotations

import errno
import os
import random
import re
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

import filespace
from filespace import Filespace
from filespace.connect import access
from filespace.connect.signing import UrlSigner
from filespace.io import prefetch
from filespace.io.prefetch import BLOCK_SIZE, REQUEST_SIZE
from filespace.testing import SeaweedS3
from tests import waiting
from tests.faultproxy import Fault, FaultProxy, Rule, Seen
from tests.fsfixtures import store_config

B = BLOCK_SIZE


@pytest.fixture
def proxied(
    connected: Filespace, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> Iterator[Callable[..., tuple[FaultProxy, bytes]]]:
    """Makes a proxy with the given rules, a store ``p`` through it and ``/p.bin``."""
    proxies: list[FaultProxy] = []

    def make(
        *rules: Rule, size: int = 4 * B + 99, delay_s: float = 0.0
    ) -> tuple[FaultProxy, bytes]:
        proxy = FaultProxy(s3_server.endpoint, rules, delay_s=delay_s).start()
        proxies.append(proxy)
        data = os.urandom(size)
        etag = s3_admin.put_object(Bucket=bucket, Key="p.bin", Body=data)["ETag"].strip('"')
        config = store_config(s3_server, bucket, endpoint=proxy.endpoint)
        connected.connect.add_data_store("p", config)
        # Size and checksum given: no HeadObject, so every request is a read's.
        connected.connect.link_file("/p.bin", "p", "p.bin", size=size, checksum=etag)
        return proxy, data

    yield make
    for proxy in proxies:
        proxy.stop()


def _span(seen: Seen) -> tuple[int, int]:
    first, last = seen.range.removeprefix("bytes=").split("-")
    return int(first), int(last)


def test_reset_connections_are_retried(
    connected: Filespace, proxied: Callable[..., tuple[FaultProxy, bytes]]
) -> None:
    proxy, data = proxied(Rule(Fault.RESET_BEFORE, method="GET", nth={1, 2, 3}))
    assert connected.fs.read_file("/p.bin") == data
    assert len(proxy.faults(Fault.RESET_BEFORE)) == 3


def test_a_body_cut_short_resumes_where_it_stopped(
    connected: Filespace, proxied: Callable[..., tuple[FaultProxy, bytes]]
) -> None:
    cut = B + 1000
    proxy, data = proxied(Rule(Fault.TRUNCATE, method="GET", nth={1, 2}, cut_at=cut), size=12 * B)
    with connected.fs.open("/p.bin", "rb", buffering=0) as raw:
        got = bytearray()
        while chunk := raw.read(12 * B):
            got += chunk
    assert got == data
    # The first two requests are set to be cut, but one no longer than the cut
    # point passes whole.
    cuts = proxy.faults(Fault.TRUNCATE)
    assert 1 <= len(cuts) <= 2
    asked = [_span(seen) for seen in proxy.requests("GET")]
    for seen in cuts:
        first, last = _span(seen)
        # What arrived in whole blocks was kept: the retry asks for the rest only.
        assert (first + cut // B * B, last) in asked[seen.number :], (seen, asked)


def test_slowdown_is_retried(
    connected: Filespace, proxied: Callable[..., tuple[FaultProxy, bytes]]
) -> None:
    proxy, data = proxied(Rule(Fault.S503, method="GET", nth={1, 2}))
    with connected.fs.open("/p.bin", "rb", buffering=0) as raw:
        raw.seek(7)
        assert raw.read(10) == data[7:17]
    assert len(proxy.faults(Fault.S503)) == 2


def test_concurrent_misses_on_a_block_load_it_once(
    connected: Filespace, proxied: Callable[..., tuple[FaultProxy, bytes]]
) -> None:
    proxy, data = proxied(delay_s=0.2)  # long enough for all to pile up
    start = threading.Barrier(6)
    results: list[bytes] = []

    def read() -> None:
        start.wait()
        with connected.fs.open("/p.bin", "rb") as handle:
            handle.seek(B + 5)
            results.append(handle.read(100))

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [data[B + 5 : B + 105]] * 6
    block_gets = [seen for seen in proxy.requests("GET") if _span(seen) == (B, 2 * B - 1)]
    assert len(block_gets) == 1


def test_server_restart_mid_read(
    connected: Filespace, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    data = os.urandom(40 * B)
    s3_admin.put_object(Bucket=bucket, Key="r.bin", Body=data)
    connected.connect.link_file("/r.bin", "store", "r.bin")
    with connected.fs.open("/r.bin", "rb") as handle:
        handle.seek(3 * B)
        first = handle.read(100)
        s3_server.restart(grace=1)  # every pooled connection is now dead
        handle.seek(30 * B)
        second = handle.read(100)
        handle.seek(0)
        rest = handle.read()
    assert first == data[3 * B : 3 * B + 100]
    assert second == data[30 * B : 30 * B + 100]
    assert rest == data


def test_lasting_outage_is_eio_naming_the_path(
    connected: Filespace, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    s3_admin.put_object(Bucket=bucket, Key="o.bin", Body=os.urandom(2 * B))
    connected.connect.link_file("/o.bin", "store", "o.bin")
    s3_server.pause()  # requests hang: each attempt times out
    try:
        with pytest.raises(filespace.ExternalReadError) as info:
            connected.fs.read_file("/o.bin")
    finally:
        s3_server.resume()
    assert info.value.errno == errno.EIO
    assert "/o.bin" in str(info.value)
    # It gave up after a bounded number of attempts (how long that took is for
    # benchmarks, not tests; a read that never gives up hits the suite's timeout).
    assert re.search(r"gave up after \d+ attempt\(s\)", str(info.value)), str(info.value)


# URL lifetimes are the reader's business, not the engine's: one engine is enough.
@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_reads_outlast_short_lived_urls(
    connected: Filespace,
    s3_server: SeaweedS3,
    s3_admin: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A single open handle keeps reading after the URLs it was given expired.
    # The store's URLs live 2 s here instead of its minute (the signer's
    # lifetime is a parameter), and between reads the test waits until the
    # server refuses a URL signed after the last read, so every URL the handle
    # holds has expired too. Each read takes a new block: each is a request.
    monkeypatch.setattr(access, "UrlSigner", lambda client, _lifetime_s: UrlSigner(client, 2))
    data = os.urandom(16 * B)
    s3_admin.put_object(Bucket=bucket, Key="s.bin", Body=data)
    connected.connect.add_data_store("short", store_config(s3_server, bucket))
    connected.connect.link_file("/s.bin", "short", "s.bin")
    blocks = list(range(16))
    random.Random(3).shuffle(blocks)
    params = {"Bucket": bucket, "Key": "s.bin"}
    with connected.fs.open("/s.bin", "rb", buffering=0) as raw:
        for step, block in enumerate(blocks[:3]):
            if step:
                later = s3_admin.generate_presigned_url("get_object", Params=params, ExpiresIn=2)
                waiting.until(
                    partial(waiting.expired, later), "a URL signed after the read to expire"
                )
            raw.seek(block * B + 3)
            assert raw.read(1000) == data[block * B + 3 : block * B + 1003]


# -- sequential reads from a near server: one GET, read straight into the caller's buffer --
BIG = REQUEST_SIZE + 16 * B + 77  # above REQUEST_SIZE: eligible for a direct stream


def _ranges(proxy: FaultProxy) -> list[str]:
    return [seen.range for seen in proxy.requests("GET")]


@pytest.fixture
def near(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count the proxied server as near, whatever its answers take on a busy machine."""
    monkeypatch.setattr(prefetch, "NEAR_S", 60.0)


def test_near_sequential_read_is_one_stream_into_the_callers_buffer(
    connected: Filespace, proxied: Callable[..., tuple[FaultProxy, bytes]], near: None
) -> None:
    proxy, data = proxied(size=BIG)
    got = bytearray()
    with connected.fs.open("/p.bin", "rb") as handle:
        got += handle.read(B)  # the first read: blocks (it also learns the server is near)
        while chunk := handle.read(1_000_003):  # sequential from here on: one stream
            got += chunk
        assert handle.read(5) == b""
        handle.seek(5)  # a random read after the stream: blocks again, bytes still right
        assert handle.read(100) == data[5:105]
    assert got == data
    ranges = _ranges(proxy)
    assert ranges[0] == f"bytes=0-{B - 1}"
    assert f"bytes={B}-{BIG - 1}" in ranges  # everything after the first read, asked once
    assert len(ranges) <= 3, ranges


def test_a_direct_stream_cut_short_resumes_where_it_stopped(
    connected: Filespace, proxied: Callable[..., tuple[FaultProxy, bytes]], near: None
) -> None:
    # Every answer is cut after about 0.75 MiB: the stream goes on over many
    # requests, each starting where the last one stopped.
    proxy, data = proxied(Rule(Fault.TRUNCATE, method="GET", cut_at=3 * B + 500), size=BIG)
    got = bytearray()
    with connected.fs.open("/p.bin", "rb") as handle:
        while chunk := handle.read(2 * B + 1):
            got += chunk
    assert got == data
    assert len(proxy.faults(Fault.TRUNCATE)) >= 2
    stream = [r for r in _ranges(proxy) if r.endswith(f"-{BIG - 1}")]
    starts = [int(r.split("=")[1].split("-")[0]) for r in stream]
    # Never backwards (a cut before a whole piece arrived asks again from the same place).
    assert len(set(starts)) >= 2 and starts == sorted(starts), starts


@pytest.fixture
def replaced_later(
    proxied: Callable[..., tuple[FaultProxy, bytes]], s3_admin: Any, bucket: str, near: None
) -> tuple[bytes, Callable[[], None]]:
    """A BIG ``/p.bin`` from a near server, and a function that replaces the object."""
    _, data = proxied(size=BIG)
    return data, lambda: s3_admin.put_object(Bucket=bucket, Key="p.bin", Body=os.urandom(BIG))


def test_a_direct_stream_of_a_changed_object_is_estale(
    connected: Filespace, replaced_later: tuple[bytes, Callable[[], None]]
) -> None:
    data, replace = replaced_later
    with connected.fs.open("/p.bin", "rb") as handle:
        assert handle.read(B) == data[:B]  # the server is known to be near now
    replace()
    with (
        connected.fs.open("/p.bin", "rb") as handle,
        pytest.raises(filespace.StaleFileError) as info,
    ):
        handle.read(REQUEST_SIZE)  # a big first read goes straight to a stream
    assert info.value.errno == errno.ESTALE
    assert "/p.bin" in str(info.value)


def test_unbuffered_sequential_reads_of_a_big_object_each_ask_the_server(
    connected: Filespace, replaced_later: tuple[bytes, Callable[[], None]]
) -> None:
    # An unbuffered handle promises that a change between two reads fails the
    # second: a stream opened by the first read must not serve the second.
    data, replace = replaced_later
    with connected.fs.open("/p.bin", "rb", buffering=0) as raw:
        assert raw.read(B) == data[:B]
        assert raw.read(B) == data[B : 2 * B]
        replace()
        with pytest.raises(filespace.StaleFileError) as info:
            raw.read(B)
    assert info.value.errno == errno.ESTALE
