"""``connect.mirror``: a directory that tracks a bucket prefix, on real S3."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import Filespace, MirrorReport, SkippedKey
from filespace.connect import mirror
from filespace.objects.s3 import ObjectSummary
from filespace.testing import SeaweedS3
from tests.fsfixtures import store_config
from tests.test_link_files import put_objects, s3_client

Links = dict[str, tuple[str | None, str | None, int, str]]


def links_under(fsp: Filespace, root: str) -> Links:
    """Every external file under ``root``: relative path -> (store, key, size, ETag)."""
    found: Links = {}
    pending = [root]
    while pending:
        directory = pending.pop()
        for entry in fsp.fs.read_dir(directory):
            path = f"{directory.rstrip('/')}/{entry.name}"
            if entry.is_dir():
                pending.append(path)
            elif entry.external is not None:
                info = entry.external
                found[path[len(root) + 1 :]] = (
                    info.data_store_name,
                    info.object_id,
                    info.size,
                    info.checksum,
                )
    return found


def bucket_links(s3: Any, bucket: str, prefix: str, *, strip: int, store: str = "store") -> Links:
    """What ``links_under`` should show after mirroring ``prefix``."""
    wanted: Links = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            wanted[key[strip:]] = (store, key, item["Size"], item["ETag"].strip('"'))
    return wanted


def counts(report: MirrorReport) -> tuple[int, int, int, int]:
    return report.added, report.updated, report.removed, report.unchanged


def test_mirror_tracks_the_bucket(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mirror, "BATCH_SIZE", 300)
    monkeypatch.setattr(mirror, "SWEEP_BATCH", 7)
    s3 = s3_client(s3_server)
    objects = {f"data/d{i % 20:02d}/o{i:05d}": f"v1-{i:05d}".encode() for i in range(1990)}
    objects.update({f"data/deep/a/b/c/o{i}": b"deep" for i in range(10)})
    put_objects(s3, bucket, objects)
    put_objects(s3, bucket, {"elsewhere/x": b"not under the prefix"})
    fs, connect = connected.fs, connected.connect
    fs.create_dir("/m")
    before = fs.get_statistics()

    seen: list[MirrorReport] = []
    report = connect.mirror("store", "data/", "/m/dest", progress=seen.append)
    assert counts(report) == (2000, 0, 0, 0) and report.skipped == [] and not report.dry_run
    assert len(seen) >= 7 and seen[0].added == 300 and seen[-1] == report
    assert links_under(connected, "/m/dest") == bucket_links(s3, bucket, "data/", strip=5)
    stats = fs.get_statistics()
    assert stats.directory_count - before.directory_count == 1 + 20 + 4  # dest, d00.., deep/a/b/c
    assert stats.external_files_count == 2000 == connect.count_external_files("store")
    assert stats.external_files_size == sum(len(body) for body in objects.values())
    assert stats.file_count - before.file_count == 2000

    again = connect.mirror("store", "data/", "/m/dest")
    assert counts(again) == (0, 0, 0, 2000) and again.skipped == []
    assert fs.get_statistics() == stats

    # Things of ours in the directory: never touched.
    fs.write_file("/m/dest/d00/native.txt", b"mine")
    fs.create_dir("/m/dest/mine")
    fs.write_file("/m/dest/mine/x", b"x")
    fs.write_file("/m/dest/d01/clash", b"native clash")
    # The bucket changes: 50 same-size rewrites, 30 deletions, 40 additions.
    rewritten = {f"data/d{i % 20:02d}/o{i:05d}": f"v2-{i:05d}".encode() for i in range(0, 500, 10)}
    deleted = [f"data/d{i % 20:02d}/o{i:05d}" for i in range(1001, 1301, 10)]
    added = {f"data/new/n{i:03d}": b"new" for i in range(39)}
    added["data/d01/clash"] = b"an object where a native file is"
    put_objects(s3, bucket, {**rewritten, **added})
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in deleted]})
    stats = fs.get_statistics()
    tree = links_under(connected, "/m/dest")

    dry = connect.mirror("store", "data/", "/m/dest", dry_run=True)
    clash = [SkippedKey("data/d01/clash", "native file in the way")]
    assert counts(dry) == (39, 50, 30, 1920) and dry.skipped == clash and dry.dry_run
    assert links_under(connected, "/m/dest") == tree
    assert fs.get_statistics() == stats

    real = connect.mirror("store", "data/", "/m/dest")
    assert counts(real) == counts(dry) and real.skipped == clash and not real.dry_run
    wanted = bucket_links(s3, bucket, "data/", strip=5)
    del wanted["d01/clash"]
    assert links_under(connected, "/m/dest") == wanted
    assert fs.read_file("/m/dest/d10/o00010") == b"v2-00010"
    assert fs.read_file("/m/dest/d01/clash") == b"native clash"
    assert fs.read_file("/m/dest/d00/native.txt") == b"mine"
    assert fs.read_file("/m/dest/mine/x") == b"x"
    after = fs.get_statistics()
    assert after.external_files_count == len(wanted) == connect.count_external_files("store")
    assert after.external_files_size == sum(size for _, _, size, _ in wanted.values())
    assert after.file_count - stats.file_count == 39 - 30
    assert after.directory_count - stats.directory_count == 1  # new/

    assert counts(connect.mirror("store", "data/", "/m/dest")) == (0, 0, 0, len(wanted))


def test_keys_that_cannot_be_paths_are_skipped(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    s3 = s3_client(s3_server)
    long_tail = "x/" + "y" * 250 + "/" + "z" * 250
    put_objects(
        s3,
        bucket,
        {
            "p/ok": b"1",
            "p/marker/": b"",
            "p/f": b"file and directory",
            "p/f-x": b"sorts between p/f and p/f/",
            "p/f/g": b"under p/f",
            "p/g": b"file and directory",
            "p/g/h/i": b"deep under p/g",
            "p/" + long_tail: b"too long under the deep destination",
        },
        workers=1,  # p/f and p/f/g at once: the server can drop one of them
    )
    fs, connect = connected.fs, connected.connect
    dest = "/" + "/".join(["d" * 250] * 15)  # 3,765 bytes: room for short keys only
    report = connect.mirror("store", "p/", dest)
    assert counts(report) == (4, 0, 0, 0)
    assert sorted((s.object_id, s.reason) for s in report.skipped) == [
        ("p/f", "both a file and a directory prefix"),
        ("p/g", "both a file and a directory prefix"),
        ("p/" + long_tail, "path longer than 4096 bytes"),
    ]
    assert sorted(links_under(connected, dest)) == ["f-x", "f/g", "g/h/i", "ok"]
    assert fs.list_dir(dest) == ["f", "f-x", "g", "ok"]  # no directory for the marker
    again = connect.mirror("store", "p/", dest)
    assert counts(again) == (0, 0, 0, 4) and again.skipped == report.skipped


def test_things_in_the_way(connected: Filespace, s3_server: SeaweedS3, bucket: str) -> None:
    s3 = s3_client(s3_server)
    put_objects(s3, bucket, {"q/dir": b"1", "q/sym": b"2", "q/nat/x": b"3", "q/ok": b"4"})
    fs, connect = connected.fs, connected.connect
    fs.create_dir("/m")
    fs.create_dir("/m/dir")
    fs.create_symlink("/elsewhere", "/m/sym")
    fs.write_file("/m/nat", b"native file where a directory must go")
    report = connect.mirror("store", "q/", "/m")
    assert counts(report) == (1, 0, 0, 0)
    assert sorted((s.object_id, s.reason) for s in report.skipped) == [
        ("q/dir", "directory in the way"),
        ("q/nat/x", "native file in the way"),
        ("q/sym", "symbolic link in the way"),
    ]
    assert fs.read_file("/m/nat") == b"native file where a directory must go"
    assert fs.read_symlink("/m/sym") == "/elsewhere"


def test_relinks_links_in_the_way_and_other_stores(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    s3 = s3_client(s3_server)
    fs, connect = connected.fs, connected.connect
    connect.add_data_store("other", store_config(s3_server, bucket))
    put_objects(s3, bucket, {"r/a": b"a", "r/c": b"ccc", "r/e": b"eeee"})
    fs.create_dir("/m")
    connect.link_file("/m/c", "other", "r/c")  # another store's link: re-pointed
    connect.link_file("/m/e", "store", "r/a")  # this store, another key: re-pointed
    connect.link_file("/outside", "store", "r/a")  # not under dest_dir: left alone
    report = connect.mirror("store", "r/", "/m")
    assert counts(report) == (1, 2, 0, 0)
    assert connect.get_external_file("/m/c").data_store_name == "store"
    assert connect.get_external_file("/m/e").object_id == "r/e"
    assert fs.read_file("/m/e") == b"eeee"
    assert connect.count_external_files("other") == 0
    assert connect.count_external_files("store") == 4

    # r/a becomes a directory: the stale link of this store makes way for it.
    s3.delete_object(Bucket=bucket, Key="r/a")
    put_objects(s3, bucket, {"r/a/b": b"b"})
    report = connect.mirror("store", "r/", "/m")
    assert counts(report) == (1, 0, 1, 2) and report.skipped == []
    assert links_under(connected, "/m") == bucket_links(s3, bucket, "r/", strip=2)
    assert connect.get_external_file("/outside").object_id == "r/a"
    assert connect.count_external_files("store") == 4

    # delete=False keeps the links of vanished objects.
    s3.delete_object(Bucket=bucket, Key="r/c")
    kept = connect.mirror("store", "r/", "/m", delete=False)
    assert counts(kept) == (0, 0, 0, 2)
    assert fs.file_exists("/m/c")
    assert counts(connect.mirror("store", "r/", "/m")) == (0, 0, 1, 2)
    assert not fs.file_exists("/m/c")
    assert fs.get_statistics().external_files_count == 3


def test_prefix_handling_and_dry_run_into_a_new_directory(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    s3 = s3_client(s3_server)
    put_objects(s3, bucket, {"logs/2024-01/a": b"1", "logs/2024-02/b": b"2", "logs/2023/c": b"3"})
    fs, connect = connected.fs, connected.connect
    dry = connect.mirror("store", "logs/2024-", "/new/dir", dry_run=True)
    assert counts(dry) == (2, 0, 0, 0) and dry.dry_run
    assert not fs.dir_exists("/new")
    report = connect.mirror("store", "logs/2024-", "/new/dir")
    assert counts(report) == (2, 0, 0, 0)
    assert sorted(links_under(connected, "/new/dir")) == ["2024-01/a", "2024-02/b"]
    full = connect.mirror("store", "logs/", "/full", strip_prefix=False)
    assert sorted(links_under(connected, "/full")) == [
        "logs/2023/c",
        "logs/2024-01/a",
        "logs/2024-02/b",
    ]
    assert counts(full) == (3, 0, 0, 0)
    with pytest.raises(filespace.DataStoreNotFoundError):
        connect.mirror("missing", "logs/", "/x")
    fs.write_file("/file", b"")
    with pytest.raises(NotADirectoryError):
        connect.mirror("store", "logs/", "/file")
    with pytest.raises(ValueError, match="bool"):
        connect.mirror("store", "logs/", "/x", dry_run=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="absolute"):
        connect.mirror("store", "logs/", "relative")


def _plan(keys: list[tuple[str, int]], strip: int = 0) -> tuple[list[str], list[SkippedKey]]:
    report = MirrorReport()
    planner = mirror._Planner(strip, "/dest", report)
    rows = []
    for key, size in keys:
        rows.extend(planner.add(ObjectSummary(key, size, "e")))
    rows.extend(planner.finish())
    return sorted(f"{d}/{n}" if d else n for d, n, *_ in rows), report.skipped


def test_key_to_path_rules() -> None:
    # Keys SeaweedFS will not store (AWS S3 does).
    keys = [
        ("a//b", 1),
        ("a/./c", 1),
        ("a/../d", 1),
        ("a/" + "n" * 256, 1),
        ("a/" + "\u00e9" * 128, 1),  # 256 bytes in 128 characters
        ("a/ok", 1),
        ("a/trailing/", 5),
        ("a/marker/", 0),
        ("a/nul\x00", 1),
        ("b", 1),
        ("b!", 1),
        ("b-c", 1),
        ("b/x", 1),
        ("b0", 1),
        ("c/d", 1),
        ("c/d-e/f", 1),
        ("c/d/g", 1),
    ]
    paths, skipped = _plan(sorted(keys))  # S3's order: UTF-8 bytes, i.e. code points
    assert paths == ["a/ok", "b!", "b-c", "b/x", "b0", "c/d-e/f", "c/d/g"]
    assert sorted((s.object_id, s.reason) for s in skipped) == sorted(
        [
            ("a//b", "empty name"),
            ("a/./c", "'.' or '..' name"),
            ("a/../d", "'.' or '..' name"),
            ("a/" + "n" * 256, "name longer than 255 bytes"),
            ("a/" + "\u00e9" * 128, "name longer than 255 bytes"),
            ("a/trailing/", "empty name"),
            ("a/nul\x00", "NUL in name"),
            ("b", "both a file and a directory prefix"),
            ("c/d", "both a file and a directory prefix"),
        ]
    )
    # Directory-first listings (SeaweedFS's order) give the same answer.
    directory_first = sorted(keys, key=lambda item: item[0].split("/"))
    assert _plan(directory_first)[0] == paths
    # A prefix without a trailing "/" strips only up to its last "/".
    assert _plan([("logs/2024-01/a", 1)], strip=5)[0] == ["2024-01/a"]
    assert _plan([("/lead", 1)])[1] == [SkippedKey("/lead", "empty name")]


def test_killed_mirror_converges(tmp_path: Path, s3_server: SeaweedS3, bucket: str) -> None:
    s3 = s3_client(s3_server)
    put_objects(s3, bucket, {f"k/d{i % 7}/o{i:04d}": f"{i}".encode() for i in range(600)})
    key = filespace.generate_key()
    location = tmp_path / "fs"
    with filespace.create(location, name="t", key=key) as fsp:
        fsp.connect.enable()
        fsp.connect.add_data_store("s", store_config(s3_server, bucket))
    # The child reports its first committed batch, then waits on its stdin, which
    # never answers: the kill lands at that point, not wherever a timer hopes.
    script = textwrap.dedent(
        f"""
        import sys
        import filespace
        from filespace.connect import mirror
        mirror.BATCH_SIZE = 50
        def progress(report):
            print("batch", report.added, flush=True)
            sys.stdin.readline()
        with filespace.open({str(location)!r}, key={key!r}) as fsp:
            fsp.connect.mirror("s", "k/", "/dest", progress=progress)
        print("finished", flush=True)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None and child.stderr is not None
            first = child.stdout.readline()  # the first batch is committed
            if not first.startswith("batch"):
                child.wait()
                pytest.fail(f"the mirror process did not report a batch: {child.stderr.read()}")
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL

    with filespace.open(location, key=key) as fsp:
        partial = links_under(fsp, "/dest")
        assert len(partial) == int(first.split()[1]) == 50  # the reported batch, no more
        assert fsp.connect.count_external_files("s") == len(partial)
        # Meanwhile some objects the killed run had linked go away.
        gone = sorted(partial)[:5]
        s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": "k/" + path} for path in gone]}
        )
        report = fsp.connect.mirror("s", "k/", "/dest")
        assert report.removed == 5
        assert report.unchanged == len(partial) - 5
        assert report.added == 595 - report.unchanged
        wanted = bucket_links(s3, bucket, "k/", strip=2, store="s")
        assert links_under(fsp, "/dest") == wanted
        fresh = fsp.connect.mirror("s", "k/", "/fresh")
        assert fresh.added == 595
        assert links_under(fsp, "/fresh") == wanted
        stats = fsp.fs.get_statistics()
        assert stats.external_files_count == 2 * 595 == fsp.connect.count_external_files("s")
        assert stats.directory_count == 2 * (1 + 7)


