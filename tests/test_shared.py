"""``filespace.open_shared``: one open filespace per location and options in a process."""

from __future__ import annotations

import os
from pathlib import Path

import filespace


def test_same_arguments_share_one_open_filespace(tmp_path: Path) -> None:
    location = tmp_path / "fsp"
    filespace.create(location, name="shared").close()
    first = filespace.open_shared(location)
    try:
        assert filespace.open_shared(str(location)) is first
        assert filespace.open_shared(location, cache_size_mb=0) is not first  # other options
        first.fs.write_file("/f", b"x")
        filespace.close_shared(location)
        assert first.closed
        again = filespace.open_shared(location)
        assert again is not first and again.fs.read_file("/f") == b"x"
        again.close()  # closed by its user: the next call opens a new one
        assert not filespace.open_shared(location).closed
    finally:
        filespace.close_shared()
    assert filespace.open_shared(location) is not first
    filespace.close_shared()


def test_a_forked_child_opens_its_own(tmp_path: Path) -> None:
    location = tmp_path / "fsp"
    filespace.create(location, name="shared").close()
    parent = filespace.open_shared(location)
    parent.fs.write_file("/from-parent", b"p")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        status = 1
        try:
            child = filespace.open_shared(location)
            ok = child is not parent and child.fs.read_file("/from-parent") == b"p"
            os.write(write_end, b"ok" if ok else b"same")
            filespace.close_shared()
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        answer = os.read(read_end, 16)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(read_end)
    assert answer == b"ok"
    assert os.waitstatus_to_exitcode(status) == 0
    assert not parent.closed  # the child's exit closed only its own
    assert parent.fs.read_file("/from-parent") == b"p"
    filespace.close_shared()
