"""Every HTTP failure a deployment meets, injected by ``tests/faultproxy.py``.

External reads (ranged GETs of presigned URLs), ``link_file``'s HeadObject,
``mirror``'s listing and native reads and writes on an S3 block store each go
through the proxy, which fails chosen requests: error statuses, resets before
the status line and mid-body, bodies cut short, stalled or slowed to a
trickle. A fault either is retried and invisible (every byte right) or ends
in a clear error naming the path; no half-written block is ever referenced.
"""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import Filespace
from filespace.objects import pools, s3
from filespace.testing import SeaweedS3
from tests.faultproxy import Fault, FaultProxy, Rule
from tests.fsfixtures import location_of, s3_block_space, store_config

B = 256 * 1024
ERRORS = [Fault.S500, Fault.S503, Fault.S429]
BODIES = [Fault.RESET_BEFORE, Fault.RESET_MID, Fault.TRUNCATE, Fault.TRICKLE]

# External reads, HEADs and listings do not depend on the engine: SQLite only.
sqlite_only = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)


@pytest.fixture
def proxy(s3_server: SeaweedS3) -> Iterator[FaultProxy]:
    with FaultProxy(s3_server.endpoint, seed=13, stall_s=20.0) as running:
        yield running


@pytest.fixture
def via_proxy(
    connected: Filespace, proxy: FaultProxy, s3_server: SeaweedS3, bucket: str
) -> Filespace:
    """``connected`` with data store ``p``: ``bucket`` through the proxy."""
    connected.connect.add_data_store("p", store_config(s3_server, bucket, endpoint=proxy.endpoint))
    return connected


@pytest.fixture
def linked(via_proxy: Filespace, s3_admin: Any, bucket: str) -> Callable[[int], bytes]:
    """Puts ``n`` random bytes as ``p.bin``, linked as ``/p.bin`` through the proxy."""

    def make(size: int) -> bytes:
        data = random.Random(size).randbytes(size)
        etag = s3_admin.put_object(Bucket=bucket, Key="p.bin", Body=data)["ETag"].strip('"')
        # Size and checksum given: no HeadObject, so every request is a read's.
        via_proxy.connect.link_file("/p.bin", "p", "p.bin", size=size, checksum=etag)
        return data

    return make


def read_randomly(fsp: Filespace, path: str, size: int, seed: int) -> dict[int, bytes]:
    """Reads at seeded random places of an unbuffered handle: offset -> bytes."""
    rng = random.Random(seed)
    got: dict[int, bytes] = {}
    with fsp.fs.open(path, "rb", buffering=0) as raw:
        for _ in range(6):
            at = rng.randrange(size)
            raw.seek(at)
            got[at] = raw.read(rng.randrange(1, 3 * B))
    return got


def check_random(got: dict[int, bytes], data: bytes) -> None:
    for at, chunk in got.items():
        assert chunk == data[at : at + len(chunk)] and chunk, at


# -- external reads --


@sqlite_only
@pytest.mark.parametrize("fault", ERRORS + BODIES, ids=lambda f: f.value)
def test_external_sequential_read_rides_out_a_fault(
    connected: Filespace, proxy: FaultProxy, linked: Callable[[int], bytes], fault: Fault
) -> None:
    data = linked(6 * B + 5)
    proxy.rules.append(Rule(fault, method="GET", nth={1, 3}))
    assert connected.fs.read_file("/p.bin") == data
    assert len(proxy.faults(fault)) == 2


@sqlite_only
@pytest.mark.parametrize("fault", [Fault.S503, *BODIES], ids=lambda f: f.value)
def test_external_random_reads_ride_out_faults(
    connected: Filespace, proxy: FaultProxy, linked: Callable[[int], bytes], fault: Fault
) -> None:
    data = linked(12 * B)
    proxy.rules.append(Rule(fault, method="GET", chance=0.4, times=4))
    check_random(read_randomly(connected, "/p.bin", len(data), seed=5), data)
    assert proxy.faults(fault), "the seeded rule never fired"


@sqlite_only
def test_retry_after_is_honoured_and_slows_the_endpoint(
    connected: Filespace, proxy: FaultProxy, linked: Callable[[int], bytes]
) -> None:
    data = linked(2 * B)
    proxy.rules.append(Rule(Fault.S503, method="GET", nth={1}, retry_after=0.3))
    assert connected.fs.read_file("/p.bin") == data
    refused = proxy.faults(Fault.S503)[0]
    retried = [s for s in proxy.requests("GET") if s.range == refused.range and not s.fault]
    assert len(retried) == 1
    assert retried[0].at - refused.at >= 0.3  # not a timing ceiling: the least it must wait


