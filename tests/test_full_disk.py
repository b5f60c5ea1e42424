"""Full disks, for real: the block cache and a SQLite filespace on a small tmpfs mounted by
the test (root only; skipped, saying why, where mounting is not allowed)."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import Filespace
from filespace.io.diskcache import HEADER_SIZE, DiskTier
from tests.fsfixtures import store_config
from tests.test_cache import block_files

MiB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs of the test's own."""
    where = tmp_path / "small"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(disk: Path, *, leave: int = 0) -> Path:
    """Fill ``disk`` up, leaving about ``leave`` bytes free; the filler file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        chunk = b"\0" * (64 * 1024)
        while True:
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            if free <= leave:
                break
            os.write(fd, chunk[: max(1, min(len(chunk), free - leave))])
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    return filler


def make_dirs(fsp: Filespace, count: int) -> None:
    for index in range(count):
        fsp.fs.create_dir(f"/d/sub{index}")


# -- the block cache on a full disk --------------------------------------------------------
def test_reads_go_on_without_a_full_cache_disk(
    connected: Filespace,
    s3_admin: Any,
    bucket: str,
    small_disk: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = os.urandom(6 * MiB + 7)
    s3_admin.put_object(Bucket=bucket, Key="big.bin", Body=data)
    connected.connect.link_file("/big.bin", "store", "big.bin")
    fill(small_disk, leave=MiB)  # room for a few blocks, not all
    caplog.set_level(logging.WARNING, logger="filespace")
    for _ in range(2):
        with filespace.open(connected.location, cache_dir=small_disk) as fsp:
            assert fsp.fs.read_file("/big.bin") == data
            with fsp.fs.open("/big.bin", "rb") as handle:
                for offset in range(len(data) - 1000, 0, -777_777):
                    handle.seek(offset)
                    assert handle.read(1000) == data[offset : offset + 1000]
            assert fsp.fs._cache.flush(30)  # type: ignore[attr-defined]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "the disk cache stopped (No space left on device)" in warnings[0]
    assert warnings[0].endswith("reading without the disk cache")
    assert str(small_disk) in warnings[0]
    # What did reach the disk is whole: every block file checks out, no temporary is left.
    files = [p for p in block_files(small_disk) if p.parent.parent.name == "v1"]
    assert files, "some blocks fitted"
    for path in files:
        namespace, _, index = path.name.partition(".")
        length = path.stat().st_size - HEADER_SIZE
        assert DiskTier(path.parent.parent, 1 << 40).get(namespace, int(index), length)
    assert not [p for p in small_disk.rglob(".tmp.*")]


# -- a SQLite filespace on a full disk ----------------------------------------------------
def test_a_full_disk_fails_writes_and_links_whole(
    small_disk: Path, s3_server: Any, s3_admin: Any, bucket: str
) -> None:
    location = small_disk / "space"
    s3_admin.put_object(Bucket=bucket, Key="obj", Body=b"object bytes")
    with filespace.create(location, name="tiny") as fsp:
        fsp.connect.enable()
        fsp.connect.add_data_store("store", store_config(s3_server, bucket))
        fsp.fs.write_file("/old", b"old bytes")
        fsp.fs.create_dir("/d")
    with filespace.open(location) as fsp:
        filler = fill(small_disk, leave=2 * MiB)  # the next big write runs out of room
        before = fsp.fs.get_statistics()
        big = os.urandom(3 * MiB)
        for path in ("/new", "/old"):
            with pytest.raises(OSError, match="no space left on device for the filespace") as e:
                fsp.fs.write_file(path, big)
            assert e.value.errno == errno.ENOSPC
            assert e.value.filename.startswith(str(location))
        assert sorted(fsp.fs.list_dir("/")) == ["d", "old"]
        assert fsp.fs.read_file("/old") == b"old bytes"
        assert fsp.fs.get_statistics() == before
        stored = [p for p in (location / "blocks").rglob("*") if p.is_file()]
        assert len([p for p in stored if not p.name.startswith(".")]) == 1  # /old's only

        fill(small_disk)  # now the metadata cannot grow either
        with pytest.raises(OSError, match="no space left on device for the filespace") as e:
            fsp.connect.link_file("/d/obj", "store", "obj")
        assert e.value.errno == errno.ENOSPC and e.value.filename.startswith(str(location))
        with pytest.raises(OSError, match="no space left") as e:
            make_dirs(fsp, 10_000)
        assert e.value.errno == errno.ENOSPC
        assert not fsp.fs.exists("/d/obj")
        assert fsp.connect.count_external_files("store") == 0
    filler.unlink()
    with filespace.open(location) as fsp:  # opens and works once there is room again
        fsp.fs.write_file("/new", big)
        fsp.connect.link_file("/d/obj", "store", "obj")
        assert fsp.fs.read_file("/new") == big and fsp.fs.read_file("/d/obj") == b"object bytes"
        assert fsp.fs.read_file("/old") == b"old bytes"
        stats = fsp.fs.get_statistics()
        assert stats.external_files_count == 1 == fsp.connect.count_external_files("store")
        assert stats.data_size == len(big) + len(b"old bytes")
