"""``connect.link_files``: the exact reasons a user reads, paths in any spelling,
a cached parent that goes away between batches, how few engine reads it takes
to find the parent directories (one per parent directory, once per call), and
its HeadObject lookups (16 at once, on threads of its own that end with it)."""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import filespace
from filespace import Filespace, LinkItem
from filespace.connect import bulk
from filespace.testing import SeaweedS3
from tests.faultproxy import FaultProxy
from tests.fsfixtures import store_config
from tests.waiting import HANG_S

ETAG = "0" * 32


def reasons(report: filespace.LinkReport) -> list[tuple[str, str, str]]:
    return [(f.file_path, f.object_id, f.reason) for f in report.failed]


# -- what a user reads about a bad item ------------------------------------------------
def test_malformed_items_are_reported_with_their_exact_reasons(connected: Filespace) -> None:
    """Each bad item is a failure saying what is wrong with it; nothing is linked."""
    fs = connected.fs
    fs.create_dir("/d")
    before = fs.get_statistics()
    five = ("/d/five", "k", 1, ETAG, "extra")
    long_one = ("x" * 300,)
    huge_key = 10**300  # its repr is 301 characters
    items: list[Any] = [
        five,
        long_one,
        (42, "k", 1, ETAG),
        ("/", "k", 1, ETAG),
        ("/d/half", "k", 1, ""),
        ("/d/other-half", "k", None, ETAG),
        ("/d/key", huge_key, 1, ETAG),
    ]
    report = connected.connect.link_files(items, data_store_name="store")

    shape = "not a LinkItem or (file_path, object_id, size, checksum) tuple"
    both = "give both size and checksum, or neither"
    assert report.linked == 0
    assert (
        reasons(report)
        == [
            (repr(five), "", shape),
            (repr(long_one)[:200], "", shape),  # a long item is shown cut to 200 characters
            ("42", "k", "file_path must be str, not int"),
            ("/", "k", "the root directory cannot be a link"),
            ("/d/half", "k", both),
            ("/d/other-half", "k", both),
            ("/d/key", repr(huge_key)[:200], "object_id must be a non-empty string"),
        ]
    )
    assert len(report.failed[1].file_path) == len(report.failed[6].object_id) == 200
    assert fs.list_dir("/d") == []
    assert fs.get_statistics() == before


def test_bad_arguments_say_exactly_what_is_wrong(connected: Filespace) -> None:
    """Arguments that are wrong as a whole are raised, not reported per item."""
    connect = connected.connect
    with pytest.raises(ValueError, match=r"^create_parents must be a bool$"):
        connect.link_files([], data_store_name="store", create_parents="yes")  # type: ignore[arg-type]
    for items in ("/a", b"/a", 42):
        with pytest.raises(ValueError, match=r"^items must be an iterable of LinkItem or tuples$"):
            connect.link_files(items, data_store_name="store")  # type: ignore[arg-type]


def test_a_data_store_removed_while_items_stream_in_is_named(connected: Filespace) -> None:
    """The store goes away after the call started: the write fails with the
    store's name, as an unknown store does up front, and nothing is linked."""
    connect = connected.connect

    def items() -> Iterator[LinkItem]:
        connect.remove_data_store("store")
        yield LinkItem("/f", "k", 1, ETAG)

    with pytest.raises(filespace.DataStoreNotFoundError, match=r"^no data store named 'store'$"):
        connect.link_files(items(), data_store_name="store")
    assert connected.fs.list_dir("/") == []


def test_none_for_both_size_and_checksum_means_ask_the_object(
    connected: Filespace, s3_admin: Any, bucket: str
) -> None:
    """``None`` for the checksum is "not given", like ``""``: HeadObject fills both in."""
    s3_admin.put_object(Bucket=bucket, Key="obj", Body=b"seven b")
    etag = hashlib.md5(b"seven b").hexdigest()  # noqa: S324
    items: list[Any] = [("/t", "obj", None, None), LinkItem("/i", "obj", None, None)]  # type: ignore[arg-type]
    report = connected.connect.link_files(items, data_store_name="store")
    assert reasons(report) == []
    assert report.linked == 2
    for path in ("/t", "/i"):
        info = connected.connect.get_external_file(path)
        assert (info.object_id, info.size, info.checksum) == ("obj", 7, etag)
    assert connected.fs.read_file("/t") == b"seven b"