def test_memory_does_not_grow_with_the_listing(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python-side memory only, so one engine is enough.
    monkeypatch.setattr(mirror, "BATCH_SIZE", 250)
    s3 = s3_client(s3_server)
    large = 10_000
    put_objects(s3, bucket, {f"o/a{i % 5}/o{i:06d}": b"" for i in range(large)})
    small = large // 5  # "o/a0/": two listing pages, like the large run (one page is less)
    with filespace.create(tmp_path / "fs", name="t", key=filespace.generate_key()) as fsp:
        fsp.connect.enable()
        fsp.connect.add_data_store("store", store_config(s3_server, bucket))

        def peak(prefix: str, dest: str, objects: int) -> int:
            tracemalloc.start()
            try:
                report = fsp.connect.mirror("store", prefix, dest)
                highest = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert report.added == objects
            return highest

        peak("o/a1/o0000", "/warm-up", 20)  # imports, statement caches, connection pools
        small_peak = peak("o/a0/", "/small", small)
        large_peak = peak("o/", "/large", large)
    # What merely remembering the keys of the extra objects would cost.
    tracemalloc.start()
    keys = {f"o/a{i % 5}/o{i:06d}" for i in range(large - small)}
    per_object_set = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del keys
    assert large_peak - small_peak < per_object_set / 4, (small_peak, large_peak, per_object_set)


def test_deleting_mirror_removes_only_its_own_links(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    # Only this store's links whose object is gone are removed; native files,
    # symlinks, directories, HTTP links and other stores' links stay, even
    # where no object of the prefix is.
    s3 = s3_client(s3_server)
    fs, connect = connected.fs, connected.connect
    connect.add_data_store("other", store_config(s3_server, bucket))
    connect.configure(allow_private_urls=True)  # the HTTP link below is on loopback
    put_objects(s3, bucket, {"p/keep": b"k", "p/gone": b"g", "elsewhere": b"e"})
    assert counts(connect.mirror("store", "p/", "/m")) == (2, 0, 0, 0)
    fs.create_dir("/m/sub")
    fs.write_file("/m/native", b"mine")
    fs.write_file("/m/sub/native", b"mine too")
    fs.create_symlink("/m/keep", "/m/symlink")
    connect.link_file("/m/other", "other", "elsewhere")
    connect.link_file("/m/sub/other", "other", "p/gone")
    connect.link_http_file("/m/web", s3_server.endpoint + "/x", size=3)
    s3.delete_object(Bucket=bucket, Key="p/gone")
    report = connect.mirror("store", "p/", "/m")
    assert counts(report) == (0, 0, 1, 1) and report.skipped == []
    assert not fs.file_exists("/m/gone")
    assert fs.read_file("/m/native") == b"mine" and fs.read_file("/m/sub/native") == b"mine too"
    assert fs.read_symlink("/m/symlink") == "/m/keep"
    assert connect.get_external_file("/m/other").data_store_name == "other"
    assert connect.get_external_file("/m/sub/other").object_id == "p/gone"
    assert connect.get_external_file("/m/web").kind == "http"
    assert connect.count_external_files("other") == 2
    assert connect.count_external_files("store") == 1
    assert fs.get_statistics().external_files_count == 4
