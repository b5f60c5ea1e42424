"""``fsp.fs``: every method, its errors, and bad input that changes nothing."""

from __future__ import annotations

import errno
import io
import os

import pytest

import filespace
from filespace import Filespace


def test_create_read_list_dirs(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/a")
    fs.create_dir("/a/b")
    fs.write_file("/a/f.txt", b"x")
    assert fs.list_dir("/") == ["a"]
    assert fs.list_dir("/a") == ["b", "f.txt"]
    entries = {e.name: e for e in fs.read_dir("/a")}
    assert entries["b"].is_dir() and entries["b"].type == "dir"
    assert entries["f.txt"].is_file() and entries["f.txt"].size == 1
    assert entries["f.txt"].external is None
    assert fs.dir_exists("/a/b") and not fs.file_exists("/a/b")
    assert fs.file_exists("/a/f.txt") and not fs.dir_exists("/a/f.txt")
    assert not fs.file_exists("/nope") and not fs.dir_exists("/a/nope/deeper")


def test_dir_errors(fsp: Filespace) -> None:
    fs = fsp.fs
    with pytest.raises(FileNotFoundError):
        fs.create_dir("/missing/child")
    fs.create_dir("/d")
    with pytest.raises(FileExistsError):
        fs.create_dir("/d")
    fs.write_file("/f", b"")
    with pytest.raises(NotADirectoryError):
        fs.read_dir("/f")
    with pytest.raises(NotADirectoryError):
        fs.create_dir("/f/x")
    with pytest.raises(FileNotFoundError):
        fs.read_dir("/missing")
    with pytest.raises(FileNotFoundError):
        fs.get_entry("/missing")


def test_entry_fields(fsp: Filespace) -> None:
    fsp.fs.write_file("/f", b"hello")
    entry = fsp.fs.get_entry("/f")
    assert entry.name == "f" and entry.size == 5 and entry.type == "file"
    assert isinstance(entry.file_id, str) and entry.file_id
    assert isinstance(entry.file_id_external, int)
    assert isinstance(entry.ctime, int) and isinstance(entry.mtime, int)
    assert abs(entry.mtime - __import__("time").time()) < 60
    fsp.fs.move("/f", "/g")
    assert fsp.fs.get_entry("/g").file_id_external == entry.file_id_external
    assert fsp.fs.get_entry("/g").file_id == entry.file_id


def test_write_read_append_truncate(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.write_file("/f", b"hello world")
    assert fs.read_file("/f") == b"hello world"
    with fs.open("/f", "ab") as handle:
        handle.write(b"!")
    assert fs.read_file("/f") == b"hello world!"
    fs.truncate("/f", 5)
    assert fs.read_file("/f") == b"hello"
    fs.truncate("/f", 8)
    assert fs.read_file("/f") == b"hello\0\0\0"
    with fs.open("/f", "wb") as handle:
        handle.write(b"new")
    assert fs.read_file("/f") == b"new"
    with pytest.raises(TypeError):
        fs.write_file("/f", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        fs.truncate("/f", -1)
    assert fs.read_file("/f") == b"new"


def test_large_file_across_blocks(tmp_path: object) -> None:
    with filespace.create(os.path.join(str(tmp_path), "s"), name="b", block_size=64 * 1024) as fsp:
        data = os.urandom(64 * 1024 * 5 + 123)
        fsp.fs.write_file("/big", data)
        assert fsp.fs.read_file("/big") == data
        with fsp.fs.open("/big", "r+b") as handle:
            handle.seek(64 * 1024 - 2)
            handle.write(b"ABCD")  # spans a block boundary
            handle.seek(-3, io.SEEK_END)
            handle.write(b"xyz")
        expected = bytearray(data)
        expected[64 * 1024 - 2 : 64 * 1024 + 2] = b"ABCD"
        expected[-3:] = b"xyz"
        assert fsp.fs.read_file("/big") == bytes(expected)
        fsp.fs.truncate("/big", 64 * 1024 + 10)
        fsp.fs.truncate("/big", 64 * 1024 * 3)
        got = fsp.fs.read_file("/big")
        assert got[: 64 * 1024 + 10] == bytes(expected[: 64 * 1024 + 10])
        assert got[64 * 1024 + 10 :] == bytes(len(got) - 64 * 1024 - 10)
        stats = fsp.fs.get_statistics()
        assert stats.data_size == 64 * 1024 * 3
        assert stats.storage_size == 64 * 1024 + 10


def test_seek_tell_readinto_modes(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.write_file("/f", b"0123456789")
    with fs.open("/f", "rb", buffering=0) as raw:
        assert isinstance(raw, io.RawIOBase)
        buffer = bytearray(4)
        assert raw.readinto(buffer) == 4 and buffer == b"0123"
        assert raw.tell() == 4
        assert raw.seek(-2, io.SEEK_END) == 8
        assert raw.read() == b"89"
        assert raw.seek(-5, io.SEEK_CUR) == 5
        assert raw.read(2) == b"56"
        with pytest.raises(OSError, match="negative seek position"):
            raw.seek(-100, io.SEEK_SET)
    with fs.open("/f", "rb") as buffered:
        assert isinstance(buffered, io.BufferedReader)
    with fs.open("/f", "r+b") as both:
        assert isinstance(both, io.BufferedRandom)
        both.seek(3)
        both.write(b"XY")
        both.seek(0)
        assert both.read() == b"012XY56789"
    with fs.open("/f", "w+b") as fresh:
        assert fresh.read() == b""
        fresh.write(b"abc")
        fresh.seek(0)
        assert fresh.read() == b"abc"
    with fs.open("/f", "a+b") as appending:
        appending.write(b"d")
        appending.seek(0)
        assert appending.read() == b"abcd"
    with fs.open("/f", "wb") as writer:
        assert isinstance(writer, io.BufferedWriter)
        with pytest.raises(io.UnsupportedOperation):
            writer.read()
    with fs.open("/f", "rb") as reader, pytest.raises(io.UnsupportedOperation):
        reader.write(b"x")
    with pytest.raises(FileNotFoundError):
        fs.open("/missing", "rb")
    with pytest.raises(FileExistsError):
        fs.open("/f", "xb")
    with pytest.raises(ValueError, match="mode"):
        fs.open("/f", "rw")
    fs.create_dir("/d")
    with pytest.raises(IsADirectoryError):
        fs.open("/d", "rb")


def test_text_modes(fsp: Filespace) -> None:
    fs = fsp.fs
    with fs.open("/t.txt", "w") as handle:
        assert isinstance(handle, io.TextIOWrapper)
        handle.write("héllo\nwörld\n")
    with fs.open("/t.txt", "a") as handle:
        handle.write("third\n")
    with fs.open("/t.txt", "r") as handle:
        assert handle.readline() == "héllo\n"
        assert list(handle) == ["wörld\n", "third\n"]
    with fs.open("/t.txt", "rt", encoding="latin-1") as handle:
        assert handle.read().startswith("hÃ©llo")
    with fs.open("/t.txt", "r+") as handle:
        handle.write("H")
    assert fs.read_file("/t.txt").startswith(b"H\xc3\xa9llo")
    with fs.open("/t.txt", "wt", newline="\r\n") as handle:
        handle.write("a\nb\n")
    assert fs.read_file("/t.txt") == b"a\r\nb\r\n"
    with pytest.raises(ValueError, match="binary"):
        fs.open("/t.txt", "rb", encoding="utf-8")
    with pytest.raises(ValueError, match="unbuffered"):
        fs.open("/t.txt", "r", buffering=0)


def test_delete_and_delete_dir(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/d")
    fs.write_file("/d/f", b"data")
    with pytest.raises(IsADirectoryError):
        fs.delete("/d")
    with pytest.raises(OSError, match="directory not empty") as info:
        fs.delete_dir("/d")
    assert info.value.errno == errno.ENOTEMPTY
    with pytest.raises(NotADirectoryError):
        fs.delete_dir("/d/f")
    fs.delete("/d/f")
    assert not fs.file_exists("/d/f")
    fs.delete_dir("/d")
    assert not fs.dir_exists("/d")
    with pytest.raises(FileNotFoundError):
        fs.delete("/d/f")
    with pytest.raises(PermissionError):
        fs.delete_dir("/", recursive=True)


def test_recursive_delete_frees_blocks_and_counters(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/tree")
    fs.create_dir("/tree/sub")
    for index in range(5):
        fs.write_file(f"/tree/sub/f{index}", b"x" * 1000)
    fs.create_symlink("/tree", "/tree/sub/loop")
    before = fs.get_statistics()
    assert before.file_count == 5 and before.directory_count == 2 and before.symlink_count == 1
    blocks_dir = os.path.join(fsp.data_url[len("file://") :])

    def block_files() -> int:
        return sum(
            1 for _, _, files in os.walk(blocks_dir) for name in files if not name.startswith(".")
        )

    assert block_files() == 5
    fs.delete_dir("/tree", recursive=True)
    after = fs.get_statistics()
    assert (after.file_count, after.directory_count, after.symlink_count) == (0, 0, 0)
    assert after.data_size == after.storage_size == after.entries_size == 0
    assert block_files() == 0


def test_move(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/a")
    fs.create_dir("/a/b")
    fs.write_file("/a/b/f", b"1")
    fs.write_file("/g", b"2")
    fs.move("/a/b/f", "/a/f2")
    assert fs.read_file("/a/f2") == b"1"
    with pytest.raises(FileNotFoundError):
        fs.move("/missing", "/x")
    with pytest.raises(FileExistsError):
        fs.move("/g", "/a/f2")
    with pytest.raises(OSError, match="cannot move a directory into itself") as info:
        fs.move("/a", "/a/b/inside")
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError, match="cannot move a directory into itself") as same:
        fs.move("/a", "/a/self")
    assert same.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        fs.move("/g", "/nodir/g")
    fs.move("/a", "/renamed")
    assert fs.list_dir("/renamed") == ["b", "f2"]
    assert fs.read_file("/g") == b"2"


def test_symlinks(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/real")
    fs.write_file("/real/f", b"through link")
    fs.create_symlink("/real", "/abs")
    fs.create_symlink("real/f", "/rel")
    fs.create_symlink("../real/f", "/real/up")
    assert fs.read_symlink("/abs") == "/real"
    assert fs.get_entry("/abs").is_link()
    assert fs.read_file("/abs/f") == b"through link"
    assert fs.read_file("/rel") == b"through link"
    assert fs.read_file("/real/up") == b"through link"
    assert fs.dir_exists("/abs") and fs.file_exists("/rel")
    with pytest.raises(OSError, match="not a symbolic link") as info:
        fs.read_symlink("/real")
    assert info.value.errno == errno.EINVAL
    fs.create_symlink("/loop2", "/loop1")
    fs.create_symlink("/loop1", "/loop2")
    with pytest.raises(OSError, match="too many levels of symbolic links") as loop:
        fs.read_file("/loop1")
    assert loop.value.errno == errno.ELOOP
    fs.create_symlink("/nowhere", "/dangling")
    assert not fs.file_exists("/dangling")
    # Behind a linked directory, a link at the end is itself for lstat, its target for stat.
    fs.create_symlink("f", "/real/to_f")
    assert fs.get_entry("/abs/to_f").is_link()
    assert fs.read_file("/abs/to_f") == b"through link"
    with pytest.raises(FileNotFoundError):
        fs.read_file("/abs/missing")
    with pytest.raises(NotADirectoryError):
        fs.read_file("/real/f/below")
    with pytest.raises(NotADirectoryError):
        fs.read_file("/rel/below")  # a link to a file, then more names
    fs.delete("/abs")
    assert fs.read_file("/real/f") == b"through link"
    with pytest.raises(FileExistsError):
        fs.create_symlink("/x", "/rel")
    with pytest.raises(ValueError, match="invalid symlink target ''"):
        fs.create_symlink("", "/empty")


BAD_PATH_MESSAGES = {
    "relative": "must be absolute",
    "/a/../b": r"invalid name '\.\.'",
    "/a/./b": r"invalid name '\.'",
    "/nul\x00": "may not contain NUL",
    "/" + "n" * 256: "name longer than 255 bytes",
    "/" + "d/" * 2100: "path longer than",
    "/\udcff": "not valid UTF-8",
}


@pytest.mark.parametrize(
    "bad",
    ["relative", "/a/../b", "/a/./b", "/nul\x00", "/" + "n" * 256, "/" + "d/" * 2100, "/\udcff"],
)
def test_bad_paths_are_refused_and_change_nothing(fsp: Filespace, bad: str) -> None:
    fs = fsp.fs
    before = fs.get_statistics()
    for call in (
        lambda: fs.create_dir(bad),
        lambda: fs.write_file(bad, b"x"),
        lambda: fs.get_entry(bad),
        lambda: fs.file_exists(bad),
        lambda: fs.create_symlink("/t", bad),
    ):
        with pytest.raises(ValueError, match=BAD_PATH_MESSAGES[bad]):
            call()
    assert fs.get_statistics() == before
    assert fs.list_dir("/") == []


def test_name_limits(fsp: Filespace) -> None:
    longest = "é" * 127  # 254 bytes
    fsp.fs.create_dir("/" + longest)
    assert fsp.fs.dir_exists("/" + longest)
    with pytest.raises(ValueError, match="255"):
        fsp.fs.create_dir("/" + "é" * 128)
    assert fsp.fs.dir_exists("//" + longest + "/")  # repeated and trailing slashes fold


def test_statistics_and_size(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/d")
    fs.write_file("/d/a", b"12345")
    fs.write_file("/b", b"123")
    fs.create_symlink("/d", "/s")
    stats = fs.get_statistics()
    assert stats == filespace.FilespaceStatistics(
        file_count=2,
        directory_count=1,
        symlink_count=1,
        entries_size=8,
        data_size=8,
        storage_size=8,
        external_files_count=0,
        external_files_size=0,
    )
    assert fs.get_size() == filespace.FilespaceSize(
        entries=4, data=8, storage=8, external_files_size=0, external_files_count=0
    )
    fs.move("/d/a", "/a")
    fs.delete("/b")
    stats = fs.get_statistics()
    assert (stats.file_count, stats.data_size) == (1, 5)


def test_open_handle_sees_sync_all(fsp: Filespace, tmp_path: object) -> None:
    handle = fsp.fs.open("/live", "wb")
    handle.write(b"pending")
    with filespace.open(fsp.location) as other:
        assert other.fs.get_entry("/live").size == 0
        fsp.sync_all()
        assert other.fs.read_file("/live") == b"pending"
    handle.close()


def test_flush_of_a_buffered_handle_commits(fsp: Filespace) -> None:
    for mode in ("wb", "w+b", "w"):
        handle = fsp.fs.open(f"/flushed-{mode}", mode)
        handle.write(b"data" if "b" in mode else "data")
        handle.flush()
        with filespace.open(fsp.location) as other:
            assert other.fs.read_file(f"/flushed-{mode}") == b"data"
        handle.close()
