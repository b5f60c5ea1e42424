"""The operations the interfaces (CLI, fsspec, FUSE) share: each one library call.

``mkdir -p``, counting and removing a tree, walking, existence and ``stat``-style
lookups live in ``fsp.fs`` once, so the command line, fsspec and the mount
cannot drift apart. Each runs against every engine.
"""

from __future__ import annotations

import errno

import pytest

from filespace import Filespace


def _statistics(fsp: Filespace) -> tuple[int, int]:
    stats = fsp.fs.get_statistics()
    return stats.directory_count, stats.file_count


def test_create_dir_with_parents_makes_every_missing_ancestor(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/a")
    assert fs.create_dir("/a/b/c", parents=True) == ["/a/b", "/a/b/c"]
    assert fs.dir_exists("/a/b/c")
    assert fs.create_dir("/a/b/c", parents=True) == []  # already there: no error
    assert fs.create_dir("/", parents=True) == []
    assert _statistics(fsp) == (3, 0)


def test_create_dir_with_parents_follows_symlinks_on_the_way(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/real")
    fs.create_symlink("/real", "/alias")
    assert fs.create_dir("/alias/x/y", parents=True) == ["/alias/x", "/alias/x/y"]
    assert fs.dir_exists("/real/x/y")


def test_create_dir_with_parents_refuses_a_file_in_the_way(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.write_file("/f", b"data")
    with pytest.raises(FileExistsError) as raised:
        fs.create_dir("/f/x/y", parents=True)
    assert raised.value.filename == "/f"
    fs.create_symlink("/nowhere", "/dangling")
    with pytest.raises(FileExistsError):
        fs.create_dir("/dangling/x", parents=True)
    assert _statistics(fsp) == (0, 1)  # nothing was made


def test_create_dir_dry_run_changes_nothing(fsp: Filespace) -> None:
    fs = fsp.fs
    assert fs.create_dir("/p/q", parents=True, dry_run=True) == ["/p", "/p/q"]
    assert fs.create_dir("/p", dry_run=True) == ["/p"]
    assert not fs.exists("/p")
    fs.create_dir("/p")
    with pytest.raises(FileExistsError):
        fs.create_dir("/p", dry_run=True)
    with pytest.raises(FileNotFoundError) as raised:
        fs.create_dir("/missing/child", dry_run=True)
    assert "parent directory does not exist" in str(raised.value)
    assert _statistics(fsp) == (1, 0)


def test_walk_lists_everything_depth_first_without_following_links(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/t/b/deep", parents=True)
    fs.create_dir("/t/a")
    fs.write_file("/t/a/f", b"1")
    fs.write_file("/t/z", b"2")
    fs.create_symlink("/t", "/t/b/loop")  # a link to an ancestor must not be descended
    walked = [(path, entry.type) for path, entry in fs.walk("/t")]
    assert walked == [
        ("/t/a", "dir"),
        ("/t/b", "dir"),
        ("/t/z", "file"),
        ("/t/a/f", "file"),
        ("/t/b/deep", "dir"),
        ("/t/b/loop", "link"),
    ]
    assert list(fs.walk("/t/b/deep")) == []
    with pytest.raises(NotADirectoryError):
        list(fs.walk("/t/z"))


def test_exists_and_get_entry_following_symlinks(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.write_file("/target", b"12345")
    fs.create_symlink("/target", "/link")
    fs.create_symlink("/gone", "/dangling")
    assert fs.exists("/target") and fs.exists("/link") and fs.exists("/dangling")
    assert not fs.exists("/nope") and not fs.exists("/target/below")
    assert fs.get_entry("/link").is_link()
    followed = fs.get_entry("/link", follow_symlinks=True)
    assert followed.is_file() and followed.size == 5
    with pytest.raises(FileNotFoundError):
        fs.get_entry("/dangling", follow_symlinks=True)
    with pytest.raises(ValueError, match="absolute"):
        fs.exists("relative")


def test_delete_dir_counts_what_goes_and_dry_run_keeps_it(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/d/e", parents=True)
    fs.write_file("/d/e/f", b"x")
    fs.write_file("/d/g", b"y")
    assert fs.delete_dir("/d", recursive=True, dry_run=True) == 3
    assert fs.exists("/d/e/f")
    with pytest.raises(OSError, match="directory not empty") as raised:
        fs.delete_dir("/d")
    assert raised.value.errno == errno.ENOTEMPTY
    assert fs.delete_dir("/d", recursive=True) == 3
    assert not fs.exists("/d")
    fs.create_dir("/empty")
    assert fs.delete_dir("/empty") == 0
    assert _statistics(fsp) == (0, 0)


def test_move_dry_run_checks_without_moving(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/src/inner", parents=True)
    fs.write_file("/taken", b"")
    fs.move("/src", "/dst", dry_run=True)
    assert fs.exists("/src") and not fs.exists("/dst")
    with pytest.raises(FileExistsError):
        fs.move("/src", "/taken", dry_run=True)
    with pytest.raises(OSError, match="cannot move a directory into itself") as raised:
        fs.move("/src", "/src/inner/deeper", dry_run=True)
    assert raised.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        fs.move("/missing", "/x", dry_run=True)
    assert fs.exists("/src/inner")


def test_move_with_replace_is_one_rename_as_posix_has_it(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.write_file("/new", b"new bytes")
    fs.write_file("/old", b"old bytes that go")
    with pytest.raises(FileExistsError):
        fs.move("/new", "/old")
    fs.move("/new", "/old", replace=True)
    assert fs.read_file("/old") == b"new bytes" and not fs.exists("/new")
    stats = fs.get_statistics()
    assert (stats.file_count, stats.data_size) == (1, len(b"new bytes"))
    fs.move("/old", "/old", replace=True)  # onto itself: nothing happens
    assert fs.read_file("/old") == b"new bytes"


def test_move_with_replace_keeps_the_posix_rules(fsp: Filespace) -> None:
    fs = fsp.fs
    fs.create_dir("/d/inner", parents=True)
    fs.create_dir("/empty")
    fs.create_dir("/full/x", parents=True)
    fs.write_file("/f", b"f")
    cases = [
        ("/f", "/empty", errno.EISDIR, IsADirectoryError, "is a directory"),
        ("/d", "/f", errno.ENOTDIR, NotADirectoryError, "not a directory"),
        ("/d", "/full", errno.ENOTEMPTY, OSError, "directory not empty"),
    ]
    for src, dst, code, error, message in cases:
        for dry_run in (True, False):
            with pytest.raises(error, match=message) as raised:
                fs.move(src, dst, replace=True, dry_run=dry_run)
            assert raised.value.errno == code, (src, dst, dry_run)
    fs.move("/d", "/empty", replace=True, dry_run=True)
    assert fs.exists("/d")
    fs.move("/d", "/empty", replace=True)
    assert fs.dir_exists("/empty/inner") and not fs.exists("/d")
    assert fs.get_statistics().directory_count == 4  # /empty, /empty/inner, /full, /full/x


def test_check_writable_is_the_dry_run_of_a_write(connected: Filespace) -> None:
    fs = connected.fs
    fs.create_dir("/d")
    fs.write_file("/d/native", b"x")
    connected.connect.link_file("/d/linked", "store", "key", 3, "etag")
    fs.check_writable("/d/native")
    fs.check_writable("/d/new")  # would be made
    assert not fs.exists("/d/new")
    with pytest.raises(IsADirectoryError):
        fs.check_writable("/d")
    with pytest.raises(PermissionError) as raised:  # ReadOnlyFileError, EROFS
        fs.check_writable("/d/linked")
    assert raised.value.errno == errno.EROFS
    with pytest.raises(FileNotFoundError):
        fs.check_writable("/missing/f")
    with pytest.raises(NotADirectoryError):
        fs.check_writable("/d/native/f")
    assert fs.read_file("/d/native") == b"x"
