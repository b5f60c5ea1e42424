"""Full disks, for real: the block cache and a SQLite filespace on a small tmpfs mounted by
the test (root only; skipped, saying why, where mounting is not allowed)."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import filespace
from filespace import Filespace
from filespace.io.diskcache import HEADER_SIZE, DiskTier
from tests.fsfixtures import postgres_schema_url, postgres_url, store_config
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


# -- a PostgreSQL filespace whose tables sit on a full disk ---------------------------------
@pytest.fixture
def full_tablespace(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A tablespace on an 8 MiB tmpfs of the test's own: its name and directory."""
    import pwd

    import psycopg

    base = postgres_url()
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user here: the server's tablespace cannot be put on a tmpfs")
    where = Path(tempfile.mkdtemp(prefix="fs-full-", dir="/tmp"))
    os.chmod(where, 0o711)  # noqa: S103 - the server's user must reach the directory
    disk = where / "disk"
    disk.mkdir()
    options = f"size=8m,mode=0700,uid={owner.pw_uid},gid={owner.pw_gid}"
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        shutil.rmtree(where)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    name = f"fs_full_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            try:
                conn.execute(f"CREATE TABLESPACE {name} LOCATION '{disk}'")
            except psycopg.Error as exc:
                pytest.skip(f"the PostgreSQL server cannot use a tablespace here: {exc}")
        try:
            yield name, disk
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f"DROP TABLESPACE IF EXISTS {name}")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
        shutil.rmtree(where)


def test_a_full_postgresql_disk_fails_links_whole(
    full_tablespace: tuple[str, Path], tmp_path: Path, s3_server: Any, s3_admin: Any, bucket: str
) -> None:
    import psycopg

    name, disk = full_tablespace
    s3_admin.put_object(Bucket=bucket, Key="obj", Body=b"object bytes")
    with postgres_schema_url() as url:
        blocks = (tmp_path / "blocks").as_uri()
        with filespace.create(url, name="tiny-pg", data=blocks) as fsp:
            fsp.connect.enable()
            fsp.connect.add_data_store("store", store_config(s3_server, bucket))
            fsp.fs.create_dir("/d")
        schema = parse_qs(urlsplit(url).query)["schema"][0]
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            for (table,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall():
                conn.execute(f'ALTER TABLE "{schema}"."{table}" SET TABLESPACE {name}')
            for (index,) in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)
            ).fetchall():
                conn.execute(f'ALTER INDEX "{schema}"."{index}" SET TABLESPACE {name}')
        filler = fill(disk)
        with filespace.open(url) as fsp:
            with pytest.raises(OSError, match="no space left on device on the PostgreSQL") as e:
                make_dirs(fsp, 100_000)  # until the pages there were are full
            assert e.value.errno == errno.ENOSPC
            assert e.value.filename == filespace.public_location(fsp.location)
            made = len(fsp.fs.list_dir("/d"))
            assert fsp.fs.get_statistics().directory_count == 1 + made  # nothing half-counted
            with pytest.raises(OSError, match="no space left on device") as e:
                fsp.connect.link_file("/obj", "store", "obj")
            assert e.value.errno == errno.ENOSPC
            assert not fsp.fs.exists("/obj") and fsp.connect.count_external_files("store") == 0
        filler.unlink()
        with filespace.open(url) as fsp:  # opens and works once there is room again
            fsp.connect.link_file("/obj", "store", "obj")
            fsp.fs.write_file("/native", b"native bytes")
            assert fsp.fs.read_file("/obj") == b"object bytes"
            assert fsp.fs.read_file("/native") == b"native bytes"
            assert fsp.fs.get_statistics().external_files_count == 1
