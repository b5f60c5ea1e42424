"""``filespace://`` through fsspec: pandas and PyArrow on linked and native files, and the
primitives fsspec builds on."""

from __future__ import annotations

import errno
import io
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import filespace
from filespace.fsspec import FilespaceFileSystem, close_shared_filespaces


@pytest.fixture(autouse=True)
def _fresh_instances() -> Iterator[None]:
    """No fsspec instance or shared open filespace outlives a test."""
    yield
    FilespaceFileSystem.clear_instance_cache()
    close_shared_filespaces()


@pytest.fixture
def location(fsp: filespace.Filespace) -> str:
    """Where ``fsp`` (the fixture's filespace) lives."""
    return fsp.location


@pytest.fixture
def fs(location: str) -> FilespaceFileSystem:
    filesystem = fsspec.filesystem("filespace", location=location)
    assert isinstance(filesystem, FilespaceFileSystem)
    return filesystem


@pytest.fixture
def linked(connected: filespace.Filespace, bucket: str, s3_admin: Any) -> filespace.Filespace:
    """``connected`` with a CSV and a Parquet object linked under ``/data``."""
    frame = pd.DataFrame({"id": range(1000), "name": [f"n{i}" for i in range(1000)]})
    s3_admin.put_object(Bucket=bucket, Key="in/x.csv", Body=frame.to_csv(index=False).encode())
    parquet = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame), parquet, row_group_size=100)
    s3_admin.put_object(Bucket=bucket, Key="in/x.parquet", Body=parquet.getvalue())
    connected.fs.create_dir("/data")
    connected.connect.link_file("/data/x.csv", "store", "in/x.csv")
    connected.connect.link_file("/data/x.parquet", "store", "in/x.parquet")
    return connected


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"id": range(1000), "name": [f"n{i}" for i in range(1000)]})


# -- data tools on linked files -----------------------------------------------------------


def test_pandas_reads_a_linked_csv(linked: filespace.Filespace, location: str) -> None:
    frame = pd.read_csv("filespace:///data/x.csv", storage_options={"location": location})
    pd.testing.assert_frame_equal(frame, _frame())


def test_pyarrow_reads_a_linked_parquet(
    linked: filespace.Filespace, fs: FilespaceFileSystem
) -> None:
    table = pq.read_table("/data/x.parquet", filesystem=fs)
    pd.testing.assert_frame_equal(table.to_pandas(), _frame())
    only = pq.read_table("/data/x.parquet", filesystem=fs, columns=["name"])
    assert only.column_names == ["name"] and only.num_rows == 1000
    assert pq.ParquetFile(fs.open("/data/x.parquet")).metadata.num_row_groups == 10
    frame = pd.read_parquet(
        "filespace:///data/x.parquet", storage_options={"location": fs.location}
    )
    pd.testing.assert_frame_equal(frame, _frame())


def test_linked_files_are_described_and_read_only(
    linked: filespace.Filespace, fs: FilespaceFileSystem, bucket: str
) -> None:
    info = fs.info("filespace:///data/x.csv")
    assert info["type"] == "file" and info["name"] == "/data/x.csv"
    external = info["external"]
    assert external["kind"] == "s3" and external["data_store_name"] == "store"
    assert external["object_id"] == "in/x.csv" and external["size"] == info["size"]
    listing = {item["name"]: item for item in fs.ls("/data")}
    assert listing["/data/x.parquet"]["external"]["object_id"] == "in/x.parquet"
    writes: dict[str, Callable[[], object]] = {
        "open wb": lambda: fs.open("/data/x.csv", "wb"),
        "open ab": lambda: fs.open("/data/x.csv", "ab"),
        "pipe_file": lambda: fs.pipe_file("/data/x.csv", b"x"),
        "touch": lambda: fs.touch("/data/x.csv", truncate=True),
        "cp_file onto": lambda: fs.cp_file("/data/x.parquet", "/data/x.csv"),
    }
    before = fs.info("/data/x.csv")
    for what, write in writes.items():
        with pytest.raises(filespace.ReadOnlyFileError) as denied:
            write()
        assert denied.value.errno == errno.EROFS, what
    assert fs.info("/data/x.csv") == before
    # Ranges come from the object: a seek and one read.
    whole = fs.cat_file("/data/x.csv")
    assert fs.cat_file("/data/x.csv", 3, 20) == whole[3:20]
    assert fs.cat_file("/data/x.csv", -10) == whole[-10:]
    assert fs.cat_file("/data/x.csv", 5, -5) == whole[5:-5]
    assert fs.cat_file("/data/x.csv", 10, 5) == b""
    assert fs.cat_file("/data/x.csv", len(whole) - 2, len(whole) + 100) == whole[-2:]
    # Moving a link renames it; copying makes a native copy of the bytes.
    fs.mv("/data/x.csv", "/data/y.csv")
    fs.cp_file("/data/y.csv", "/copy/y.csv")
    assert fs.cat_file("/copy/y.csv") == whole
    assert fs.info("/copy/y.csv")["external"] is None
    fs.rm("/data/y.csv")  # unlinks; the object stays
    assert not fs.exists("/data/y.csv")
    assert linked.connect.count_external_files("store") == 1


