"""The block cache: tiers, identity, damage on disk, the size bound, sharing
between threads and processes, and where it lives."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import Filespace
from filespace.io.cache import BlockCache, Cancelled, cache_root, namespace
from filespace.io.diskcache import HEADER_SIZE, DiskTier, scan_settled
from filespace.io.prefetch import BLOCK_SIZE

B = BLOCK_SIZE
NS = namespace("store:1:key", "etag", 10 * B, B)


def block(index: int, length: int = B, ns: str = NS) -> memoryview:
    """Deterministic bytes for a block, so any reader can check what it got."""
    seed = f"{ns}.{index}".encode()
    return memoryview((seed * (length // len(seed) + 1))[:length])


def block_files(directory: Path) -> list[Path]:
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file()
        and not path.name.startswith(".")
        and not path.name.endswith((".seen", ".ok"))  # markers: empty
        and path.name != "filespace.json"  # the cache directory's marker
    )


def usage(directory: Path) -> int:
    """Bytes of block files now (the writer may evict some while we look)."""
    total = 0
    for path in block_files(directory):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


def settle(directory: Path, count: int, timeout: float = 20) -> None:
    """Wait until the background writer has put ``count`` block files on disk."""
    deadline = time.monotonic() + timeout
    while len(block_files(directory)) < count:
        assert time.monotonic() < deadline, f"only {len(block_files(directory))} of {count}"
        time.sleep(0.05)


# -- the disk tier ---------------------------------------------------------------------
def test_disk_round_trip_and_identity(tmp_path: Path) -> None:
    disk = DiskTier(tmp_path, 10 * B)
    assert disk.get(NS, 0, B) is None
    assert disk.put(NS, 0, block(0))
    assert disk.get(NS, 0, B) == block(0)
    assert disk.get(NS, 0, B - 1) is None  # another length: not this block
    other = namespace("store:1:key", "etag2", 10 * B, B)  # the object changed
    assert other != NS
    assert disk.get(other, 0, B) is None
    assert namespace("store:1:key", "etag", 10 * B, B) == NS


@pytest.mark.parametrize("damage", ["flip data", "flip header", "truncate", "extend", "empty"])
def test_damaged_files_are_misses_and_removed(tmp_path: Path, damage: str) -> None:
    disk = DiskTier(tmp_path, 10 * B)
    disk.put(NS, 3, block(3))
    (path,) = block_files(tmp_path)
    raw = bytearray(path.read_bytes())
    if damage == "flip data":
        raw[HEADER_SIZE + 1000] ^= 0x40
    elif damage == "flip header":
        raw[20] ^= 0x01
    elif damage == "truncate":
        raw = raw[: len(raw) - 10]
    elif damage == "extend":
        raw += b"\0"
    else:
        raw = bytearray()
    path.write_bytes(raw)
    assert disk.get(NS, 3, B) is None
    assert not path.exists()


def test_eviction_keeps_the_bound_and_recent_blocks(tmp_path: Path) -> None:
    capacity = 8 * (B + HEADER_SIZE)
    disk = DiskTier(tmp_path, capacity)
    # Eviction goes by mtime. Each new file is dated one second after the one
    # before, all long ago, instead of waiting for the clock to tell them apart;
    # a hit dates a file now, so block 0 is always the most recently used.
    long_ago = time.time() - 10**6
    for index in range(30):
        assert disk.put(NS, index, block(index))
        os.utime(disk._path(NS, index), (long_ago + index, long_ago + index))
        assert usage(tmp_path) <= capacity
        if index >= 2:
            assert disk.get(NS, 0, B) == block(0)  # block 0 stays in use
    assert disk.get(NS, 0, B) == block(0)
    assert disk.get(NS, 1, B) is None  # unused early blocks went first
    assert disk.get(NS, 29, B) == block(29)


def test_a_hit_redates_a_file_only_when_it_was_not_used_in_the_last_minute(
    tmp_path: Path,
) -> None:
    disk = DiskTier(tmp_path, 8 * (B + HEADER_SIZE))
    assert disk.put(NS, 0, block(0)) and disk.put(NS, 1, block(1))
    recent, old = time.time() - 30, time.time() - 3600
    os.utime(disk._path(NS, 0), (recent, recent))
    os.utime(disk._path(NS, 1), (old, old))
    assert disk.get(NS, 0, B) == block(0) and disk.get(NS, 1, B) == block(1)
    assert os.stat(disk._path(NS, 0)).st_mtime == pytest.approx(recent, abs=0.01)  # left
    assert time.time() - os.stat(disk._path(NS, 1)).st_mtime < 60  # now the newest


def _hammer(directory: str, worker: int, capacity: int, rounds: int) -> tuple[int, int]:
    """In a child process: put and get blocks in a shared directory.

    Counts bad reads, and gives the most bytes of block files seen after a put.
    """
    import random

    disk = DiskTier(Path(directory), capacity)
    rng = random.Random(worker)
    bad = largest = 0
    for _ in range(rounds):
        index = rng.randrange(40)
        if rng.random() < 0.5:
            disk.put(NS, index, block(index))
            # (Counted while no writer changes the directory: a plain walk may
            # count an evicted file and the one written after it.)
            largest = max(largest, sum(size for _, size, _ in scan_settled(Path(directory))))
        else:
            got = disk.get(NS, index, B)
            bad += got is not None and got != block(index)
    return bad, largest


def test_processes_share_a_directory_within_its_bound(tmp_path: Path) -> None:
    capacity = 12 * (B + HEADER_SIZE)
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        seen = pool.starmap(
            _hammer, [(str(tmp_path), worker, capacity, 150) for worker in range(3)]
        )
    assert [bad for bad, _ in seen] == [0, 0, 0]
    # Every writer sees the others' blocks (the ledger): never over, not even for a moment.
    assert max(largest for _, largest in seen) <= capacity
    assert usage(tmp_path) <= capacity
    assert DiskTier(tmp_path, capacity).trim() == usage(tmp_path)


def test_writers_that_do_not_see_each_other_stay_within_the_bound(tmp_path: Path) -> None:
    # Eight tiers on one directory, as eight processes would have, taking
    # turns: each must count what the others wrote since it last looked.
    capacity = 64 * (B + HEADER_SIZE)
    tiers = [DiskTier(tmp_path, capacity) for _ in range(8)]
    for index in range(200):
        assert tiers[index % len(tiers)].put(NS, index, block(index))
        assert usage(tmp_path) <= capacity, f"over the bound after {index + 1} blocks"
    assert usage(tmp_path) >= capacity // 2  # (evicting only what it must)


# -- memory, single flight, the writer ---------------------------------------------------
def test_single_flight_and_tiers(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, 100 * B, memory=2 * B)
    owners: list[bool] = []
    start = threading.Barrier(8)

    def claim() -> None:
        start.wait()
        ((_, mine),) = cache.claim([(NS, 5)])
        owners.append(mine)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(owners) == [False] * 7 + [True]
    ((waiting, mine),) = cache.claim([(NS, 5)])
    assert not mine
    cache.fill((NS, 5), block(5))
    assert waiting.result(1) == block(5)
    ((hit, mine),) = cache.claim([(NS, 5)])  # memory hit
    assert hit.result(0) == block(5)
    assert not mine
    assert cache.flush(10)
    assert cache.read_disk((NS, 5), B) == block(5)
    for index in (6, 7, 8):  # the memory tier holds two blocks
        cache.claim([(NS, index)])
        cache.fill((NS, index), block(index))
    ((again, mine),) = cache.claim([(NS, 5)])
    assert mine  # evicted from memory: the caller loads it (from disk)
    cache.abandon((NS, 5))
    with pytest.raises(Cancelled):
        again.result(1)


def test_threads_that_fill_a_lagging_disk_tier_write_to_it_rather_than_drop_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filespace.io import cache as caches

    monkeypatch.setattr(caches, "_HELP_PENDING", 2 * B)
    monkeypatch.setattr(caches, "_MAX_PENDING", 4 * B)
    cache = BlockCache(tmp_path, 100 * B, memory=2 * B)
    # The writer thread gets no turn until the end (as in a process busy reading).
    writer_may_go = threading.Event()
    put_many = DiskTier.put_many

    def held_writer(self: DiskTier, blocks: Any) -> Any:
        if threading.current_thread().name == "filespace-cache-writer":
            assert writer_may_go.wait(60)
        return put_many(self, blocks)

    monkeypatch.setattr(DiskTier, "put_many", held_writer)
    count = 40
    for index in range(count):
        ((_, mine),) = cache.claim([(NS, index)])
        assert mine
        cache.fill((NS, index), block(index))
    assert cache.dropped == 0  # (the writer has not written one yet)
    # A stream's blocks (not kept in memory) never wait: past the bound they skip the disk.
    stream = namespace("store:1:big", "etag", 100 * B, B)
    for index in range(count):
        ((_, mine),) = cache.claim([(stream, index)])
        cache.fill((stream, index), block(index, ns=stream), memory=False)
    assert cache.dropped > 0
    writer_may_go.set()
    assert cache.flush(60)
    assert all(cache.read_disk((NS, index), B) == block(index) for index in range(count))


def test_no_disk_tier_when_size_is_zero(tmp_path: Path) -> None:
    cache = BlockCache.for_filespace("fs-id", tmp_path, 0)
    assert cache.disk is None
    cache.claim([(NS, 0)])
    cache.fill((NS, 0), block(0))
    assert cache.flush(1)
    assert not list(tmp_path.iterdir())


def test_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FILESPACE_CACHE_DIR", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv("FILESPACE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "filespace"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "filespace"
    cache = BlockCache.for_filespace("the-id", tmp_path / "c", 5)
    assert cache.disk is not None
    assert cache.disk.directory.parent == tmp_path / "c" / "the-id"
    assert cache.disk.capacity == 5 * 1024 * 1024


# -- through filespace.open --------------------------------------------------------------
@pytest.fixture
def linked(connected: Filespace, s3_admin: Any, bucket: str) -> tuple[Filespace, bytes]:
    data = os.urandom(24 * B + 5)
    s3_admin.put_object(Bucket=bucket, Key="c.bin", Body=data)
    connected.connect.link_file("/c.bin", "store", "c.bin")
    return connected, data


def reopen(fsp: Filespace, cache: Path, size_mb: int = 1024) -> Filespace:
    return filespace.open(fsp.location, cache_dir=cache, cache_size_mb=size_mb)


def test_default_cache_dir_is_per_filespace(
    linked: tuple[Filespace, bytes], isolated_env: Path
) -> None:
    fsp, data = linked
    assert fsp.fs.read_file("/c.bin") == data
    root = isolated_env / "cache" / fsp.id  # FILESPACE_CACHE_DIR, then the filespace id
    settle(root, 25)


def test_corrupt_cache_files_are_refetched(linked: tuple[Filespace, bytes], tmp_path: Path) -> None:
    fsp, data = linked
    cache = tmp_path / "cache"
    with reopen(fsp, cache) as first:
        assert first.fs.read_file("/c.bin") == data
        settle(cache, 25)
    files = block_files(cache)
    flipped, cut = files[3], files[7]
    raw = bytearray(flipped.read_bytes())
    raw[HEADER_SIZE + 77] ^= 0xFF
    flipped.write_bytes(raw)
    cut.write_bytes(cut.read_bytes()[:1000])
    with reopen(fsp, cache) as second:  # a new memory tier: blocks come from disk
        assert second.fs.read_file("/c.bin") == data
        with second.fs.open("/c.bin", "rb") as handle:
            for offset in range(0, len(data), B):  # random access too
                handle.seek(offset + 11)
                assert handle.read(100) == data[offset + 11 : offset + 111]
    # The damaged files were replaced with good ones.
    settle(cache, 25)
    assert len(flipped.read_bytes()) == HEADER_SIZE + B
    assert len(cut.read_bytes()) == HEADER_SIZE + B


def test_reading_more_than_the_cache_keeps_it_bounded(
    linked: tuple[Filespace, bytes], tmp_path: Path
) -> None:
    fsp, data = linked
    cache = tmp_path / "cache"
    bound = 2 * 1024 * 1024  # 2 MiB for a 6 MiB file
    with reopen(fsp, cache, size_mb=2) as small:
        for _ in range(2):
            assert small.fs.read_file("/c.bin") == data
            with small.fs.open("/c.bin", "rb") as handle:
                for offset in range(0, len(data), 3 * B):
                    handle.seek(offset)
                    assert handle.read(10) == data[offset : offset + 10]
            assert usage(cache) <= bound
        assert small.fs._cache.flush(60)  # type: ignore[attr-defined]  # all written now
        assert usage(cache) <= bound
    assert usage(cache) > bound // 2  # it was used


def test_cache_size_zero_writes_nothing(linked: tuple[Filespace, bytes], tmp_path: Path) -> None:
    fsp, data = linked
    cache = tmp_path / "cache"
    with reopen(fsp, cache, size_mb=0) as nocache:
        assert nocache.fs.read_file("/c.bin") == data
        with nocache.fs.open("/c.bin", "rb") as handle:
            handle.seek(5 * B)
            assert handle.read(10) == data[5 * B : 5 * B + 10]
        assert nocache.fs._cache.flush(60)  # type: ignore[attr-defined]  # nothing queued
    assert not cache.exists() or not block_files(cache)


def test_streams_go_to_disk_from_their_second_pass(
    connected: Filespace, s3_server: Any, s3_admin: Any, bucket: str, tmp_path: Path
) -> None:
    from tests.faultproxy import FaultProxy
    from tests.fsfixtures import store_config

    proxy = FaultProxy(s3_server.endpoint, (), delay_s=0.01).start()  # a far server
    try:
        data = os.urandom(40 * B)  # over REQUEST_SIZE: a stream, not a small file
        etag = s3_admin.put_object(Bucket=bucket, Key="far", Body=data)["ETag"].strip('"')
        connected.connect.add_data_store(
            "far", store_config(s3_server, bucket, endpoint=proxy.endpoint)
        )
        connected.connect.link_file("/far", "far", "far", size=len(data), checksum=etag)
        cache = tmp_path / "cache"
        with reopen(connected, cache) as space:
            assert space.fs.read_file("/far") == data  # first pass: nothing written
            assert space.fs._cache.flush(10)  # type: ignore[attr-defined]
            assert block_files(cache) == []
            assert space.fs.read_file("/far") == data  # second pass: admitted
            settle(cache, 40)
        with reopen(connected, cache) as space:  # another process would see the same
            assert space.fs.read_file("/far") == data
    finally:
        proxy.stop()


def test_cache_info_counts_blocks_not_markers_or_stamps(tmp_path: Path) -> None:
    from filespace.io import cachedir

    directory = tmp_path / "some-id"
    disk = DiskTier(directory / cachedir.BLOCKS, 10 * (B + HEADER_SIZE))
    for index in range(2):
        assert disk.put(NS, index, block(index))
    disk.mark(NS)  # streamed before
    disk.stamp(NS, time.time())  # confirmed by the server
    described = cachedir.describe(directory)
    assert (described.blocks, described.size) == (2, 2 * (B + HEADER_SIZE))
