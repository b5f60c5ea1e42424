"""Directories read a page at a time: ``fs.scan_dir``, the engine's pages and the
mount's ``readdir`` (called here as the kernel would, without mounting)."""

from __future__ import annotations

import errno
import stat
import time

import pytest

from filespace import Filespace
from filespace.fuse.operations import _DIR_PAGE, FilespaceOperations


def _fill(fsp: Filespace, directory: str, count: int) -> list[str]:
    """``count`` files (and a sub-directory and a symlink) in ``directory``; their names."""
    fsp.fs.create_dir(directory, parents=True)
    names = [f"n{number:05}" for number in range(count)]
    engine = fsp._engine  # type: ignore[attr-defined]
    parent = fsp.fs.get_entry(directory).file_id_external
    for name in names:
        engine.create(parent, name, "file", time.time_ns())
    fsp.fs.create_dir(f"{directory}/sub")
    fsp.fs.create_symlink("sub", f"{directory}/zlink")
    return sorted([*names, "sub", "zlink"])


def test_scan_dir_reads_pages_in_name_order(fsp: Filespace) -> None:
    names = _fill(fsp, "/d", 25)
    assert [entry.name for entry in fsp.fs.scan_dir("/d", page=4)] == names
    assert [entry.name for entry in fsp.fs.scan_dir("/d", page=None)] == names
    assert [entry.name for entry in fsp.fs.scan_dir("/d", after="n00020", page=3)] == names[21:]
    assert fsp.fs.list_dir("/d") == names
    pages = fsp.fs.scan_dir("/d", page=10)
    first = [next(pages).name for _ in range(10)]
    fsp.fs.delete("/d/n00003")  # behind the reader: the next page is unaffected
    assert first + [entry.name for entry in pages] == names
    entry = next(e for e in fsp.fs.scan_dir("/d", after="n00024") if e.name == "sub")
    assert entry.is_dir()


def test_scan_dir_refuses_what_read_dir_refuses(fsp: Filespace) -> None:
    fsp.fs.write_file("/f", b"x")
    with pytest.raises(NotADirectoryError):
        fsp.fs.scan_dir("/f")
    with pytest.raises(FileNotFoundError):
        fsp.fs.scan_dir("/missing")
    for page in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="page"):
            fsp.fs.scan_dir("/", page=page)  # type: ignore[arg-type]


def _kernel_listing(ops: FilespaceOperations, path: str, keep: int) -> list[tuple[str, int]]:
    """List ``path`` as the kernel does: each call keeps ``keep`` entries, then resumes."""
    fh = ops.opendir(path)
    seen: list[tuple[str, int]] = []
    offset = 0
    try:
        while True:
            page = ops.readdir_with_offset(path, offset, fh)
            if not page:
                return seen
            assert len(page) <= _DIR_PAGE + 2
            for name, mode, at in page[:keep]:
                seen.append((name, mode))
                offset = at
            assert len(ops._listings[fh].entries) <= _DIR_PAGE + 1  # one page, never all
    finally:
        ops.releasedir(path, fh)
        assert fh not in ops._listings


@pytest.mark.parametrize("keep", [1000, 37])
def test_the_mount_lists_a_directory_a_page_at_a_time(fsp: Filespace, keep: int) -> None:
    names = _fill(fsp, "/big", 2 * _DIR_PAGE + 100)
    ops = FilespaceOperations(fsp)
    reads: list[str] = []
    scan_dir = ops._fs.scan_dir

    def counted(path: str, **options: object) -> object:
        reads.append(path)
        return scan_dir(path, **options)  # type: ignore[arg-type]

    ops._fs.scan_dir = counted  # type: ignore[method-assign]
    listing = _kernel_listing(ops, "/big", keep)
    assert [name for name, _ in listing] == [".", "..", *names]
    # Small requests are served from the page in hand: one engine read per page.
    assert len(reads) == -(-len(names) // _DIR_PAGE)
    modes = dict(listing)
    assert modes["sub"] == stat.S_IFDIR and modes["zlink"] == stat.S_IFLNK
    assert modes["n00000"] == stat.S_IFREG


def test_the_mount_refuses_bad_directory_handles(fsp: Filespace) -> None:
    ops = FilespaceOperations(fsp)
    fsp.fs.write_file("/f", b"x")
    with pytest.raises(NotADirectoryError) as info:
        ops.opendir("/f")
    assert info.value.errno == errno.ENOTDIR
    with pytest.raises(OSError, match="Bad file descriptor") as bad:
        ops.readdir_with_offset("/", 0, 12345)
    assert bad.value.errno == errno.EBADF
    fh = ops.opendir("/")
    with pytest.raises(OSError, match="unknown directory offset") as unknown:
        ops.readdir_with_offset("/", 999, fh)
    assert unknown.value.errno == errno.EINVAL


def test_a_listing_with_attributes_gives_what_getattr_gives(fsp: Filespace) -> None:
    """``READDIRPLUS``: each entry comes with the attributes a ``getattr`` would return."""
    names = _fill(fsp, "/plus", 40)
    fsp.fs.write_file("/plus/n00007", b"seven")
    ops = FilespaceOperations(fsp)
    fh = ops.opendir("/plus")
    try:
        page = ops.readdir_plus("/plus", 0, fh)
    finally:
        ops.releasedir("/plus", fh)
    assert [name for name, _, _ in page] == [".", "..", *names]
    assert [attributes for _, attributes, _ in page[:2]] == [None, None]
    fresh = FilespaceOperations(fsp)  # nothing listed: every getattr asks the engine
    for name, attributes, _ in page[2:]:
        assert attributes == fresh.getattr(f"/plus/{name}"), name
    assert dict((n, a) for n, a, _ in page[2:])["n00007"]["st_size"] == 5  # type: ignore[index]
