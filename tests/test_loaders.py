"""Data loaders: the revalidation window and ``fs.prefetch``, requests counted at a real
loopback proxy (``benchmarks/wan_proxy.py``) between the client and SeaweedFS."""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import importlib.util
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import Filespace
from filespace.io.prefetch import BLOCK_SIZE
from filespace.testing import SeaweedS3
from tests.fsfixtures import store_config
from tests.test_blocks import s3_data
from tests.waiting import until

KIB = 1024
PROXY_FILE = Path(__file__).resolve().parent.parent / "benchmarks" / "wan_proxy.py"


def _proxy_class() -> Any:
    spec = importlib.util.spec_from_file_location("wan_proxy", PROXY_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WanProxy


WanProxy = _proxy_class()


@pytest.fixture
def proxy(s3_server: SeaweedS3) -> Iterator[Any]:
    """A loopback proxy in front of the server; ``.requests`` counts what went through."""
    host, _, port = s3_server.endpoint.removeprefix("http://").rpartition(":")
    started = WanProxy((host, int(port)), delay_ms=0, rate_mb_s=0).start()
    yield started
    started.stop()


@pytest.fixture
def files(
    connected: Filespace, s3_server: SeaweedS3, s3_admin: Any, bucket: str, proxy: Any
) -> Callable[..., dict[str, bytes]]:
    """Makes ``count`` linked files of ``size`` bytes read through the proxy: path -> bytes."""
    connected.connect.add_data_store(
        "p", store_config(s3_server, bucket, endpoint=proxy_url(proxy))
    )

    def make(count: int, size: int = 100 * KIB, prefix: str = "f") -> dict[str, bytes]:
        made = {}
        for number in range(count):
            key = f"{prefix}{number:04}"
            data = os.urandom(size)
            etag = s3_admin.put_object(Bucket=bucket, Key=key, Body=data)["ETag"].strip('"')
            # Size and checksum given: no HeadObject, every request is a read's.
            connected.connect.link_file(f"/{key}", "p", key, size=size, checksum=etag)
            made[f"/{key}"] = data
        return made

    return make


def proxy_url(proxy: Any) -> str:
    return f"http://{proxy.address[0]}:{proxy.address[1]}"


def reopen(fsp: Filespace, cache: Path, window: float = 0.0, size_mb: int = 64) -> Filespace:
    """The filespace opened again on ``cache``, as another process would."""
    return filespace.open(
        fsp.location, cache_dir=cache, cache_size_mb=size_mb, revalidate_after_s=window
    )


def read_all(fsp: Filespace, made: dict[str, bytes]) -> None:
    for path, data in made.items():
        assert fsp.fs.read_file(path) == data


def settle(fsp: Filespace) -> None:
    """Wait until blocks queued for the disk tier are written."""
    assert fsp.fs._cache.flush(30)  # type: ignore[attr-defined]


def block_bytes(cache: Path) -> int:
    """Bytes of block files now (the writer may evict some while we look)."""
    total = 0
    for path in cache.rglob("*"):
        if path.name.startswith("."):
            continue
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size if path.is_file() else 0
    return total


# -- the revalidation window ---------------------------------------------------------------
def test_strict_default_asks_at_every_open(
    connected: Filespace, files: Callable[..., dict[str, bytes]], proxy: Any, tmp_path: Path
) -> None:
    made = files(3)
    with reopen(connected, tmp_path / "cache") as space:
        assert space.fs.revalidate_after_s == 0.0
        read_all(space, made)
        before = proxy.requests
        read_all(space, made)  # every block cached: one 1-byte check per open
        assert proxy.requests == before + len(made)


def test_window_skips_the_round_trip_in_this_process_and_the_next(
    connected: Filespace, files: Callable[..., dict[str, bytes]], proxy: Any, tmp_path: Path
) -> None:
    made = files(3)
    cache = tmp_path / "cache"
    with reopen(connected, cache, window=3600) as first:
        read_all(first, made)
        before = proxy.requests
        assert before >= len(made)
        read_all(first, made)
        assert proxy.requests == before  # cached and confirmed moments ago: no request
        settle(first)
    with reopen(connected, cache, window=3600) as second:  # a fresh process: disk tier only
        read_all(second, made)
        assert proxy.requests == before
    with reopen(connected, cache) as strict:  # the same cache, no window: asks again
        read_all(strict, made)
        assert proxy.requests == before + len(made)


def test_unbuffered_handles_always_ask(
    connected: Filespace, files: Callable[..., dict[str, bytes]], proxy: Any, tmp_path: Path
) -> None:
    made = files(1)
    ((path, data),) = made.items()
    with reopen(connected, tmp_path / "cache", window=3600) as space:
        read_all(space, made)
        before = proxy.requests
        with space.fs.open(path, "rb", buffering=0) as raw:
            assert raw.read(10) == data[:10]
            assert raw.read(10) == data[10:20]
        assert proxy.requests == before + 2


def test_a_change_is_seen_once_the_window_has_passed(
    connected: Filespace,
    files: Callable[..., dict[str, bytes]],
    s3_admin: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    made = files(1)
    ((path, data),) = made.items()
    cache = tmp_path / "cache"
    with reopen(connected, cache, window=60) as first:
        read_all(first, made)
        settle(first)
    s3_admin.put_object(Bucket=bucket, Key=path[1:], Body=os.urandom(len(data)))
    with reopen(connected, cache, window=60) as within:
        assert within.fs.read_file(path) == data  # within the window: the cached version
    # Time passes: the confirmation recorded in the disk tier is now two minutes old.
    stamps = list(cache.rglob("*.ok"))
    assert len(stamps) == 1
    past = time.time() - 120
    os.utime(stamps[0], (past, past))
    with reopen(connected, cache, window=60) as after:
        with pytest.raises(filespace.StaleFileError) as info:
            after.fs.read_file(path)
        assert info.value.errno == errno.ESTALE


def test_a_byte_fetched_within_the_window_is_still_checked(
    connected: Filespace,
    files: Callable[..., dict[str, bytes]],
    s3_admin: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    made = files(1, size=600 * KIB)  # three blocks
    ((path, data),) = made.items()
    with reopen(connected, tmp_path / "cache", window=3600) as space:
        with space.fs.open(path, "rb") as handle:
            assert handle.read(10) == data[:10]  # block 0 fetched and confirmed
        s3_admin.put_object(Bucket=bucket, Key=path[1:], Body=os.urandom(len(data)))
        with space.fs.open(path, "rb") as handle:
            assert handle.read(10) == data[:10]  # cached, within the window
            handle.seek(550 * KIB)
            with pytest.raises(filespace.StaleFileError):
                handle.read(10)  # not cached: fetched with If-Match


@pytest.mark.parametrize("window", [-1, float("nan"), float("inf"), "5", True])
def test_a_bad_window_is_refused(connected: Filespace, window: Any) -> None:
    with pytest.raises(ValueError, match="revalidate_after_s"):
        filespace.open(connected.location, revalidate_after_s=window)


# -- prefetch --------------------------------------------------------------------------------
def test_after_prefetch_reads_make_no_requests(
    connected: Filespace, files: Callable[..., dict[str, bytes]], proxy: Any, tmp_path: Path
) -> None:
    made = files(20)
    order = sorted(made, reverse=True)
    with reopen(connected, tmp_path / "cache", window=3600) as space:
        prefetch = space.fs.prefetch(order)
        assert isinstance(prefetch, filespace.Prefetch)
        assert prefetch.wait(60)
        assert prefetch.done and prefetch.errors == {} and prefetch.fetched == len(made)
        before = proxy.requests
        assert before >= len(made)
        for path in order:
            assert space.fs.read_file(path) == made[path]
        assert proxy.requests == before
        assert prefetch.ahead_bytes == 0  # the reader opened every one


def test_a_reader_meeting_a_prefetch_in_flight_waits_for_it_and_asks_nothing(
    connected: Filespace, files: Callable[..., dict[str, bytes]], proxy: Any, tmp_path: Path
) -> None:
    ((path, data),) = files(1, size=4 * BLOCK_SIZE).items()
    with reopen(connected, tmp_path / "cache", window=3600) as space:
        before = proxy.requests
        proxy.rate = 1_000_000  # 1 MB/s: the prefetch's answer comes a block at a time
        prefetch = space.fs.prefetch([path])
        until(lambda: proxy.requests == before + 1, "the prefetch's request to be sent")
        with space.fs.open(path, "rb") as handle:
            # The first block, while the rest still streams: that answer confirms it.
            assert handle.read(10) == data[:10]
        assert prefetch.wait(60) and prefetch.errors == {}
        assert proxy.requests == before + 1


def test_a_prefetch_meeting_a_read_in_flight_waits_for_it_and_asks_nothing(
    connected: Filespace, files: Callable[..., dict[str, bytes]], proxy: Any, tmp_path: Path
) -> None:
    ((path, data),) = files(1).items()
    with reopen(connected, tmp_path / "cache", window=3600) as space:
        before = proxy.requests
        proxy.delay = 0.5  # the reader's answer is held while the prefetch arrives
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            read = pool.submit(space.fs.read_file, path)
            until(lambda: proxy.requests == before + 1, "the reader's request to be sent")
            prefetch = space.fs.prefetch([path])
            assert prefetch.wait(60) and prefetch.errors == {} and prefetch.fetched == 1
            assert read.result(60) == data
        assert proxy.requests == before + 1


def test_prefetch_of_cached_files_asks_nothing(
    connected: Filespace, files: Callable[..., dict[str, bytes]], proxy: Any, tmp_path: Path
) -> None:
    made = files(5)
    with reopen(connected, tmp_path / "cache", window=3600) as space:
        read_all(space, made)
        before = proxy.requests
        prefetch = space.fs.prefetch(list(made))
        assert prefetch.wait(60) and prefetch.fetched == len(made)
        assert proxy.requests == before


def test_a_missing_path_is_reported_not_raised(
    connected: Filespace, files: Callable[..., dict[str, bytes]], tmp_path: Path
) -> None:
    made = files(3)
    order = ["/f0000", "/nope", "/", "/f0001", "/f0002"]
    with reopen(connected, tmp_path / "cache", window=3600) as space:
        prefetch = space.fs.prefetch(order)
        assert prefetch.wait(60)
        assert set(prefetch.errors) == {"/nope", "/"}
        assert isinstance(prefetch.errors["/nope"], FileNotFoundError)
        assert isinstance(prefetch.errors["/"], IsADirectoryError)
        assert prefetch.fetched == 3
        read_all(space, made)


def test_a_changed_object_is_reported_stale(
    connected: Filespace,
    files: Callable[..., dict[str, bytes]],
    s3_admin: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    made = files(2)
    s3_admin.put_object(Bucket=bucket, Key="f0000", Body=b"another version")
    with reopen(connected, tmp_path / "cache") as space:
        prefetch = space.fs.prefetch(list(made))
        assert prefetch.wait(60)
        assert list(prefetch.errors) == ["/f0000"]
        assert prefetch.errors["/f0000"].errno == errno.ESTALE  # type: ignore[attr-defined]
        assert prefetch.fetched == 1


def _quiet(prefetch: filespace.Prefetch, timeout: float = 60) -> None:
    """Wait until no fetch of ``prefetch`` is under way (it is as far ahead as it may go)."""
    with prefetch._changed:  # type: ignore[attr-defined]
        assert prefetch._changed.wait_for(  # type: ignore[attr-defined]
            lambda: prefetch._running == 0,
            timeout,  # type: ignore[attr-defined]
        )


def test_max_mb_bounds_what_is_ahead_of_the_reader(
    connected: Filespace, files: Callable[..., dict[str, bytes]], tmp_path: Path
) -> None:
    made = files(24, size=128 * KIB)
    order = list(made)
    cache = tmp_path / "cache"
    with reopen(connected, cache, window=3600) as space:
        prefetch = space.fs.prefetch(order, max_mb=1)  # eight files' worth
        _quiet(prefetch)
        assert not prefetch.done
        assert prefetch.fetched == 8 and prefetch.ahead_bytes == 8 * 128 * KIB
        settle(space)
        assert block_bytes(cache) <= 1024 * KIB + 8 * 4 * KIB  # (block file headers)
        for path in order[:3]:  # the reader moves on three files
            assert space.fs.read_file(path) == made[path]
        _quiet(prefetch)
        assert prefetch.fetched == 11 and prefetch.ahead_bytes == 8 * 128 * KIB
        for path in order[3:]:
            assert space.fs.read_file(path) == made[path]
        assert prefetch.wait(60) and prefetch.fetched == len(order)


def test_cancel_stops_fetching(
    connected: Filespace, files: Callable[..., dict[str, bytes]], proxy: Any, tmp_path: Path
) -> None:
    made = files(12, size=128 * KIB)
    with reopen(connected, tmp_path / "cache", window=3600) as space:
        prefetch = space.fs.prefetch(list(made), max_mb=0.5)  # four files ahead at most
        _quiet(prefetch)
        prefetch.cancel()
        assert prefetch.wait(60) and prefetch.done
        assert prefetch.fetched == 4
        before = proxy.requests
        for path in list(made)[:6]:  # the reader goes on; nothing more is fetched ahead
            assert space.fs.read_file(path) == made[path]
        assert prefetch.fetched == 4
        assert proxy.requests == before + 2  # only the two files not prefetched


def test_the_cache_bound_holds_whatever_max_mb_says(
    connected: Filespace, files: Callable[..., dict[str, bytes]], tmp_path: Path
) -> None:
    made = files(40, size=128 * KIB)  # 5 MiB through a 2 MiB cache
    cache = tmp_path / "cache"
    with reopen(connected, cache, window=3600, size_mb=2) as space:
        prefetch = space.fs.prefetch(list(made), max_mb=100)  # capped at the cache's size
        for path, data in made.items():
            assert space.fs.read_file(path) == data
            assert block_bytes(cache) <= 2 * 1024 * KIB
        assert prefetch.wait(60), prefetch
        assert prefetch.errors == {}
        settle(space)
        assert block_bytes(cache) <= 2 * 1024 * KIB


@pytest.mark.parametrize("max_mb", [0, -1, True, "1", float("nan"), float("-inf")])
def test_bad_prefetch_arguments_are_refused(connected: Filespace, max_mb: Any) -> None:
    with pytest.raises(ValueError, match="max_mb"):
        connected.fs.prefetch(["/a"], max_mb=max_mb)
    with pytest.raises(TypeError, match="iterable of paths"):
        connected.fs.prefetch("/a")
    with pytest.raises(ValueError, match="path"):
        connected.fs.prefetch(["relative"])


def test_native_files_in_a_remote_store_are_prefetched(
    s3_server: SeaweedS3, bucket: str, proxy: Any, tmp_path: Path
) -> None:
    options = s3_data(s3_server, data_endpoint=proxy_url(proxy))
    block = 64 * KIB
    with filespace.create(
        tmp_path / "space", name="n", block_size=block, data=f"s3://{bucket}/native", **options
    ) as fsp:
        made = {f"/n{number}": os.urandom(3 * block + number) for number in range(4)}
        for path, data in made.items():
            fsp.fs.write_file(path, data)
        location = fsp.location
    cache = tmp_path / "cache"
    with filespace.open(location, cache_dir=cache, cache_size_mb=64) as space:
        prefetch = space.fs.prefetch(list(made))
        assert prefetch.wait(60) and prefetch.errors == {}
        before = proxy.requests
        read_all(space, made)
        assert proxy.requests == before  # every block came from the cache


def test_fsspec_prefetch_and_window(
    connected: Filespace, files: Callable[..., dict[str, bytes]], proxy: Any, tmp_path: Path
) -> None:
    import fsspec

    made = files(4)
    fs = fsspec.filesystem(
        "filespace",
        location=connected.location,
        cache_dir=str(tmp_path / "cache"),
        revalidate_after_s=3600,
        skip_instance_cache=True,
    )
    try:
        prefetch = fs.prefetch([f"filespace://{path}" for path in made])
        assert prefetch.wait(60) and prefetch.fetched == len(made)
        before = proxy.requests
        for path, data in made.items():
            assert fs.cat_file(path) == data
        assert proxy.requests == before
    finally:
        fs.close()


def test_confirmations_are_stamped_in_the_disk_tier(tmp_path: Path) -> None:
    from filespace.io.cache import BlockCache

    namespace = "ab" * 16
    first = BlockCache(tmp_path, 1024 * 1024)
    assert not first.confirmed_within(namespace, 3600)
    now = time.time()
    first.confirmed(namespace, now - 100)
    assert first.confirmed_within(namespace, 3600)
    assert not first.confirmed_within(namespace, 50)
    assert first.flush(10)  # stamps are written by the disk writer
    other = BlockCache(tmp_path, 1024 * 1024)  # another process: the stamp only
    assert other.confirmed_within(namespace, 3600)
    assert not other.confirmed_within(namespace, 50)
    other.confirmed(namespace, now - 200)  # an older answer never replaces a newer one
    assert other.flush(10)
    assert BlockCache(tmp_path, 1024 * 1024).confirmed_within(namespace, 150)
    first.confirmed(namespace, now + 3600)  # from a clock that was ahead: trusted for nothing
    assert first.flush(10)
    assert not BlockCache(tmp_path, 1024 * 1024).confirmed_within(namespace, 3600 * 24)
    assert not BlockCache(None, 0).confirmed_within(namespace, 3600)  # no disk tier