# -- native files -----------------------------------------------------------------------------


def test_native_write_then_read(fs: FilespaceFileSystem, fsp: filespace.Filespace) -> None:
    frame = _frame()
    frame.to_csv("filespace:///out/frame.csv", index=False, storage_options=fs.storage_options)
    assert fsp.fs.read_file("/out/frame.csv") == frame.to_csv(index=False).encode()
    pd.testing.assert_frame_equal(
        pd.read_csv("filespace:///out/frame.csv", storage_options=fs.storage_options), frame
    )
    pq.write_table(pa.Table.from_pandas(frame), "/out/frame.parquet", filesystem=fs)
    pd.testing.assert_frame_equal(
        pq.read_table("/out/frame.parquet", filesystem=fs).to_pandas(), frame
    )
    with fsspec.open("filespace://out/text.txt", "w", location=fs.location) as handle:
        handle.write("héllo\n")
    assert fsp.fs.read_file("/out/text.txt") == "héllo\n".encode()
    with fs.open("/out/text.txt", "ab") as handle:
        handle.write(b"more")
    assert fs.cat_file("/out/text.txt") == "héllo\nmore".encode()


def test_read_files_seek_and_know_their_size(fs: FilespaceFileSystem) -> None:
    data = bytes(range(256)) * 5000
    fs.pipe_file("/f.bin", data)
    with fs.open("/f.bin", "rb") as handle:
        assert isinstance(handle, io.BufferedReader)
        assert handle.size == len(data) and handle.path == "/f.bin"
        handle.seek(1000)
        assert handle.read(10) == data[1000:1010]
        handle.seek(-5, io.SEEK_END)
        assert handle.read() == data[-5:]
        assert handle.tell() == len(data)
    assert fs.read_block("/f.bin", 100, 50) == data[100:150]
    with fs.open("/f.bin", "rb", block_size=4096) as handle:
        assert handle.read(5000) == data[:5000]
    with pytest.raises(FileExistsError):
        fs.pipe_file("/f.bin", b"x", mode="create")
    with pytest.raises(NotImplementedError, match="transactions"), fs.transaction:
        fs.open("/t.bin", "wb")


