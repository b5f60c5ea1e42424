"""The engine contract, run unchanged against every engine."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from filespace.errors import EngineError
from filespace.meta import Engine, lifecycle, open_engine
from filespace.meta.counters import bump
from filespace.meta.engine import (
    IsDir,
    NameTaken,
    NoSuchEntry,
    NoSuchStore,
    NotDir,
    NotEmpty,
    StoreBusy,
    StoreLimit,
    StoreTaken,
    WouldCycle,
)
from filespace.meta.postgres import _COUNTER_SHARDS
from filespace.meta.records import ROOT_ID, BlockRecord, LinkRow, NewLink, Removed, StoreRecord
from filespace.meta.sql import SqlEngine
from filespace.meta.txn import Collision, RetryPolicy, Tx, run
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


def test_lookup_path_reads_as_far_as_plain_directories_lead(engine: Engine) -> None:
    now = time.time_ns()
    a = engine.create(ROOT_ID, "a", "dir", now)
    b = engine.create(a.id, "b", "dir", now)
    f = engine.create(b.id, "f", "file", now)
    link = engine.create(a.id, "l", "link", now, target="/a/b")
    assert engine.lookup_path(ROOT_ID, ["a", "b", "f"]) == [a, b, f]
    assert engine.lookup_path(ROOT_ID, ["a", "missing", "f"]) == [a]  # stops where a name is not
    assert engine.lookup_path(ROOT_ID, ["a", "b", "f", "x"]) == [a, b, f]  # a file ends it
    assert engine.lookup_path(ROOT_ID, ["a", "l", "f"]) == [a, link]  # a link is the caller's
    assert engine.lookup_path(b.id, ["f"]) == [f]
    assert engine.lookup_path(ROOT_ID, []) == []


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


def test_counter_rows_stay_one_per_shard(engine: Engine) -> None:
    # A reader sums a handful of rows: each writer adds to a shard's row, never a new one.
    assert isinstance(engine, SqlEngine)
    now = time.time_ns()
    store = engine.add_store(_store("s"), limit=100)
    for index in range(2 * _COUNTER_SHARDS + 1):
        engine.create(
            ROOT_ID,
            f"l{index}",
            "file",
            now,
            link=NewLink(size=1, checksum="e", data_store_id=store.id, object_key=f"k{index}"),
        )

    def rows(tx: Tx) -> list[Any]:
        return [
            tx.one("SELECT COUNT(*), COUNT(DISTINCT shard) FROM counters"),
            tx.one("SELECT COUNT(*), COUNT(DISTINCT shard) FROM store_counters"),
        ]

    for total, shards in run(engine.dialect, rows, write=False):
        assert 1 <= total == shards <= _COUNTER_SHARDS  # (COUNT DISTINCT skips a NULL shard)
    assert engine.counters().files == 2 * _COUNTER_SHARDS + 1


def test_unknown_counters_are_refused(engine: Engine) -> None:
    assert isinstance(engine, SqlEngine)

    def bump_unknown(tx: Tx) -> None:
        bump(tx, {"files": 1, "inodes": 2, "blocks": 3})

    with pytest.raises(ValueError, match=r"^unknown counters \['blocks', 'inodes'\]$"):
        run(engine.dialect, bump_unknown, write=True)
    assert engine.counters().files == 0  # nothing was added


def _all_at_once(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``count`` threads released together; their results in order."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - handed back to the test to assert on
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
    rows = [LinkRow(d.id, f"f{i:04d}", f"k{i}", 10, "e") for i in range(3000)]
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
        LinkRow(d.id, "a", "k/a", 10, "e1"),
        LinkRow(d.id, "taken", "k/t", 20, "e2"),
        LinkRow(987_654, "b", "k/b", 30, "e3"),
        LinkRow(d.id, odd, "key\twith\\odd\nbytes", 40, "e4"),
        LinkRow(d.id, "a", "k/a-again", 50, "e5"),  # the same path twice in one batch
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
        engine.create_links(987_654, [LinkRow(d.id, "c", "k/c", 1, "e")], now)
    assert engine.count_links(store.id) == (2, 50)


def test_create_links_of_many_rows_land_whole(engine: Engine) -> None:
    now = time.time_ns()
    store = engine.add_store(_store("s"), limit=10)
    dirs = [engine.create(ROOT_ID, f"d{i}", "dir", now).id for i in range(7)]
    rows = [LinkRow(dirs[i % 7], f"f{i:05d}", f"k{i}", i, "e") for i in range(3000)]
    assert engine.create_links(store.id, rows, now) == []
    assert engine.count_links(store.id) == (3000, sum(range(3000)))
    # One taken name sends the batch down the careful path: the rest still land.
    again = [LinkRow(dirs[0], "f00000", "k", 1, "e")] + [
        LinkRow(dirs[1], f"g{i}", f"g{i}", 1, "e") for i in range(500)
    ]
    assert engine.create_links(store.id, again, now) == [(0, NameTaken)]
    assert engine.count_links(store.id) == (3500, sum(range(3000)) + 500)


def test_postgres_copy_of_links_into_a_vanished_parent_asks_for_a_careful_retry() -> None:
    # Between the batch's check of its parents and its COPY, another client may
    # remove a parent: the COPY fails on the parent's foreign key, and that must
    # read as "redo this batch row by row" (then: missing parent), not as a
    # removed data store.
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


def _native(engine: Engine, parent: int, name: str, key: str, size: int) -> int:
    entry = engine.create(parent, name, "file", 1)
    engine.commit_data(entry.id, size, 1 << 62, [BlockRecord(0, key, size)], 1)
    return entry.id


def test_rename_with_replace_follows_posix(engine: Engine) -> None:
    now = time.time_ns()
    store = engine.add_store(_store("s"), limit=10)
    d = engine.create(ROOT_ID, "d", "dir", now).id
    f = _native(engine, d, "f", "bf", 5)
    g = _native(engine, d, "g", "bg", 3)
    link = NewLink(size=10, checksum="e", data_store_id=store.id, object_key="k")
    lnk = engine.create(d, "l", "file", now, link=link).id
    engine.create(d, "s", "link", now, target="/elsewhere")
    empty = engine.create(d, "e", "dir", now).id
    full = engine.create(d, "full", "dir", now).id
    engine.create(full, "x", "file", now)
    moving = engine.create(d, "m", "dir", now).id

    with pytest.raises(NameTaken):
        engine.rename(f, d, "g", now)  # without replace: as before
    assert engine.rename(f, d, "f", now, replace=True) == Removed(0, [])  # onto itself
    assert engine.path_of(f) == "/d/f"

    freed = engine.rename(f, d, "g", now, replace=True)  # file onto file
    assert freed == Removed(entries=1, block_keys=["bg"])
    assert engine.get(g) is None and engine.lookup(d, "f") is None
    assert engine.path_of(f) == "/d/g"
    counters = engine.counters()
    assert counters.files == 3 and counters.data_size == 5 and counters.storage_size == 5

    assert engine.rename(lnk, d, "s", now, replace=True) == Removed(1, [])  # link onto symlink
    assert engine.counters().symlinks == 0 and engine.count_links(store.id) == (1, 10)
    freed = engine.rename(f, d, "s", now, replace=True)  # native file onto link
    assert freed == Removed(1, []) and engine.count_links(store.id) == (0, 0)
    assert engine.counters().external_files == 0 and engine.counters().files == 2

    with pytest.raises(NotDir):
        engine.rename(moving, d, "s", now, replace=True)
    with pytest.raises(IsDir):
        engine.rename(f, d, "e", now, replace=True)
    with pytest.raises(NotEmpty):
        engine.rename(moving, d, "full", now, replace=True)
    with pytest.raises(WouldCycle):
        engine.rename(d, moving, "d", now, replace=True)
    assert engine.rename(moving, d, "e", now, replace=True) == Removed(1, [])  # onto empty dir
    assert engine.get(empty) is None and engine.path_of(moving) == "/d/e"
    assert engine.counters().dirs == 3  # d, full, and the moved one
    assert engine.path_of(f) == "/d/s" and engine.lookup(full, "x") is not None


def test_replace_errors_are_public_errors() -> None:
    import errno
    import pickle

    from filespace.meta.errors import public_error

    for error, public, code in [
        (IsDir("x"), IsADirectoryError, errno.EISDIR),
        (NotDir("x"), NotADirectoryError, errno.ENOTDIR),
    ]:
        mapped = public_error(error, path="/p")
        assert type(mapped) is public and mapped.errno == code and mapped.filename == "/p"
        assert type(pickle.loads(pickle.dumps(error))) is type(error)  # noqa: S301 - our own bytes


def test_racing_replacing_renames_count_each_replaced_entry_once(engine: Engine) -> None:
    d = engine.create(ROOT_ID, "d", "dir", 1).id
    _native(engine, d, "target", "key-t", 7)
    sources = [_native(engine, d, f"a{i}", f"key-{i}", 10 + i) for i in range(4)]
    freed = _all_at_once(4, lambda i: engine.rename(sources[i], d, "target", 2, replace=True))
    assert not [result for result in freed if isinstance(result, Exception)]
    keys = [key for result in freed if isinstance(result, Removed) for key in result.block_keys]
    assert sum(result.entries for result in freed if isinstance(result, Removed)) == 4
    survivor = engine.lookup(d, "target")
    assert survivor is not None and [e.name for e in engine.children(d)] == ["target"]
    survivor_keys = [block.key for block in engine.blocks(survivor.id)]
    assert sorted(keys + survivor_keys) == sorted(["key-t"] + [f"key-{i}" for i in range(4)])
    counters = engine.counters()
    assert counters.files == 1 and counters.storage_size == survivor.size == counters.data_size


def test_remove_links_removes_only_external_links_in_batches(engine: Engine) -> None:
    one = engine.add_store(_store("one"), limit=10)
    two = engine.add_store(_store("two"), limit=10)
    d = engine.create(ROOT_ID, "d", "dir", 1).id
    sub = engine.create(d, "sub", "dir", 1).id
    deep = engine.create(sub, "deep", "dir", 1).id
    engine.create(deep, "empty", "dir", 1)
    rows = [LinkRow(d, f"a{i}", f"k/a{i}", 1, "e") for i in range(7)]
    rows += [LinkRow(sub, f"b{i}", f"k/b{i}", 2, "e") for i in range(5)]
    rows += [LinkRow(deep, f"c{i}", f"k/c{i}", 3, "e") for i in range(3)]
    rows += [LinkRow(ROOT_ID, "outside", "k/o", 100, "e")]
    assert engine.create_links(one.id, rows, 1) == []
    assert (
        engine.create_links(two.id, [LinkRow(sub, f"t{i}", "k", 5, "e") for i in range(4)], 1) == []
    )
    for index in range(2):
        engine.create(deep, f"h{index}", "file", 1, link=NewLink(8, "e", url=f"https://x/{index}"))
    native = _native(engine, sub, "native", "block", 9)
    engine.create(sub, "symlink", "link", 1, target="/d")
    before = engine.counters()

    assert engine.remove_links(d, one.id, dry_run=True) == 15
    assert engine.count_links(one.id) == (16, 7 + 10 + 9 + 100)
    assert engine.remove_links(d, one.id, batch=4) == 15  # four batches, the last one short
    assert engine.count_links(one.id) == (1, 100) and engine.count_links(two.id) == (4, 20)
    touched = engine.get(sub)
    assert touched is not None and touched.mtime_ns > 1  # its links went: its mtime moved
    counters = engine.counters()
    assert counters.external_files == before.external_files - 15
    assert counters.external_size == before.external_size - 26
    assert counters.files == before.files - 15 and counters.entries_size == before.entries_size - 26

    assert engine.remove_links(d, None, dry_run=True) == 6
    assert engine.remove_links(d, None, batch=3) == 6  # the other store's and the HTTP links
    assert engine.count_links(two.id) == (0, 0)
    assert sorted(e.name for e in engine.children(sub)) == ["deep", "native", "symlink"]
    assert [e.name for e in engine.children(deep)] == ["empty"]
    assert [e.name for e in engine.children(d)] == ["sub"]
    assert engine.blocks(native) == [BlockRecord(0, "block", 9)]
    counters = engine.counters()
    assert counters.external_files == 1 and counters.external_size == 100
    assert counters.files == 2 and counters.dirs == 4 and counters.symlinks == 1
    assert engine.remove_links(d, None) == 0
    with pytest.raises(NoSuchEntry):
        engine.remove_links(999_999, None)
    with pytest.raises(NoSuchEntry):
        engine.remove_links(native, None, dry_run=True)


def test_racing_remove_links_count_each_link_once(engine: Engine) -> None:
    store = engine.add_store(_store("s"), limit=10)
    d = engine.create(ROOT_ID, "d", "dir", 1).id
    subs = [engine.create(d, f"s{i}", "dir", 1).id for i in range(3)]
    rows = [LinkRow(subs[i % 3], f"f{i:04d}", f"k{i}", 10, "e") for i in range(3000)]
    assert engine.create_links(store.id, rows, 1) == []
    removed = _all_at_once(3, lambda _: engine.remove_links(d, store.id, batch=400))
    assert sum(int(str(n)) for n in removed) == 3000
    assert engine.count_links(store.id) == (0, 0)
    assert engine.counters().external_files == 0 and engine.counters().files == 0


def test_make_dirs_from_the_root_is_mkdir_p(engine: Engine) -> None:
    now = time.time_ns()
    made = engine.make_dirs([(ROOT_ID, ["a", "b", "c"])], now)
    ids = made[0]
    assert ids is not None and len(ids) == 3 and engine.path_of(ids[-1]) == "/a/b/c"
    assert engine.make_dirs([(ROOT_ID, ["a", "b", "c"])], now) == [ids]  # all there: used
    assert engine.counters().dirs == 3
    engine.create(ids[0], "f", "file", now)
    made = engine.make_dirs(
        [(ROOT_ID, ["a", "b", "d"]), (ROOT_ID, ["a", "f", "x"]), (ROOT_ID, ["x", "y"])], now
    )
    assert made[0] is not None and made[0][:2] == ids[:2] and len(made[0]) == 3
    assert made[1] is None  # a file in the way
    assert made[2] is not None and engine.path_of(made[2][-1]) == "/x/y"
    assert engine.counters().dirs == 6 and engine.counters().files == 1
    assert engine.make_dirs([(999_999, ["q"])], now) == [None]


def test_collisions_are_retried_up_to_the_cap(engine: Engine) -> None:
    assert isinstance(engine, SqlEngine)
    policy = RetryPolicy(collisions=3, first_delay_s=0.001)
    seen: list[int] = []

    def collide(tx: Tx) -> None:
        seen.append(tx.collisions)
        lifecycle.set_setting(tx, "attempt", str(len(seen)))
        raise Collision

    with pytest.raises(EngineError, match="colliding"):
        run(engine.dialect, collide, write=True, policy=policy)
    assert seen == [0, 1, 2]
    assert "attempt" not in engine.settings()  # every attempt rolled back

    def collide_once(tx: Tx) -> int:
        if not tx.collisions:
            raise Collision
        lifecycle.set_setting(tx, "attempt", "done")
        return tx.collisions

    assert run(engine.dialect, collide_once, write=True, policy=policy) == 1
    assert engine.settings()["attempt"] == "done"

    calls: list[int] = []

    def fails(tx: Tx) -> None:
        calls.append(1)
        raise ValueError("not a passing failure")

    with pytest.raises(ValueError, match="not a passing failure"):
        run(engine.dialect, fails, write=True, policy=policy)
    assert calls == [1]


def test_postgres_transient_errors_are_retried_within_the_budget() -> None:
    # PostgreSQL only: SQLite writers wait for its lock and have no transient errors.
    with postgres_schema_url() as url:
        engine = open_engine(url)
        assert isinstance(engine, SqlEngine)
        try:
            engine.initialize({"filespace_id": "e", "format_version": "9"}, time.time_ns())
            attempts: list[int] = []

            def flaky(tx: Tx) -> str:
                attempts.append(1)
                if len(attempts) == 1:  # the server drops this connection
                    tx.run("SELECT pg_terminate_backend(pg_backend_pid())")
                if len(attempts) == 2:  # then a lost serialization race
                    tx.run(_SERIALIZATION_FAILURE)
                lifecycle.set_setting(tx, "flaky", "done")
                return "ok"

            assert run(engine.dialect, flaky, write=True) == "ok"
            assert len(attempts) == 3 and engine.settings()["flaky"] == "done"

            def always(tx: Tx) -> None:
                tx.run(_SERIALIZATION_FAILURE)

            policy = RetryPolicy(budget_s=0.3, first_delay_s=0.05)
            with pytest.raises(EngineError, match="kept failing") as spent:
                run(engine.dialect, always, write=True, policy=policy)
            cause = spent.value.__cause__
            assert cause is not None and engine.dialect.is_retryable(cause)
        finally:
            engine.close()


_SERIALIZATION_FAILURE = (
    "DO $$ BEGIN RAISE EXCEPTION 'lost a race' USING ERRCODE = 'serialization_failure'; END $$"
)
