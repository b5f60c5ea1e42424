"""Work done in separate OS processes by the many-clients tests (must be importable)."""

from __future__ import annotations

from multiprocessing.synchronize import Barrier, Event

import filespace


def link_same_path(location: str, barrier: Barrier, path: str) -> str:
    """Try to link ``path``; return "won" or the error class name."""
    with filespace.open(location) as fsp:
        barrier.wait()
        try:
            fsp.connect.link_file(path, "store", "key", size=1, checksum="etag")
        except filespace.LinkExistsError:
            return "LinkExistsError"
        return "won"


def move_dir(location: str, barrier: Barrier, src: str, dst: str) -> str:
    """Try one directory move; return "moved" or the errno."""
    with filespace.open(location) as fsp:
        barrier.wait()
        try:
            fsp.fs.move(src, dst)
        except OSError as exc:
            return f"errno {exc.errno}"
        return "moved"


def link_many(location: str, barrier: Barrier, prefix: str, count: int) -> dict[str, int]:
    """Link ``count`` files under a fresh directory; count outcomes."""
    outcomes = {"linked": 0, "store gone": 0}
    with filespace.open(location) as fsp:
        fsp.fs.create_dir(prefix)
        barrier.wait()
        for index in range(count):
            try:
                fsp.connect.link_file(f"{prefix}/f{index}", "store", f"k{index}", 1, "e")
            except filespace.DataStoreNotFoundError:
                outcomes["store gone"] += 1
            else:
                outcomes["linked"] += 1
    return outcomes


def remove_store_repeatedly(location: str, barrier: Barrier, done: Event) -> str:
    """Try to remove the store until it goes or ``done`` is set (at least once)."""
    with filespace.open(location) as fsp:
        barrier.wait()
        while True:
            try:
                fsp.connect.remove_data_store("store")
            except filespace.DataStoreNotEmptyError:
                if done.is_set():
                    return "refused"
                continue
            return "removed"


def read_repeatedly(location: str, barrier: Barrier, path: str, done: Event) -> int:
    """Read ``path`` over and over until ``done`` is set; how many whole reads matched."""
    good = 0
    with filespace.open(location) as fsp:
        expected = fsp.fs.read_file(path)
        barrier.wait()
        while not done.is_set() or good == 0:
            assert fsp.fs.read_file(path) == expected
            good += 1
    return good


def mirror_once(location: str, barrier: Barrier, prefix: str, dest: str) -> tuple[int, int]:
    """Run one mirror; return (added + updated + unchanged, removed)."""
    with filespace.open(location) as fsp:
        barrier.wait()
        report = fsp.connect.mirror("store", prefix, dest)
        return report.added + report.updated + report.unchanged, report.removed