def test_listing_and_info(fs: FilespaceFileSystem, fsp: filespace.Filespace) -> None:
    fs.makedirs("/a/b/c")
    before = datetime.now(UTC)
    fs.pipe_file("/a/f.txt", b"12345")
    after = datetime.now(UTC)
    assert fs.ls("/a", detail=False) == ["/a/b", "/a/f.txt"]
    assert fs.ls("filespace:///a/", detail=False) == ["/a/b", "/a/f.txt"]
    assert fs.ls("/a/f.txt", detail=False) == ["/a/f.txt"]
    details = fs.ls("/a")
    assert [(d["name"], d["type"], d["size"]) for d in details] == [
        ("/a/b", "directory", 0),
        ("/a/f.txt", "file", 5),
    ]
    info = fs.info("/a/f.txt")
    assert info["external"] is None and info["islink"] is False
    assert info == details[1]
    assert fs.info("/")["type"] == "directory"
    assert fs.isdir("/a/b") and fs.isfile("/a/f.txt") and not fs.isfile("/a/b")
    assert fs.exists("/a/b/c") and not fs.exists("/a/nope") and not fs.exists("/a/f.txt/x")
    assert fs.find("/a") == ["/a/f.txt"]
    assert fs.find("/a", withdirs=True) == ["/a", "/a/b", "/a/b/c", "/a/f.txt"]
    assert fs.glob("/a/*.txt") == ["/a/f.txt"]
    assert fs.du("/a") == 5
    modified = fs.modified("/a/f.txt")
    assert modified.tzinfo is UTC  # and the write's time, in whole seconds:
    assert before.replace(microsecond=0) <= modified <= after
    assert fs.created("/a/f.txt") <= modified
    with pytest.raises(FileNotFoundError):
        fs.info("/missing")
    with pytest.raises(FileNotFoundError):
        fs.ls("/missing")
    # ukey names a version of a file: the same while it is unchanged, another
    # for another file and once the file is written.
    key = fs.ukey("/a/f.txt")
    assert isinstance(key, str) and fs.ukey("/a/f.txt") == key
    fs.pipe_file("/a/g.txt", b"12345")
    assert fs.ukey("/a/g.txt") != key
    fs.pipe_file("/a/f.txt", b"123456")
    assert fs.ukey("/a/f.txt") != key
    # A rewrite of the same size within the same second is another version too.
    rewritten = fs.ukey("/a/f.txt")
    fs.pipe_file("/a/f.txt", b"654321")
    assert fs.info("/a/f.txt")["size"] == 6
    assert fs.ukey("/a/f.txt") != rewritten
    assert fs.fsid == f"filespace_{fsp.id}"


def test_namespace_changes(fs: FilespaceFileSystem) -> None:
    fs.mkdir("/d")
    with pytest.raises(FileExistsError):
        fs.mkdir("/d")
    with pytest.raises(FileExistsError):
        fs.makedirs("/d")
    fs.makedirs("/d", exist_ok=True)
    fs.mkdir("/d/e/f")  # create_parents by default
    with pytest.raises(FileNotFoundError):
        fs.mkdir("/x/y", create_parents=False)
    fs.pipe_file("/d/e/f/g", b"g")
    with pytest.raises(OSError, match="not empty"):
        fs.rmdir("/d/e/f")
    with pytest.raises(IsADirectoryError):
        fs.rm("/d")
    with pytest.raises(IsADirectoryError):
        fs.rm_file("/d")
    fs.pipe_file("/file", b"")
    with pytest.raises(FileExistsError):
        fs.makedirs("/file/sub")
    fs.mv("/d/e", "/moved")
    assert fs.find("/moved") == ["/moved/f/g"]
    fs.mkdir("/into")
    fs.mv("/moved", "/into")  # an existing directory: moved inside it
    assert fs.cat_file("/into/moved/f/g") == b"g"
    fs.pipe_file("/other", b"other")
    fs.mv("/other", "/file")  # replaces a file
    assert fs.cat_file("/file") == b"other" and not fs.exists("/other")
    fs.mv("/file", "/new/parent/file")  # auto_mkdir
    assert fs.cat_file("/new/parent/file") == b"other"
    fs.rm("/into", recursive=True)
    fs.rm(["/new/parent/file"])
    fs.rmdir("/new/parent")
    with pytest.raises(FileNotFoundError):
        fs.rm("/nope")
    assert sorted(fs.ls("/", detail=False)) == ["/d", "/new"]


def test_put_and_get(fs: FilespaceFileSystem, tmp_path: Path) -> None:
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    (local / "a.bin").write_bytes(b"a" * 10_000_000)
    (local / "sub" / "b.txt").write_text("b")
    fs.put(str(local), "/up", recursive=True)
    assert fs.find("/up") == ["/up/a.bin", "/up/sub/b.txt"]
    fs.get("/up", str(tmp_path / "down"), recursive=True)
    assert (tmp_path / "down" / "a.bin").read_bytes() == b"a" * 10_000_000
    assert (tmp_path / "down" / "sub" / "b.txt").read_text() == "b"