# -- paths -----------------------------------------------------------------------------
def test_paths_in_any_spelling_link_at_their_normal_place(connected: Filespace) -> None:
    """Doubled and trailing slashes and non-ASCII names take the careful path; the link
    still lands under its normalized parent with its own last name."""
    fs = connected.fs
    fs.create_dir("/d/e/g", parents=True)
    items = [
        LinkItem("/d//e/plain/", "k1", 1, ETAG),
        LinkItem("/d/e/café", "k2", 2, ETAG),
        LinkItem("/d/e/g/naïve", "k3", 3, ETAG),
        LinkItem("/d/e/g/deep", "k4", 4, ETAG),  # the plain spelling, two levels down
        LinkItem("/ü", "k5", 5, ETAG),
    ]
    report = connected.connect.link_files(items, data_store_name="store")
    assert reasons(report) == []
    assert report.linked == 5
    assert sorted(fs.list_dir("/d/e")) == ["café", "g", "plain"]
    assert sorted(fs.list_dir("/d/e/g")) == ["deep", "naïve"]
    assert fs.list_dir("/d") == ["e"]
    assert "ü" in fs.list_dir("/")
    linked = {
        path: connected.connect.get_external_file(path).object_id
        for path in ("/d/e/plain", "/d/e/café", "/d/e/g/naïve", "/d/e/g/deep", "/ü")
    }
    assert linked == {
        "/d/e/plain": "k1",
        "/d/e/café": "k2",
        "/d/e/g/naïve": "k3",
        "/d/e/g/deep": "k4",
        "/ü": "k5",
    }


def test_create_parents_makes_parents_whatever_the_items_are_called(
    connected: Filespace,
) -> None:
    """Whether a parent is missing is asked of the parent's path: an item named
    like a directory elsewhere (here /x, /e) still gets its parent made."""
    fs = connected.fs
    fs.create_dir("/x")
    fs.create_dir("/e")
    items = [LinkItem("/new/x", "k1", 1, ETAG), LinkItem("/deep/er/e", "k2", 2, ETAG)]
    report = connected.connect.link_files(items, data_store_name="store", create_parents=True)
    assert reasons(report) == []
    assert report.linked == 2
    assert fs.list_dir("/new") == ["x"]
    assert fs.list_dir("/deep/er") == ["e"]
    assert fs.list_dir("/x") == fs.list_dir("/e") == []


