"""The engine contract, run unchanged against every engine."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from filespace.meta import Engine, open_engine
from filespace.meta.engine import (
    NameTaken,
    NoSuchEntry,
    NoSuchStore,
    NotEmpty,
    StoreBusy,
    StoreLimit,
    StoreTaken,
    WouldCycle,
)
from filespace.meta.records import ROOT_ID, BlockRecord, LinkRow, NewLink, StoreRecord
from tests.fsfixtures import postgres_schema_url


@pytest.fixture
def engine(engine_name: str, tmp_path: Path) -> Iterator[Engine]:
    if engine_name == "sqlite":
        url = f"sqlite://{tmp_path}/meta.db"
        opened = open_engine(url)
        opened.initialize({"filespace_id": "e", "format_version": "9"}, time.time_ns())
        yield opened
        opened.close()
        return
    with postgres_schema_url() as url:
        opened = open_engine(url)
        opened.initialize({"filespace_id": "e", "format_version": "9"}, time.time_ns())
        yield opened
        opened.close()


def _store(name: str) -> StoreRecord:
    return StoreRecord(
        id=0,
        uid=f"uid-{name}",
        name=name,
        kind="S3DataStore",
        bucket="bucket-a",
        region="us-east-1",
        endpoint="",
        virtual_addressing=False,
        url_expiration_minutes=60,
        access_key="AK",
        sealed_secret=b"\x01sealed",
        key_id="k",
        rekey_state="no_rekey",
        created_ns=1,
    )


def test_settings_and_initialize_once(engine: Engine) -> None:
    assert engine.exists()
    assert engine.settings()["filespace_id"] == "e"
    engine.set_setting("x", "1")
    engine.set_setting("x", "2")
    assert engine.settings()["x"] == "2"
    with pytest.raises(NameTaken):
        engine.initialize({"filespace_id": "again"}, 0)
    engine.migrate()
    assert engine.settings()["filespace_id"] == "e"


def test_namespace_operations(engine: Engine) -> None:
    now = time.time_ns()
    a = engine.create(ROOT_ID, "a", "dir", now)
    b = engine.create(a.id, "b", "dir", now)
    f = engine.create(b.id, "f", "file", now)
    with pytest.raises(NameTaken):
        engine.create(a.id, "b", "file", now)
    with pytest.raises(NoSuchEntry):
        engine.create(f.id, "x", "file", now)  # parent is not a directory
    with pytest.raises(NoSuchEntry):
        engine.create(999_999, "x", "file", now)
    assert engine.lookup(a.id, "b") == b
    assert [child.name for child in engine.children(a.id)] == ["b"]
    assert engine.path_of(f.id) == "/a/b/f"
    assert engine.paths_of([f.id, b.id, ROOT_ID]) == ["/a/b/f", "/a/b", "/"]
    with pytest.raises(WouldCycle):
        engine.rename(a.id, b.id, "a", now)
    with pytest.raises(WouldCycle):
        engine.rename(a.id, a.id, "self", now)
    engine.rename(f.id, ROOT_ID, "g", now)
    with pytest.raises(NameTaken):
        engine.rename(b.id, ROOT_ID, "g", now)
    assert engine.path_of(f.id) == "/g"
    with pytest.raises(NotEmpty):
        engine.remove(a.id)
    assert engine.remove(f.id).entries == 1
    assert engine.remove_tree(a.id).entries == 2
    assert engine.get(a.id) is None and engine.get(b.id) is None
    counters = engine.counters()
    assert counters.dirs == 0 and counters.files == 0


def test_counters_stay_exact(engine: Engine) -> None:
    now = time.time_ns()
    store = engine.add_store(_store("s"), limit=10)
    d = engine.create(ROOT_ID, "d", "dir", now)
    for index in range(5):
        engine.create(
            d.id,
            f"l{index}",
            "file",
            now,
            link=NewLink(size=10, checksum="e", data_store_id=store.id, object_key=f"k{index}"),
        )
    native = engine.create(d.id, "n", "file", now)
    engine.commit_data(native.id, 7, 1 << 62, [BlockRecord(0, "blockkey0", 7)], now)
    engine.create(d.id, "s", "link", now, target="/d")
    counters = engine.counters()
    assert counters.files == 6 and counters.dirs == 1 and counters.symlinks == 1
    assert counters.external_files == 5 and counters.external_size == 50
    assert counters.data_size == 7 and counters.storage_size == 7
    assert counters.entries_size == 57
    assert engine.count_links(store.id) == (5, 50)
    first = engine.lookup(d.id, "l0")
    assert first is not None
    engine.update_link(first.id, size=25, checksum="e2", url=None, now_ns=now)
    assert engine.count_links(store.id) == (5, 65)
    assert engine.counters().external_size == 65
    removed = engine.remove_tree(d.id)
    assert removed.entries == 8 and removed.block_keys == ["blockkey0"]
    assert engine.count_links(store.id) == (0, 0)
    assert {k: v for k, v in engine.counters()._asdict().items() if v} == {}


def _all_at_once(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``count`` threads released together; their results in order."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as exc:  # handed back to the test to assert on
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_racing_writers_count_each_change_once(engine: Engine) -> None:
    # On PostgreSQL (READ COMMITTED) clients racing on the same rows all read
    # them before any commits; the counters must still see each change once.
    now = time.time_ns()
    store = engine.add_store(_store("s"), limit=10)
    d = engine.create(ROOT_ID, "d", "dir", now)
    rows = [(d.id, f"f{i:04d}", f"k{i}", 10, "e") for i in range(3000)]
    for _ in range(2):
        assert engine.create_links(store.id, rows, now) == []
        swept = _all_at_once(3, lambda _: engine.sweep_links(store.id, d.id, now + 1))
        assert sum(int(str(n)) for n in swept) == 3000
        assert engine.count_links(store.id) == (0, 0)
        assert engine.counters().external_files == 0

    assert engine.create_links(store.id, rows[:200], now) == []
    ids = [entry.id for entry in engine.children(d.id)]

    def remove_all(_: int) -> int:
        removed = 0
        for entry_id in ids:
            with contextlib.suppress(NoSuchEntry):  # another thread removed it first
                removed += engine.remove(entry_id).entries
        return removed

    assert sum(int(str(n)) for n in _all_at_once(3, remove_all)) == 200
    assert engine.count_links(store.id) == (0, 0)
    assert engine.counters().external_size == 0

    link = engine.create(
        d.id, "one", "file", now, link=NewLink(10, "e", data_store_id=store.id, object_key="k")
    )
    sizes = _all_at_once(
        4,
        lambda i: [
            engine.update_link(link.id, size=100 * i + n, checksum="e", url=None, now_ns=now)
            for n in range(30)
        ],
    )
    assert not [result for result in sizes if isinstance(result, Exception)]
    final = engine.get(link.id)
    assert final is not None
    assert engine.count_links(store.id) == (1, final.size)
    assert engine.counters().external_size == final.size


def test_short_lived_threads_leave_no_connections_behind(engine: Engine) -> None:
    # A FUSE mount calls in on threads Python did not start, and to Python each
    # call is a new thread: connections must be reused, not opened per thread.
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    engine.get(ROOT_ID)
    before = open_files()
    for _ in range(300):
        thread = threading.Thread(target=engine.get, args=(ROOT_ID,))
        thread.start()
        thread.join()
    assert open_files() - before < 10


def test_blocks_replace_and_drop(engine: Engine) -> None:
    now = time.time_ns()
    f = engine.create(ROOT_ID, "f", "file", now)
    blocks = [BlockRecord(i, f"key{i}", 100) for i in range(3)]
    assert engine.commit_data(f.id, 300, 1 << 62, blocks, now) == []
    assert engine.blocks(f.id) == blocks
    gone = engine.commit_data(f.id, 150, 2, [BlockRecord(1, "new1", 50)], now)
    assert sorted(gone) == ["key1", "key2"]
    assert engine.blocks(f.id) == [BlockRecord(0, "key0", 100), BlockRecord(1, "new1", 50)]
    assert engine.block_keys() == {"key0", "new1"}
    assert engine.counters().storage_size == 150
    engine.remove(f.id)
    with pytest.raises(NoSuchEntry):
        engine.commit_data(f.id, 1, 1, [], now)


def test_stores(engine: Engine) -> None:
    store = engine.add_store(_store("one"), limit=2)
    assert store.id > 0 and engine.store("one") == store
    assert engine.store_by_id(store.id) == store
    with pytest.raises(StoreTaken):
        engine.add_store(_store("one"), limit=2)
    engine.add_store(_store("two"), limit=2)
    with pytest.raises(StoreLimit):
        engine.add_store(_store("three"), limit=2)
    assert [s.name for s in engine.stores()] == ["one", "two"]
    updated = engine.update_store("one", access_key="AK2", sealed_secret=b"\x01new")
    assert updated.access_key == "AK2" and updated.sealed_secret == b"\x01new"
    with pytest.raises(NoSuchStore):
        engine.update_store("missing", access_key="x")
    link = NewLink(size=1, checksum="e", data_store_id=store.id, object_key="k")
    entry = engine.create(ROOT_ID, "l", "file", 0, link=link)
    with pytest.raises(StoreBusy) as busy:
        engine.remove_store("one")
    assert busy.value.count == 1
    with pytest.raises(NoSuchStore):
        engine.create(ROOT_ID, "m", "file", 0, link=NewLink(1, "e", 987_654, "k"))
    engine.remove(entry.id)
    engine.remove_store("one")
    with pytest.raises(NoSuchStore):
        engine.remove_store("one")


def test_links_page_is_keyset_ordered(engine: Engine) -> None:
    store = engine.add_store(_store("s"), limit=10)
    ids = []
    for index in range(7):
        link = NewLink(size=1, checksum="e", data_store_id=store.id, object_key=f"k{index}")
        ids.append(engine.create(ROOT_ID, f"f{index}", "file", 0, link=link).id)
    page = engine.links_page(store.id, 0, 3)
    assert page.entry_ids == ids[:3] and page.has_more
    page = engine.links_page(store.id, ids[2], 3)
    assert page.entry_ids == ids[3:6] and page.has_more
    engine.remove(ids[6])
    page = engine.links_page(store.id, ids[5], 3)
    assert page.entry_ids == [] and not page.has_more


def test_create_links_reports_taken_and_missing_and_links_the_rest(engine: Engine) -> None:
    now = time.time_ns()
    store = engine.add_store(_store("s"), limit=10)
    d = engine.create(ROOT_ID, "d", "dir", now)
    engine.create(d.id, "taken", "file", now)
    # Names that need escaping in any text protocol must arrive unchanged.
    odd = "tab\there, new\nline, back\\slash, \u00e9t\u00e9 \U0001f600"
    rows = [
        (d.id, "a", "k/a", 10, "e1"),
        (d.id, "taken", "k/t", 20, "e2"),
        (987_654, "b", "k/b", 30, "e3"),
        (d.id, odd, "key\twith\\odd\nbytes", 40, "e4"),
        (d.id, "a", "k/a-again", 50, "e5"),  # the same path twice in one batch
    ]
    failures = engine.create_links(store.id, rows, now)
    assert failures == [(1, NameTaken), (2, NoSuchEntry), (4, NameTaken)]
    linked = engine.lookup_many(d.id, ["a", odd])
    assert set(linked) == {"a", odd}
    link = engine.get(linked[odd].id)
    assert link is not None and link.link is not None
    assert link.link.object_key == "key\twith\\odd\nbytes" and link.link.size == 40
    assert engine.count_links(store.id) == (2, 50)
    assert engine.counters().external_files == 2
    with pytest.raises(NoSuchStore):
        engine.create_links(987_654, [(d.id, "c", "k/c", 1, "e")], now)
    assert engine.count_links(store.id) == (2, 50)


def test_create_links_of_many_rows_land_whole(engine: Engine) -> None:
    now = time.time_ns()
    store = engine.add_store(_store("s"), limit=10)
    dirs = [engine.create(ROOT_ID, f"d{i}", "dir", now).id for i in range(7)]
    rows = [(dirs[i % 7], f"f{i:05d}", f"k{i}", i, "e") for i in range(3000)]
    assert engine.create_links(store.id, rows, now) == []
    assert engine.count_links(store.id) == (3000, sum(range(3000)))
    # One taken name sends the batch down the careful path: the rest still land.
    again = [(dirs[0], "f00000", "k", 1, "e")] + [
        (dirs[1], f"g{i}", f"g{i}", 1, "e") for i in range(500)
    ]
    assert engine.create_links(store.id, again, now) == [(0, NameTaken)]
    assert engine.count_links(store.id) == (3500, sum(range(3000)) + 500)


def test_postgres_copy_of_links_into_a_vanished_parent_asks_for_a_careful_retry() -> None:
    # Between the batch's check of its parents and its COPY, another client may
    # remove a parent: the COPY fails on the parent's foreign key, and that must
    # read as "redo this batch row by row" (then: missing parent), not as a
    # removed data store.
    from filespace.meta.sql import SqlEngine
    from filespace.meta.txn import transaction

    with postgres_schema_url() as url:
        engine = open_engine(url)
        assert isinstance(engine, SqlEngine)
        try:
            engine.initialize({"filespace_id": "e", "format_version": "9"}, time.time_ns())
            store = engine.add_store(_store("s"), limit=10)
            with transaction(engine.dialect, write=True) as tx:
                rows = [LinkRow(987_654, "f", "k", 1, "e")]
                assert engine.dialect.insert_links(tx.cursor, store.id, rows, 0, None) == 0
            with transaction(engine.dialect, write=True) as tx:
                rows = [LinkRow(ROOT_ID, "f", "k", 1, "e"), LinkRow(ROOT_ID, "f", "k2", 1, "e")]
                assert engine.dialect.insert_links(tx.cursor, store.id, rows, 0, None) == 0
            assert engine.lookup(ROOT_ID, "f") is None  # nothing of either batch landed
        finally:
            engine.close()
