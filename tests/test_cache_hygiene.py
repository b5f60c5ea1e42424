"""Cache hygiene: private cache directories, markers, ``cache_info`` and pruning (by hand,
automatically, by age, size and location), on real directories and both engines."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import filespace
from filespace import Filespace
from filespace.io.diskcache import DiskTier
from tests.fsfixtures import new_location, postgres_url
from tests.test_cache import block_files, settle

DAY = 24 * 3600.0
MiB = 1024 * 1024


def marker(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((directory / "filespace.json").read_text())
    return document


def age(directory: Path, days: float) -> None:
    """Make the cache at ``directory`` look last used ``days`` ago."""
    document = marker(directory)
    document["last_used"] = time.time() - days * DAY
    (directory / "filespace.json").write_text(json.dumps(document))


def destroy(engine: str, location: str) -> None:
    """Delete the filespace at ``location`` for good (its cache stays behind)."""
    if engine == "sqlite":
        shutil.rmtree(location)
        return
    import psycopg

    (schema,) = parse_qs(urlsplit(location).query)["schema"]
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def made(engine: str, where: Path) -> Iterator[tuple[str, str]]:
    """A new filespace on ``engine``, created and closed: its location and id."""
    with new_location(engine, where) as (location, options):
        with filespace.create(location, name="hygiene", **options) as fsp:
            made_id = fsp.id
        yield location, made_id


def expected_location(engine: str, location: str) -> str:
    return os.path.abspath(location) if engine == "sqlite" else filespace.public_location(location)


# -- the directory and its marker --------------------------------------------------------
def test_a_cache_directory_is_private_and_says_whose_it_is(
    fsp: Filespace, engine_name: str, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    location = fsp.location
    with filespace.open(location, cache_dir=root, cache_size_mb=7) as opened:
        directory = root / opened.id
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE((directory / "filespace.json").stat().st_mode) == 0o600
        written = marker(directory)
        assert written["filespace_id"] == opened.id and written["budget_mb"] == 7
        assert written["location"] == expected_location(engine_name, location)
        (info,) = filespace.cache_info(root)
        assert info.filespace_id == opened.id and info.directory == str(directory)
        assert info.in_use and info.refused is None and info.budget_mb == 7
        assert time.time() - info.last_used < DAY
        assert filespace.prune_caches(0, everything=True, cache_dir=root) == []
        assert directory.is_dir()
    (info,) = filespace.cache_info(root)
    assert not info.in_use
    (pruned,) = filespace.prune_caches(everything=True, cache_dir=root)
    assert pruned.reason == "not in use" and pruned.cache.filespace_id == info.filespace_id
    assert not directory.exists() and filespace.cache_info(root) == []


def test_the_marker_keeps_no_password(tmp_path: Path) -> None:
    from tests.test_locations import PASSWORD, with_password

    with new_location("postgresql", tmp_path) as (plain, options):
        url = with_password(plain)
        with filespace.create(url, name="pw", **options) as fsp:
            text = (filespace.cache_root() / fsp.id / "filespace.json").read_text()
    assert PASSWORD not in text
    assert json.loads(text)["location"] == filespace.public_location(url)


def test_no_cache_directory_without_a_disk_tier(fsp: Filespace, tmp_path: Path) -> None:
    with filespace.open(fsp.location, cache_dir=tmp_path / "root", cache_size_mb=0):
        pass
    assert not (tmp_path / "root").exists()


# -- pruning -----------------------------------------------------------------------------
def test_caches_of_filespaces_that_are_gone_are_pruned(engine_name: str, tmp_path: Path) -> None:
    root = filespace.cache_root()
    with (
        made(engine_name, tmp_path / "kept") as (_, kept),
        made(engine_name, tmp_path / "gone") as (gone_at, gone),
        made(engine_name, tmp_path / "other") as (other_at, replaced),
    ):
        destroy(engine_name, gone_at)
        destroy(engine_name, other_at)
        options = {} if engine_name == "sqlite" else {"data": (tmp_path / "b2").as_uri()}
        with filespace.create(other_at, name="new", **options) as new:
            newer = new.id
        assert {c.filespace_id for c in filespace.cache_info()} == {kept, gone, replaced, newer}
        dry = filespace.prune_caches(dry_run=True)
        gone_public = expected_location(engine_name, gone_at)
        other_public = expected_location(engine_name, other_at)
        assert sorted((p.cache.filespace_id, p.reason) for p in dry) == sorted(
            [
                (gone, f"no filespace at {gone_public} any more"),
                (replaced, f"{other_public} holds another filespace now"),
            ]
        )
        assert (root / gone).is_dir() and (root / replaced).is_dir()
        assert filespace.prune_caches() == dry
        assert not (root / gone).exists() and not (root / replaced).exists()
        assert {c.filespace_id for c in filespace.cache_info()} == {kept, newer}
        # Without asking the locations, nothing that young goes.
        assert filespace.prune_caches(check_locations=False) == []


def test_old_caches_go_and_everything_on_request(tmp_path: Path) -> None:
    root = filespace.cache_root()
    ids = {}
    for name, days in (("old", 40), ("week", 7), ("new", 0)):
        with made("sqlite", tmp_path / name) as (_, made_id):
            ids[name] = made_id
        age(root / made_id, days)
    legacy = root / "0b1d-made-by-an-older-version"  # no marker: its mtime says when
    (legacy / "v1").mkdir(parents=True, mode=0o700)
    os.chmod(legacy, 0o700)
    os.utime(legacy, (time.time() - 50 * DAY,) * 2)
    (root / "mounts").mkdir(mode=0o700)  # not a cache
    (old,) = [p for p in filespace.prune_caches() if p.cache.filespace_id == ids["old"]]
    assert old.reason == "unused for 40 days"
    assert not legacy.exists() and not (root / ids["old"]).exists()
    (week,) = filespace.prune_caches(5)
    assert week.cache.filespace_id == ids["week"] and week.reason == "unused for 7 days"
    (new,) = filespace.prune_caches(everything=True)
    assert new.cache.filespace_id == ids["new"]
    assert sorted(os.listdir(root)) == [".pruned", "mounts"]


def test_a_cache_in_use_in_another_process_is_never_pruned(tmp_path: Path) -> None:
    with made("sqlite", tmp_path / "space") as (location, made_id):
        holder = textwrap.dedent(
            f"""
            import sys, filespace
            with filespace.open({location!r}):
                print("open", flush=True)
                sys.stdin.read()
            """
        )
        with subprocess.Popen(
            [sys.executable, "-c", holder],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            assert child.stdout is not None
            assert child.stdout.readline() == "open\n"
            age(filespace.cache_root() / made_id, 100)
            assert filespace.prune_caches(0, everything=True) == []
            (info,) = filespace.cache_info()
            assert info.in_use
            child.communicate("", timeout=60)
        assert child.returncode == 0
        (pruned,) = filespace.prune_caches(everything=True)
        assert pruned.cache.filespace_id == made_id


def test_caches_are_pruned_and_trimmed_automatically_once_a_day(tmp_path: Path) -> None:
    root = filespace.cache_root()
    with made("sqlite", tmp_path / "old") as (old_at, old):
        pass
    with filespace.open(old_at, cache_size_mb=1):  # its budget is now 1 MiB
        pass
    with made("sqlite", tmp_path / "opener") as (opener, _):
        pass
    blocks = root / old / "v1" / "ab"
    blocks.mkdir(parents=True, mode=0o700)
    for index in range(10):  # 2 MiB of blocks, the oldest first
        block = blocks / f"ab{'0' * 30}.{index}"
        block.write_bytes(b"b" * (200 * 1024))
        os.utime(block, (time.time() - 100 + index,) * 2)
    stamp = root / ".pruned"
    os.utime(stamp, (time.time() - 2 * DAY,) * 2)
    with filespace.open(opener):
        pass
    assert sorted(p.name for p in blocks.iterdir()) == [f"ab{'0' * 30}.{i}" for i in range(6, 10)]
    assert time.time() - stamp.stat().st_mtime < DAY

    age(root / old, 40)
    with filespace.open(opener):  # pruned less than a day ago: not again
        pass
    assert (root / old).exists()
    os.utime(stamp, (time.time() - 2 * DAY,) * 2)
    with filespace.open(opener):
        pass
    assert not (root / old).exists()


def test_prune_checks_its_arguments_and_the_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="older_than_days must be >= 0"):
        filespace.prune_caches(-1)
    with pytest.raises(TypeError, match="older_than_days must be a number"):
        filespace.prune_caches("30")  # type: ignore[arg-type]
    root = tmp_path / "shared"
    root.mkdir(mode=0o700)
    os.chmod(root, 0o777)  # noqa: S103 - the unsafe root under test
    with pytest.raises(PermissionError, match="cache root refused") as caught:
        filespace.prune_caches(everything=True, cache_dir=root)
    assert caught.value.filename == str(root)


# -- directories that are not private ------------------------------------------------------
@pytest.fixture
def linked(connected: Filespace, s3_admin: Any, bucket: str) -> tuple[Filespace, bytes]:
    data = os.urandom(3 * MiB + 5)
    s3_admin.put_object(Bucket=bucket, Key="c.bin", Body=data)
    connected.connect.link_file("/c.bin", "store", "c.bin")
    return connected, data


def _poison(directory: Path) -> None:
    """Replace every block under ``directory`` with one of other bytes and a valid CRC."""
    for path in block_files(directory):
        namespace, _, index = path.name.partition(".")
        size = path.stat().st_size - 48
        DiskTier(path.parent.parent, 1 << 40).put(namespace, int(index), memoryview(b"X" * size))


@pytest.mark.parametrize("how", ["mode", "owner", "root"])
def test_a_cache_directory_others_could_write_is_refused(
    linked: tuple[Filespace, bytes], tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    fsp, data = linked
    root = tmp_path / "root"
    with filespace.open(fsp.location, cache_dir=root) as private:
        assert private.fs.read_file("/c.bin") == data
        settle(root, 1)
    directory = root / fsp.id
    _poison(directory)
    with filespace.open(fsp.location, cache_dir=root) as trusting:
        # Why the rules exist: a block in a private directory is trusted as it is.
        assert trusting.fs.read_file("/c.bin") != data
    if how == "mode":
        os.chmod(directory, 0o755)  # noqa: S103 - the unsafe directory under test
    elif how == "owner":
        if os.geteuid() != 0:
            pytest.skip("only root can give a directory to another user")
        os.chown(directory, 65534, 65534)
    else:
        os.chmod(root, 0o777)  # noqa: S103 - the unsafe root under test
    refused = root if how == "root" else directory
    caplog.set_level(logging.WARNING, logger="filespace")
    for _ in range(2):
        with filespace.open(fsp.location, cache_dir=root) as careful:
            assert careful.fs.read_file("/c.bin") == data
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{refused}: cache directory refused")
    assert warnings[0].endswith("reading without the disk cache")
    assert (filespace.cache_info(root)[0].refused is None) == (how == "root")


# -- the command line ----------------------------------------------------------------------
def test_cache_commands(tmp_path: Path) -> None:
    from tests.cli_helpers import new_cli

    cli = new_cli(tmp_path)
    cli.ok("init", str(cli.location))
    root = cli.home / "cache"  # FILESPACE_CACHE_DIR of the CLI's runs
    doc = cli.ok("cache", "info", "--json").json()
    (cache,) = doc["caches"]
    assert doc["root"] == str(root)
    assert cache["location"] == str(cli.location) and not cache["in_use"]
    assert cache["size"] == 0 and cache["blocks"] == 0 and cache["refused"] is None
    with filespace.open(cli.location, cache_dir=root):
        text = cli.ok("cache", "info").out
        assert f"cache root: {root}" in text and "in use" in text
        kept = cli.ok("cache", "prune", "--all")
        assert kept.out == "removed 0 caches, 0 B\n"
    would = cli.ok("cache", "prune", "--all", "--dry-run").out
    assert would.startswith(f"would remove {cache['filespace_id']} (0 B, {cli.location}): ")
    assert (root / cache["filespace_id"]).is_dir()
    gone = cli.ok("cache", "prune", "--all", "--json").json()
    assert [p["reason"] for p in gone["pruned"]] == ["not in use"] and not gone["dry_run"]
    assert cli.ok("cache", "info").out == f"cache root: {root}\nno caches\n"
    cli.usage_error("cache", "prune", "--older-than", "-1")
    os.chmod(root, 0o777)  # noqa: S103 - the unsafe root under test
    refused = cli.fails("cache", "prune")
    assert "cache root refused (mode 0777: writable by group or others)" in refused.err