# -- a parent that changes while the items stream in -------------------------------------
def test_a_parent_replaced_between_batches_is_looked_up_again(
    connected: Filespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory ids learnt in one batch are kept for the next; when one of
    them is gone by then, the batch looks its parents up afresh and links there."""
    monkeypatch.setattr(bulk, "BATCH_SIZE", 2)
    fs, connect = connected.fs, connected.connect
    fs.create_dir("/d")
    # Made after /d, so /d's id is not the highest: SQLite hands the highest id
    # out again, and /d's new directory must not get the old one by chance.
    fs.create_dir("/later")

    def items() -> Iterator[LinkItem]:
        yield LinkItem("/d/a", "a", 1, ETAG)
        yield LinkItem("/d/b", "b", 2, ETAG)
        # The first batch is linked by now (items are read lazily, a batch at a time).
        connect.unlink_file("/d/a")
        connect.unlink_file("/d/b")
        fs.delete_dir("/d")
        fs.create_dir("/d")
        yield LinkItem("/d/c", "c", 3, ETAG)

    report = connect.link_files(items(), data_store_name="store")
    assert reasons(report) == []
    assert report.linked == 3
    assert fs.list_dir("/d") == ["c"]
    assert connect.get_external_file("/d/c").object_id == "c"
    assert connect.count_external_files("store") == 1


# -- engine reads ----------------------------------------------------------------------
@contextmanager
def counting_reads(fsp: Filespace) -> Iterator[list[int]]:
    """Count the read transactions the engine begins (one per lookup) while inside.

    SQLite's trace callback sees every statement of the pooled connections; the
    pool must not grow meanwhile, or a statement could have gone unseen.
    """
    dialect = fsp._engine.dialect
    connections: list[sqlite3.Connection] = list(dialect._connections)
    assert connections, "the filespace has no pooled connection to trace"
    count = [0]

    def seen(statement: str) -> None:
        if statement == "BEGIN":  # writes begin with BEGIN IMMEDIATE
            count[0] += 1

    for conn in connections:
        conn.set_trace_callback(seen)
    try:
        yield count
    finally:
        for conn in connections:
            conn.set_trace_callback(None)
    assert list(dialect._connections) == connections


def reads_of(fsp: Filespace, items: list[LinkItem]) -> tuple[int, filespace.LinkReport]:
    """Engine reads of ``link_files(items)`` beyond those of an empty call."""
    fsp.connect.link_files([], data_store_name="store")  # the store record and the gate, warmed
    with counting_reads(fsp) as empty:
        fsp.connect.link_files([], data_store_name="store")
    with counting_reads(fsp) as full:
        report = fsp.connect.link_files(items, data_store_name="store")
    return full[0] - empty[0], report


sqlite_only = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
"""The read counts are taken with SQLite's statement trace."""


@sqlite_only
def test_nested_parents_cost_one_read_per_parent_directory(connected: Filespace) -> None:
    """20 directories two levels down: read by name from /, /p and /p/q, 3 reads
    (a taken path costs no second look)."""
    fs = connected.fs
    for i in range(20):
        fs.create_dir(f"/p/q/d{i:02d}", parents=True)
    fs.write_file("/p/q/d00/taken", b"native")
    items = [LinkItem(f"/p/q/d{i:02d}/f", f"k{i}", 1, ETAG) for i in range(20)]
    items.append(LinkItem("/p/q/d00/taken", "t", 1, ETAG))
    reads, report = reads_of(connected, items)
    assert reasons(report) == [("/p/q/d00/taken", "t", "path taken")]
    assert report.linked == 20
    assert reads == 3


@sqlite_only
def test_parents_are_read_once_per_call_not_once_per_batch(
    connected: Filespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four batches into the same two directories: /, /p and /p/q are read for
    the first batch only, 3 reads in all."""
    monkeypatch.setattr(bulk, "BATCH_SIZE", 10)
    fs = connected.fs
    fs.create_dir("/p/q/a", parents=True)
    fs.create_dir("/p/q/b")
    items = [LinkItem(f"/p/q/{'ab'[i % 2]}/f{i:02d}", f"k{i}", 1, ETAG) for i in range(40)]
    reads, report = reads_of(connected, items)
    assert reasons(report) == []
    assert report.linked == 40
    assert reads == 3


@sqlite_only
def test_missing_parents_cost_no_reads_below_them(connected: Filespace) -> None:
    """Once / says /m is missing, nothing under it is looked up, however many
    directories the items name there; /p/q/a and /p/q/b are still found by
    reading /, /p and /p/q: 3 reads."""
    fs = connected.fs
    fs.create_dir("/p/q/a", parents=True)
    fs.create_dir("/p/q/b")
    missing = [LinkItem(f"/m/s{i:02d}/t/f", f"m{i}", 1, ETAG) for i in range(100)]
    present = [LinkItem("/p/q/a/f", "a", 1, ETAG), LinkItem("/p/q/b/f", "b", 1, ETAG)]
    reads, report = reads_of(connected, missing + present)
    assert report.linked == 2
    assert reasons(report) == [
        (item.file_path, item.object_id, "missing parent") for item in missing
    ]
    assert reads == 3


@sqlite_only
def test_a_file_in_the_way_costs_one_read(connected: Filespace) -> None:
    """A file where a directory should be (/f) is looked at on its own, once,
    however many directories the items name under it; /p/q/a and /p/q/b are
    still found by reading /, /p and /p/q: 4 reads."""
    fs = connected.fs
    fs.create_dir("/p/q/a", parents=True)
    fs.create_dir("/p/q/b")
    fs.write_file("/f", b"native")
    blocked = [LinkItem(f"/f/s{i:02d}/t/x", f"b{i}", 1, ETAG) for i in range(100)]
    present = [LinkItem("/p/q/a/x", "a", 1, ETAG), LinkItem("/p/q/b/x", "b", 1, ETAG)]
    reads, report = reads_of(connected, blocked + present)
    assert report.linked == 2
    assert reasons(report) == [
        (item.file_path, item.object_id, "missing parent") for item in blocked
    ]
    assert reads == 4


# -- HeadObject ------------------------------------------------------------------------
class HeadsTogether(FaultProxy):
    """Holds each HeadObject of a key under ``prefix`` until ``parties`` of them are
    in flight, and notes the threads running at that moment."""

    def __init__(self, target: str, prefix: str, parties: int) -> None:
        super().__init__(target)
        self.prefix = prefix
        self.threads_then: list[str] = []
        self._together = threading.Barrier(parties, action=self._note_threads)

    def _note_threads(self) -> None:
        self.threads_then = sorted(thread.name for thread in threading.enumerate())

    def _handle(self, client: socket.socket, upstream: Any, request: Any, *rest: Any) -> bool:
        if request.method == "HEAD" and request.path.startswith(self.prefix):
            self._together.wait(HANG_S)  # only a hang waits this long
        result: bool = super()._handle(client, upstream, request, *rest)
        return result


def head_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("filespace-head")]


@sqlite_only
def test_sixteen_heads_are_in_flight_on_filespace_threads_gone_after_the_call(
    connected: Filespace, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    """Items without size and checksum are looked up 16 at a time, on threads
    named ``filespace-head``, which have all ended when ``link_files`` returns."""
    for i in range(bulk.HEAD_WORKERS):
        s3_admin.put_object(Bucket=bucket, Key=f"o/{i:02d}", Body=b"h" * i)
    assert head_threads() == []
    with HeadsTogether(s3_server.endpoint, f"/{bucket}/o/", bulk.HEAD_WORKERS) as proxy:
        connected.connect.add_data_store(
            "p", store_config(s3_server, bucket, endpoint=proxy.endpoint)
        )
        items = [LinkItem(f"/h{i:02d}", f"o/{i:02d}") for i in range(bulk.HEAD_WORKERS)]
        report = connected.connect.link_files(items, data_store_name="p")
        left = head_threads()
    assert reasons(report) == []
    assert report.linked == 16
    assert [connected.fs.get_entry(f"/h{i:02d}").size for i in range(16)] == list(range(16))
    heads = [seen for seen in proxy.requests("HEAD") if seen.path.startswith(f"/{bucket}/o/")]
    assert len(heads) == 16
    assert max(seen.busy for seen in heads) == 16
    assert len([name for name in proxy.threads_then if name.startswith("filespace-head")]) == 16
    assert left == []
