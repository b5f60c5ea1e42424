"""The block cache's own bookkeeping (``io.cache.BlockCache``), without a server.

Memory bound and recency, failed loads, confirmations and their clock,
streams seen before, a disk that keeps refusing writes, a forked child. The
tiers with a real object behind them are in ``tests/test_cache.py``.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from filespace.io import cache as cache_module
from filespace.io import cachedir
from filespace.io.cache import BlockCache, namespace
from tests import waiting

NS = namespace("store:1:key", "etag", 1000, 100)
OTHER = namespace("store:1:other", "etag", 1000, 100)
HOUR = 3600.0


def data(index: int, length: int = 100) -> memoryview:
    return memoryview(bytes([index]) * length)


def mine(cache: BlockCache, index: int, ns: str = NS) -> bool:
    """Whether a claim of block ``index`` makes the caller load it (it is not in memory)."""
    ((_, load),) = cache.claim([(ns, index)])
    if load:
        cache.abandon((ns, index))
    return load


def fill(cache: BlockCache, index: int, length: int = 100) -> None:
    cache.claim([(NS, index)])
    cache.fill((NS, index), data(index, length))


def test_the_memory_tier_keeps_the_most_recently_used_bytes() -> None:
    cache = BlockCache(None, 0, memory=300)
    assert cache.capacity == 300 and cache.disk is None
    assert BlockCache(None, 10_000).disk is None  # a size without a directory: memory only
    for index in range(3):
        fill(cache, index)
    assert not mine(cache, 0)  # a hit: now the most recent
    fill(cache, 3)
    assert mine(cache, 1) and not mine(cache, 0) and not mine(cache, 2) and not mine(cache, 3)
    fill(cache, 2, 50)  # filled again, smaller: the bytes counted are the new ones
    fill(cache, 4, 150)  # 50 + 150 + 100 (block 3 or 0) fit; the oldest goes
    assert [mine(cache, index) for index in (0, 2, 3, 4)] == [True, False, False, False]
    fill(cache, 5, 301)  # bigger than the whole tier: not kept
    assert mine(cache, 5) and not mine(cache, 4)
    cache.clear_memory()
    assert all(mine(cache, index) for index in range(6))
    for index in range(3):  # the whole bound is free again
        fill(cache, index)
    assert not any(mine(cache, index) for index in range(3))
    whole = BlockCache(None, 0, memory=100)
    fill(whole, 0)  # a block as big as the tier fits
    assert not mine(whole, 0)


def test_one_claim_answers_for_every_key() -> None:
    cache = BlockCache(None, 0)
    fill(cache, 0)
    cache.claim([(NS, 1)])  # under way
    answers = cache.claim([(NS, 0), (NS, 1), (NS, 2)])
    assert [load for _, load in answers] == [False, False, True]
    assert answers[0][0].result(0) == data(0)
    cache.close()  # (no directory leased: nothing to let go)


def test_a_failed_load_reaches_every_reader_and_can_be_tried_again() -> None:
    cache = BlockCache(None, 0)
    ((first, load),) = cache.claim([(NS, 1)])
    ((second, waits),) = cache.claim([(NS, 1)])
    assert load and not waits
    problem = OSError("gone")
    cache.fail((NS, 1), problem)
    for future in (first, second):
        with pytest.raises(OSError, match=r"^gone$"):
            future.result(0)
    assert mine(cache, 1)
    cache.fail((NS, 2), problem)  # never claimed: nothing to tell


def test_confirmations_are_kept_newest_first_and_distrusted_from_the_future(
    tmp_path: Path,
) -> None:
    # Times an hour apart: how long the test itself takes does not matter.
    cache = BlockCache(tmp_path, 10_000)
    now = time.time()
    assert not cache.confirmed_within(NS, HOUR)
    just_now = namespace("just", "now", 1, 1)
    cache.confirmed(just_now, time.time())
    assert cache.confirmed_within(just_now, HOUR)  # (within the clock's slack of now)
    cache.confirmed(NS, now - 10)
    cache.confirmed(NS, now - 2 * HOUR)  # older: does not replace it
    assert cache.confirmed_within(NS, HOUR) and not cache.confirmed_within(NS, 5)
    assert not cache.confirmed_within(OTHER, HOUR)
    cache.confirmed(OTHER, now + HOUR)  # the clock moved back since: trust nothing
    assert not cache.confirmed_within(OTHER, 3 * HOUR)
    assert cache.flush(10)
    fill(cache, 7)  # blocks are written after stamps as before
    assert cache.flush(10) and cache.on_disk((NS, 7), 100)
    # Another process sharing the directory sees the stamps.
    later = BlockCache(tmp_path, 10_000)
    assert later.confirmed_within(NS, HOUR) and not later.confirmed_within(NS, 5)
    assert not BlockCache(None, 0).confirmed_within(NS, HOUR)


def test_a_newer_stamp_from_another_process_is_believed(tmp_path: Path) -> None:
    now = time.time()
    ours = BlockCache(tmp_path, 10_000)
    ours.confirmed(NS, now - 2 * HOUR)
    assert ours.flush(10)  # (stamped before theirs: see DiskTier.stamp)
    theirs = BlockCache(tmp_path, 10_000)
    theirs.confirmed(NS, now - 1)
    assert theirs.flush(10)
    assert ours.confirmed_within(NS, HOUR)


def test_streams_seen_before_are_remembered_here_and_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = BlockCache(tmp_path, 10_000)
    assert not cache.streamed_before(NS)
    assert cache.streamed_before(NS)
    assert BlockCache(tmp_path, 10_000).streamed_before(NS)  # another process
    monkeypatch.setattr(cache_module, "_STREAMS_REMEMBERED", 2)
    memory = BlockCache(None, 0)
    third = namespace("a", "b", 1, 1)
    assert not memory.streamed_before(NS) and not memory.streamed_before(OTHER)
    assert memory.streamed_before(NS)  # two are remembered; NS is now the latest
    assert not memory.streamed_before(third)  # OTHER, the oldest, makes room
    assert memory.streamed_before(NS) and not memory.streamed_before(OTHER)


def test_confirmations_of_the_most_recent_objects_are_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cache_module, "_STREAMS_REMEMBERED", 2)
    memory = BlockCache(None, 0)
    third = namespace("a", "b", 1, 1)
    for ns in (NS, OTHER):
        memory.confirmed(ns, time.time())
    assert memory.confirmed_within(NS, HOUR) and memory.confirmed_within(OTHER, HOUR)
    memory.confirmed(third, time.time())  # NS, the oldest, makes room
    assert [memory.confirmed_within(ns, HOUR) for ns in (NS, OTHER, third)] == [False, True, True]


def test_namespaces_take_any_text(tmp_path: Path) -> None:
    # A name with a lone surrogate (as os.fsdecode makes of bad bytes) still has one.
    first, second = namespace("\udc80", "e", 1, 1), namespace("\udc81", "e", 1, 1)
    assert re.fullmatch("[0-9a-f]{32}", first) and first != second


def test_a_filespace_cache_leases_its_directory(tmp_path: Path) -> None:
    cache = BlockCache.for_filespace("the-id", tmp_path, 1, location="sqlite:///x.db")
    assert cache.disk is not None and cache.capacity == 1024 * 1024  # 1 MB is a disk tier
    entry = cachedir.describe(tmp_path / "the-id")
    assert (entry.location, entry.budget_mb, entry.in_use) == ("sqlite:///x.db", 1, True)
    cache.close()
    cache.close()
    assert not cachedir.describe(tmp_path / "the-id").in_use  # it may be pruned now
    BlockCache.for_filespace("other-id", tmp_path, 2).close()
    assert cachedir.describe(tmp_path / "other-id").location == ""


def test_a_refused_cache_directory_is_named_and_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    roots = [tmp_path / "a", tmp_path / "b"]
    with caplog.at_level(logging.WARNING, logger="filespace.io.cachedir"):
        for root in roots:
            root.mkdir(mode=0o700)
            root.chmod(0o777)  # others may write: refused
            cache = BlockCache.for_filespace("the-id", root, 5)
            assert cache.disk is None and cache.capacity == cache_module.DEFAULT_MEMORY
    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == 2  # once per directory
    for root, message in zip(roots, warned, strict=True):
        assert message.startswith(f"{root}: cache directory refused (")


def test_a_disk_that_keeps_refusing_writes_is_given_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = BlockCache(tmp_path / "blocks", 10_000)
    assert cache.disk is not None and cache.capacity == 10_000
    (tmp_path / "blocks").mkdir(exist_ok=True)
    (tmp_path / "blocks" / NS[:2]).write_bytes(b"")  # a file where its folder goes
    with caplog.at_level(logging.WARNING, logger="filespace.io.cachedir"):
        for index in range(2):
            fill(cache, index)
            assert cache.flush(10)
        assert cache.disk is not None  # two refusals: still trying
        fill(cache, 2)
        assert cache.flush(10)
    assert cache.disk is None and cache.capacity == cache_module.DEFAULT_MEMORY
    assert f"{tmp_path / 'blocks'}: the disk cache stopped (Not a directory)" in caplog.text
    fill(cache, 3)  # from memory from now on
    assert not mine(cache, 3) and cache.read_disk((NS, 3), 100) is None
    assert not cache.on_disk((NS, 0), 100)


def test_a_write_that_lands_resets_the_count_of_refusals(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path / "blocks", 10_000)
    blocked = tmp_path / "blocks" / NS[:2]
    blocked.parent.mkdir(exist_ok=True)
    for round_ in range(3):
        shutil.rmtree(blocked, ignore_errors=True)  # (the last round's block)
        blocked.write_bytes(b"")
        for index in range(2):
            fill(cache, 10 * round_ + index)
            assert cache.flush(10)
        blocked.unlink()
        fill(cache, 10 * round_ + 5)
        assert cache.flush(10)
    assert cache.disk is not None and cache.on_disk((NS, 25), 100)
    assert not cache.on_disk((NS, 24), 100) and not cache.on_disk((NS, 25), 99)


def _claim_in_child(cache: BlockCache, queue: multiprocessing.Queue[bool]) -> None:
    ((_, load),) = cache.claim([(NS, 1)])
    queue.put(load)


def test_a_forked_child_loads_what_its_parent_was_loading(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, 10_000)
    cache.claim([(NS, 1)])  # the parent's load under way: no thread of it in the child
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[bool] = context.Queue()
    child = context.Process(target=_claim_in_child, args=(cache, queue))
    child.start()
    assert queue.get(timeout=30) is True
    child.join(30)
    assert child.exitcode == 0
    cache.abandon((NS, 1))


def _writers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "filespace-cache-writer"]


def test_blocks_skip_a_disk_that_falls_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "_MAX_PENDING", 250)  # two and a half blocks
    cache = BlockCache(tmp_path, 10_000)
    assert cache.disk is not None
    others = set(_writers())  # (other caches' writers, idling out)
    # While the disk tier's ledger is locked no write can finish: the disk "falls behind".
    with cache.disk._ledger():
        for index in range(4):
            fill(cache, index)
        assert cache.dropped == 2  # blocks 2 and 3 would have passed the bound
        (writer,) = set(_writers()) - others
        assert writer.daemon  # it never holds a process open
        assert not cache.flush(0.05)  # the writer is busy with block 0
    assert cache.flush(10) and cache.dropped == 2
    assert [cache.on_disk((NS, index), 100) for index in range(4)] == [True, True, False, False]
    with cache.disk._ledger():  # all written: the bound is free again
        for index in (4, 5):
            fill(cache, index)
    assert cache.flush(10) and cache.dropped == 2 and cache.on_disk((NS, 5), 100)


def test_an_idle_writer_ends_and_the_next_block_starts_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "_WRITER_IDLE_S", 0.01)
    cache = BlockCache(tmp_path, 10_000)
    before = set(_writers())
    fill(cache, 0)
    assert cache.flush(10)
    waiting.until(lambda: set(_writers()) <= before, "the idle writer to end")
    fill(cache, 1)
    assert cache.flush(10) and cache.on_disk((NS, 1), 100)