def test_symlinks(fs: FilespaceFileSystem, fsp: filespace.Filespace) -> None:
    fs.makedirs("/real/deep")
    fs.pipe_file("/real/f", b"data")
    fsp.fs.create_symlink("/real", "/real/deep/up")  # a loop back to an ancestor
    fsp.fs.create_symlink("f", "/real/to-file")
    fsp.fs.create_symlink("/nowhere", "/real/dangling")
    assert fs.info("/real/deep/up")["type"] == "directory"
    assert fs.info("/real/deep/up")["islink"] is True
    assert fs.info("/real/to-file")["type"] == "file"
    assert fs.info("/real/to-file")["size"] == 4
    assert fs.info("/real/dangling")["type"] == "link"
    assert fs.cat_file("/real/to-file") == b"data"
    assert fs.ls("/real/deep/up", detail=False)[0].startswith("/real/deep/up/")
    listed = {item["name"]: item["type"] for item in fs.ls("/real/deep")}
    assert listed == {"/real/deep/up": "link"}
    assert fs.find("/real") == [
        "/real/dangling",
        "/real/deep/up",
        "/real/f",
        "/real/to-file",
    ]  # no endless walk through the loop
    fs.rm("/real/deep/up")  # removes the link only
    assert fs.exists("/real/f")


# -- instances, options, pickling -------------------------------------------------------------


def test_instances_share_one_filespace(fs: FilespaceFileSystem, location: str) -> None:
    fs.pipe_file("/shared", b"1")
    seen: list[Any] = []

    def in_a_thread() -> None:
        other = fsspec.filesystem("filespace", location=location)
        seen.append((other is fs, other.filespace is fs.filespace, other.cat_file("/shared")))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == [(False, True, b"1")]  # fsspec: one instance per thread; one filespace
    relative = fsspec.filesystem("filespace", location=location)
    assert relative is fs
    space = fs.filespace
    fs.close()
    assert space.closed and fs.cat_file("/shared") == b"1"  # reopened on use


def test_pickles_as_its_options(fs: FilespaceFileSystem, location: str, tmp_path: Path) -> None:
    fs.pipe_file("/p", b"pickled")
    clone = pickle.loads(pickle.dumps(fs))  # noqa: S301 - our own bytes
    assert clone.cat_file("/p") == b"pickled"
    code = (
        "import pickle, sys; fs = pickle.loads(sys.stdin.buffer.read()); "
        "sys.stdout.buffer.write(fs.cat_file('/p'))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(fs),
        capture_output=True,
        check=True,
        cwd=tmp_path.parent,  # another working directory: the location travels absolute
    )
    assert answer.stdout == b"pickled"


def test_location_from_environment_and_errors(
    location: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FILESPACE", location)
    filesystem = fsspec.filesystem("filespace")
    filesystem.pipe_file("/env", b"e")
    with fsspec.open("filespace:///env", "rb") as handle:
        assert handle.read() == b"e"
    monkeypatch.delenv("FILESPACE")
    FilespaceFileSystem.clear_instance_cache()
    with pytest.raises(ValueError, match="location"):
        fsspec.filesystem("filespace")
    with pytest.raises(FileNotFoundError):
        fsspec.filesystem("filespace", location=str(tmp_path / "missing"))
    with pytest.raises(filespace.WrongKeyError):
        fsspec.filesystem("filespace", location=location, key=filespace.generate_key())


def test_protocol_paths() -> None:
    strip = FilespaceFileSystem._strip_protocol
    assert strip("filespace:///a/b") == "/a/b"
    assert strip("filespace://a/b/") == "/a/b"
    assert strip("filespace://") == "/"
    assert strip("/x") == "/x"
    assert strip(["filespace:///a", "b"]) == ["/a", "/b"]
    assert fsspec.core.split_protocol("filespace:///a") == ("filespace", "/a")
