"""``connect.link_files``: bulk linking with per-item failures, on real S3."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config

import filespace
from filespace import Filespace, LinkItem
from filespace.connect import bulk
from filespace.meta.engine import Engine, NoSuchStore
from filespace.meta.records import LinkRow
from filespace.testing import SeaweedS3

ETAG = "0" * 32


def s3_client(server: SeaweedS3) -> Any:
    """An admin boto3 client with room for ``put_objects``' 16 threads."""
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=server.admin.access_key,
        aws_secret_access_key=server.admin.secret_key,
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
    )


def put_objects(s3: Any, bucket: str, objects: Mapping[str, bytes], *, workers: int = 16) -> None:
    """Upload ``objects`` (key -> body), ``workers`` at a time.

    Pass ``workers=1`` when a key is both a file and a directory prefix of
    another: SeaweedFS can drop one of the two when both arrive at once.
    """

    def put(item: tuple[str, bytes]) -> None:
        s3.put_object(Bucket=bucket, Key=item[0], Body=item[1])

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, objects.items()))


def engine_of(fsp: Filespace) -> Engine:
    engine: Engine = fsp._engine
    return engine


def test_partial_failures_are_reported_while_the_rest_links(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    s3 = s3_client(s3_server)
    put_objects(s3, bucket, {"a": b"alpha", "b": b"bravo!", "c": b"charlie"})
    fs = connected.fs
    fs.create_dir("/d")
    fs.write_file("/d/taken", b"native bytes")
    before = fs.get_statistics()
    items: list[Any] = [
        LinkItem("/d/a", "a", 5, hashlib.md5(b"alpha").hexdigest()),  # noqa: S324
        ("/d/b", "b"),  # size and checksum by HeadObject
        LinkItem("/d/c", "c", None, ""),  # likewise
        LinkItem("/d/taken", "c"),
        LinkItem("/d/..", "c", 7, ETAG),
        LinkItem("/d/x" + "y" * 300, "c", 7, ETAG),
        LinkItem("relative/path", "c", 7, ETAG),
        LinkItem("/nope/x", "a", 5, ETAG),
        LinkItem("/d/ghost", "no-such-object"),
        LinkItem("/d/half", "a", 5, ""),
        LinkItem("/d/bad-size", "a", -1, ETAG),
        LinkItem("/d/dup", "a", 5, ETAG),
        LinkItem("/d/dup", "b", 6, ETAG),
        ("/d/quoted", "b", 6, '"' + ETAG + '"'),
        42,
    ]
    report = connected.connect.link_files(items, data_store_name="store")

    assert report.linked == 5
    reasons = {(f.file_path, f.object_id): f.reason for f in report.failed}
    assert len(reasons) == len(report.failed) == 10
    assert "not a LinkItem" in reasons[("42", "")]
    assert reasons[("/d/taken", "c")] == "path taken"
    assert reasons[("/d/dup", "b")] == "path taken"
    assert reasons[("/nope/x", "a")] == "missing parent"
    assert reasons[("/d/ghost", "no-such-object")] == "object not found"
    assert "invalid name '..'" in reasons[("/d/..", "c")]
    assert "longer than 255 bytes" in reasons[("/d/x" + "y" * 300, "c")]
    assert "absolute" in reasons[("relative/path", "c")]
    assert "both size and checksum" in reasons[("/d/half", "a")]
    assert "non-negative" in reasons[("/d/bad-size", "a")]
    assert not report.ok

    assert fs.read_file("/d/a") == b"alpha"
    assert fs.read_file("/d/b") == b"bravo!"
    assert fs.read_file("/d/c") == b"charlie"
    assert fs.read_file("/d/taken") == b"native bytes"
    info = connected.connect.get_external_file("/d/b")
    assert (info.object_id, info.size, info.data_store_name) == ("b", 6, "store")
    assert info.checksum == hashlib.md5(b"bravo!").hexdigest()  # noqa: S324
    assert connected.connect.get_external_file("/d/quoted").checksum == ETAG
    assert sorted(fs.list_dir("/d")) == ["a", "b", "c", "dup", "quoted", "taken"]

    after = fs.get_statistics()
    assert after.file_count - before.file_count == 5
    assert after.external_files_count - before.external_files_count == 5
    assert after.external_files_size - before.external_files_size == 5 + 6 + 7 + 5 + 6
    assert after.entries_size - before.entries_size == 5 + 6 + 7 + 5 + 6
    assert after.data_size == before.data_size
    assert connected.connect.count_external_files("store") == 5


def test_create_parents(connected: Filespace) -> None:
    fs = connected.fs
    fs.create_dir("/x")
    fs.write_file("/native.txt", b"n")
    before = fs.get_statistics()
    items = [
        LinkItem("/x/y/z/f1", "k1", 1, ETAG),
        LinkItem("/x/y/z/f2", "k2", 2, ETAG),
        LinkItem("/x/w/f3", "k3", 3, ETAG),
        LinkItem("/top/f4", "k4", 4, ETAG),
        LinkItem("/native.txt/sub/f5", "k5", 5, ETAG),
    ]
    without = connected.connect.link_files(items, data_store_name="store")
    assert without.linked == 0
    assert {f.reason for f in without.failed} == {"missing parent"}
    assert fs.get_statistics() == before

    report = connected.connect.link_files(items, data_store_name="store", create_parents=True)
    assert report.linked == 4
    assert [(f.file_path, f.reason) for f in report.failed] == [
        ("/native.txt/sub/f5", "missing parent")
    ]
    assert fs.list_dir("/x/y/z") == ["f1", "f2"]
    assert fs.list_dir("/x/w") == ["f3"]
    assert fs.list_dir("/top") == ["f4"]
    after = fs.get_statistics()
    assert after.directory_count - before.directory_count == 4  # y, z, w, top
    assert after.external_files_count - before.external_files_count == 4
    assert after.external_files_size - before.external_files_size == 10


def test_symlinked_parent_is_followed_like_link_file(connected: Filespace) -> None:
    fs = connected.fs
    fs.create_dir("/real")
    fs.create_symlink("/real", "/alias")
    report = connected.connect.link_files(
        [LinkItem("/alias/f", "k", 3, ETAG)], data_store_name="store"
    )
    assert report.linked == 1 and report.ok
    assert fs.list_dir("/real") == ["f"]


def test_counters_exact_over_many_batches(
    connected: Filespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "BATCH_SIZE", 700)
    fs, connect = connected.fs, connected.connect
    for d in range(30):
        fs.create_dir(f"/d{d:02d}")
    fs.write_file("/d17/f00107", b"native")  # one taken path in the middle of a batch
    before = fs.get_statistics()
    items = [(f"/d{i % 30:02d}/f{i:05d}", f"obj/{i:05d}", i % 97, ETAG) for i in range(5000)]
    expected_size = sum(i % 97 for i in range(5000) if i != 107)

    report = connect.link_files(iter(items), data_store_name="store")
    assert report.linked == 4999
    assert [(f.file_path, f.reason) for f in report.failed] == [("/d17/f00107", "path taken")]
    stats = fs.get_statistics()
    assert stats.file_count - before.file_count == 4999
    assert stats.external_files_count == 4999
    assert stats.external_files_size == expected_size
    assert stats.directory_count == before.directory_count
    assert connect.count_external_files("store") == 4999
    listed, cursor = 0, ""
    while True:
        page = connect.list_external_files("store", limit=1000, cursor=cursor)
        listed += len(page.file_paths)
        if not page.has_more:
            break
        cursor = page.cursor
    assert listed == 4999

    # The same items again: every path is taken, nothing changes.
    again = connect.link_files(items, data_store_name="store")
    assert again.linked == 0 and len(again.failed) == 5000
    assert {f.reason for f in again.failed} == {"path taken"}
    assert fs.get_statistics() == stats

    # Half new, half taken, mixed within each batch.
    mixed = [(f"/d{i % 30:02d}/f{i:05d}", f"obj/{i:05d}", 1, ETAG) for i in range(4500, 5500)]
    report = connect.link_files(mixed, data_store_name="store")
    assert report.linked == 500 and len(report.failed) == 500
    assert connect.count_external_files("store") == 5499
    assert fs.get_statistics().external_files_size == expected_size + 500


def test_a_failing_batch_leaves_nothing_behind(connected: Filespace) -> None:
    fs = connected.fs
    fs.create_dir("/d")
    engine = engine_of(connected)
    parent = fs.get_entry("/d").file_id_external
    store_id = engine.store("store")
    assert store_id is not None
    before = fs.get_statistics()
    rows = [LinkRow(parent, f"f{i}", f"k{i}", 1, ETAG) for i in range(100)]
    rows[60] = LinkRow(parent, "bad", "k", -5, ETAG)  # violates CHECK (size >= 0) mid-batch
    # The engine's own error (below the public boundary): each engine's CHECK violation.
    import sqlite3

    from psycopg.errors import CheckViolation

    with pytest.raises((sqlite3.IntegrityError, CheckViolation), match=r"(?i)check"):
        engine.create_links(store_id.id, rows, time.time_ns())
    assert fs.list_dir("/d") == []
    assert fs.get_statistics() == before
    assert connected.connect.count_external_files("store") == 0
    with pytest.raises(NoSuchStore):
        engine.create_links(store_id.id + 1000, rows[:1], time.time_ns())


def test_bad_arguments(connected: Filespace) -> None:
    connect = connected.connect
    with pytest.raises(filespace.DataStoreNotFoundError):
        connect.link_files([], data_store_name="missing")
    with pytest.raises(ValueError, match="data store name"):
        connect.link_files([], data_store_name="bad name")
    with pytest.raises(ValueError, match="iterable"):
        connect.link_files(42, data_store_name="store")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="create_parents"):
        connect.link_files([], data_store_name="store", create_parents=1)  # type: ignore[arg-type]
    assert connect.link_files([], data_store_name="store") == filespace.LinkReport()