@sqlite_only
def test_a_stalled_body_is_abandoned_and_asked_again(
    connected: Filespace,
    proxy: FaultProxy,
    linked: Callable[[int], bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A stall is a read timeout: shortened here (and a pool made with it).
    monkeypatch.setattr(pools, "_READ_TIMEOUT_S", 0.5)
    monkeypatch.setattr(pools.pool, "_value", None)
    data = linked(3 * B)
    proxy.rules.append(Rule(Fault.STALL, method="GET", nth={1}))
    assert connected.fs.read_file("/p.bin") == data
    assert len(proxy.faults(Fault.STALL)) == 1


@sqlite_only
@pytest.mark.parametrize("fault", [Fault.S500, Fault.TRUNCATE], ids=lambda f: f.value)
def test_a_lasting_fault_is_eio_naming_the_path(
    connected: Filespace, proxy: FaultProxy, linked: Callable[[int], bytes], fault: Fault
) -> None:
    linked(2 * B)
    proxy.rules.append(Rule(fault, method="GET"))
    with pytest.raises(filespace.ExternalReadError, match=r"gave up after \d+ attempt") as info:
        connected.fs.read_file("/p.bin")
    assert info.value.errno == errno.EIO
    assert info.value.filename == "/p.bin"


# -- link_file's HeadObject, mirror's listing (botocore) --


@sqlite_only
@pytest.mark.parametrize(
    "fault", [Fault.S500, Fault.S429, Fault.RESET_BEFORE], ids=lambda f: f.value
)
def test_link_file_head_rides_out_a_fault(
    via_proxy: Filespace, proxy: FaultProxy, s3_admin: Any, bucket: str, fault: Fault
) -> None:
    connected = via_proxy
    s3_admin.put_object(Bucket=bucket, Key="h.bin", Body=b"x" * 1234)
    proxy.rules.append(Rule(fault, method="HEAD", nth={1, 2}))
    connected.connect.link_file("/h.bin", "p", "h.bin")
    assert connected.fs.get_entry("/h.bin").size == 1234
    assert len(proxy.faults(fault)) == 2


@sqlite_only
def test_link_file_head_failing_for_good_is_a_data_store_error(
    via_proxy: Filespace, proxy: FaultProxy, s3_admin: Any, bucket: str
) -> None:
    connected = via_proxy
    s3_admin.put_object(Bucket=bucket, Key="h.bin", Body=b"x")
    proxy.rules.append(Rule(Fault.S500, method="HEAD"))
    with pytest.raises(filespace.DataStoreAccessError, match=r"'h\.bin'.*500"):
        connected.connect.link_file("/h.bin", "p", "h.bin")
    assert not connected.fs.exists("/h.bin")


LISTING = r"list-type=2"
LIST_FAULTS = [Fault.S503, Fault.RESET_MID, Fault.TRUNCATE]


@sqlite_only
@pytest.mark.parametrize("fault", LIST_FAULTS, ids=lambda f: f.value)
def test_mirror_listing_rides_out_a_fault(
    via_proxy: Filespace, proxy: FaultProxy, s3_admin: Any, bucket: str, fault: Fault
) -> None:
    connected = via_proxy
    for index in range(5):
        s3_admin.put_object(Bucket=bucket, Key=f"m/{index}", Body=b"m" * index)
    proxy.rules.append(Rule(fault, method="GET", query=LISTING, nth={1, 2}))
    report = connected.connect.mirror("p", "m/", "/m")
    assert report.added == 5
    assert sorted(connected.fs.list_dir("/m")) == [str(i) for i in range(5)]
    assert len(proxy.faults(fault)) == 2


@sqlite_only
def test_mirror_listing_failing_for_good_is_a_data_store_error(
    via_proxy: Filespace, proxy: FaultProxy, s3_admin: Any, bucket: str
) -> None:
    connected = via_proxy
    s3_admin.put_object(Bucket=bucket, Key="m/a", Body=b"a")
    proxy.rules.append(Rule(Fault.S500, method="GET", query=LISTING))
    with pytest.raises(filespace.DataStoreError, match=r"cannot list s3://.*InternalError"):
        connected.connect.mirror("p", "m/", "/m")


# -- native reads and writes on an S3 block store (both engines) --


@pytest.fixture
def proxied_blocks(
    engine_name: str, tmp_path: Path, s3_server: SeaweedS3, bucket: str, proxy: FaultProxy
) -> Iterator[Filespace]:
    """A filespace whose blocks live in ``bucket`` under ``space/``, reached through the proxy."""
    with s3_block_space(engine_name, tmp_path, s3_server, bucket, proxy.endpoint) as space:
        yield space


BLOCK_PUT = r"^/[^/]+/space/blocks/"


def uncached(fsp: Filespace) -> Filespace:
    """A second client of ``fsp`` without a block cache: every read reaches the store."""
    return filespace.open(location_of(fsp), cache_size_mb=0)


def check_blocks_whole(fsp: Filespace, s3_admin: Any, bucket: str) -> None:
    """Every block the engine references is in the bucket, whole."""
    engine = fsp._engine  # type: ignore[attr-defined]
    for path in fsp.fs.list_dir("/"):
        entry = fsp.fs.get_entry(f"/{path}")
        for block in engine.blocks(entry.file_id_external):
            name = f"space/blocks/{block.key[:2]}/{block.key}"
            head = s3_admin.head_object(Bucket=bucket, Key=name)
            assert head["ContentLength"] >= block.length, name


WRITE_FAULTS = [Fault.S500, Fault.S503, Fault.RESET_BEFORE, Fault.RESET_UPLOAD]


@pytest.mark.parametrize("fault", WRITE_FAULTS, ids=lambda f: f.value)
def test_native_write_rides_out_a_fault(
    proxied_blocks: Filespace, proxy: FaultProxy, s3_admin: Any, bucket: str, fault: Fault
) -> None:
    data = os.urandom(3 * B + 7)
    proxy.rules.append(Rule(fault, method="PUT", path=BLOCK_PUT, nth={1}))
    proxied_blocks.fs.write_file("/w.bin", data)
    proxied_blocks.sync_all()
    assert len(proxy.faults(fault)) == 1
    check_blocks_whole(proxied_blocks, s3_admin, bucket)
    assert proxied_blocks.fs.read_file("/w.bin") == data


@pytest.mark.parametrize("fault", [Fault.S500, Fault.RESET_UPLOAD], ids=lambda f: f.value)
def test_native_write_failing_for_good_commits_nothing(
    proxied_blocks: Filespace, proxy: FaultProxy, s3_admin: Any, bucket: str, fault: Fault
) -> None:
    proxied_blocks.fs.write_file("/w.bin", b"before")
    proxy.rules.append(Rule(fault, method="PUT", path=BLOCK_PUT))
    with pytest.raises(OSError, match="cannot store block") as info:
        proxied_blocks.fs.write_file("/w.bin", os.urandom(2 * B))
    assert info.value.errno == errno.EIO
    proxy.rules.clear()
    assert proxied_blocks.fs.read_file("/w.bin") == b"before"
    check_blocks_whole(proxied_blocks, s3_admin, bucket)


READ_FAULTS = [Fault.S503, Fault.RESET_MID, Fault.TRUNCATE, Fault.TRICKLE]


# Which engine holds the block list does not change how blocks are read.
@sqlite_only
@pytest.mark.parametrize("fault", READ_FAULTS, ids=lambda f: f.value)
def test_native_read_rides_out_a_fault(
    proxied_blocks: Filespace, proxy: FaultProxy, fault: Fault
) -> None:
    data = os.urandom(4 * B + 3)
    proxied_blocks.fs.write_file("/r.bin", data)
    proxy.rules.append(Rule(fault, method="GET", path=BLOCK_PUT, nth={1, 3}))
    with uncached(proxied_blocks) as reader:
        check_random(read_randomly(reader, "/r.bin", len(data), seed=9), data)
        assert reader.fs.read_file("/r.bin") == data
    assert proxy.faults(fault)


@sqlite_only
def test_native_read_failing_for_good_is_eio_naming_the_path(
    proxied_blocks: Filespace, proxy: FaultProxy
) -> None:
    proxied_blocks.fs.write_file("/r.bin", os.urandom(2 * B))
    proxy.rules.append(Rule(Fault.TRUNCATE, method="GET", path=BLOCK_PUT))
    with uncached(proxied_blocks) as reader, pytest.raises(OSError, match="block") as info:
        reader.fs.read_file("/r.bin")
    assert info.value.errno == errno.EIO
    assert info.value.filename == "/r.bin"


@sqlite_only
def test_native_read_of_a_stalled_block_asks_again(
    proxied_blocks: Filespace, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore's read timeout, shortened for the client the second open builds.
    monkeypatch.setattr(s3, "_READ_TIMEOUT_S", 0.5)
    data = os.urandom(2 * B + 1)
    proxied_blocks.fs.write_file("/r.bin", data)
    proxy.rules.append(Rule(Fault.STALL, method="GET", path=BLOCK_PUT, nth={1}))
    with uncached(proxied_blocks) as reader:
        assert reader.fs.read_file("/r.bin") == data
    assert len(proxy.faults(Fault.STALL)) == 1
