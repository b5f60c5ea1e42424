"""Locations: their one public form, the errors of bad ones, and what ``create`` leaves.

PostgreSQL tests put a password in the URL (``PASSWORD``): the local test
server trusts loopback connections and ignores it, so the filespace works and
every repr, message, log record and line of output can be searched for it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import filespace
from filespace import keys
from filespace.meta.pgconnect import lasting_error
from filespace.testing import SeaweedS3
from tests import leakguard, requirements
from tests.cli_helpers import new_cli
from tests.fsfixtures import postgres_schema_url, postgres_url
from tests.test_blocks import s3_data

pytest_plugins = ["tests.cli_helpers"]

PASSWORD = "S3cretPw"  # the test's own, searched for in everything shown
leakguard.remember(PASSWORD)


def with_password(url: str, password: str = PASSWORD) -> str:
    """``url`` with ``password`` in its user part (the test server ignores it)."""
    parts = urlsplit(url)
    if not parts.username:
        requirements.skip("postgresql", "the test PostgreSQL URL names no user to give a password")
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:{password}@{host}"))


@contextmanager
def password_url() -> Iterator[str]:
    """A fresh schema's URL with ``PASSWORD`` in it; the schema is dropped after."""
    with postgres_schema_url() as url:
        yield with_password(url)


def other_database(name: str) -> str:
    """The test server's URL (with ``PASSWORD``) naming database ``name`` instead."""
    parts = urlsplit(with_password(postgres_url()))
    return urlunsplit(parts._replace(path=f"/{name}", query=""))


def key_files() -> list[Path]:
    """Every key file of this test's isolated config directory."""
    folder = keys.config_dir() / "keys"
    return sorted(folder.iterdir()) if folder.exists() else []


def schema_tables(url: str) -> list[str]:
    """The tables of the schema a test URL names."""
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(postgres_url()) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return [row[0] for row in rows]


# -- one public form -----------------------------------------------------------------------
def test_public_location_drops_only_the_password() -> None:
    public = filespace.public_location
    assert public("postgresql://u:pw@h:5432/db?schema=s") == "postgresql://u@h:5432/db?schema=s"
    assert public("postgresql://u:p%40w@h/db") == "postgresql://u@h/db"
    assert public("postgresql://u:p@w@h/db") == "postgresql://u@h/db"  # an unencoded @
    assert public("postgresql://u@h/db?password=pw&sslmode=require") == (
        "postgresql://u@h/db?sslmode=require"
    )
    assert public("postgresql://u@h/db?sslpassword=pw") == "postgresql://u@h/db"
    assert public("postgresql://u:pw@h:99999/db") == "postgresql://u@h:99999/db"  # never raises
    assert public("postgresql://u:pw@[::1/db") == "postgresql://u@[::1/db"
    assert public("mysql://u:pw@h/db") == "mysql://u@h/db"
    assert public("/a/b:c@d") == "/a/b:c@d"  # a path is not a URL
    assert public(Path("/x/y")) == "/x/y"
    assert public("sqlite:///x/meta.db") == "sqlite:///x/meta.db"


def test_a_multi_host_url_reaches_libpq_whole_and_is_shown_without_its_password() -> None:
    from psycopg.conninfo import conninfo_to_dict

    from filespace.meta.postgres import PostgresDialect, split_url

    both = "127.0.0.1:5432,[::1]:5433"
    for url, public in (
        (
            f"postgresql://u:{PASSWORD}@{both}/db?target_session_attrs=read-write&schema=s",
            f"postgresql://u@{both}/db?schema=s",
        ),
        (
            f"postgresql://u:{PASSWORD}@/db?host=127.0.0.1,::1&port=5432,5433"
            "&target_session_attrs=read-write&schema=s",
            "postgresql://u@/db?host=127.0.0.1,::1&port=5432,5433&schema=s",
        ),
    ):
        assert filespace.public_location(url) == url.replace(f":{PASSWORD}@", "@")
        dialect = PostgresDialect(url)  # connects to nothing
        assert dialect.url == public  # where the servers are: every host and port
        given = conninfo_to_dict(split_url(url)[0])  # what psycopg is given
        assert given["host"] == "127.0.0.1,::1" and given["port"] == "5432,5433"
        assert given["target_session_attrs"] == "read-write" and "schema" not in given
        filespace.check_new_location(url)


def test_a_password_in_the_location_is_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []
    data = (tmp_path / "blocks").as_uri()
    with password_url() as url:
        with filespace.create(url, name="pw", data=data, format_version=8) as fsp:
            shown += [repr(fsp), repr(fsp.connect), repr(fsp.fs), fsp.location, fsp.engine_url]
            shown.append(fsp.full_name)
            with pytest.raises(filespace.ConnectUnavailableError) as unavailable:
                fsp.connect.list_data_stores()
            shown.append(str(unavailable.value))
            assert fsp.location == filespace.public_location(url) and "postgres@" in fsp.location
        with pytest.raises(FileExistsError) as again:
            filespace.create(url, name="pw", data=data)
        shown += [str(again.value)]
        assert filespace.upgrade(url) == 9
        with filespace.open(url) as fsp:
            shown += [repr(fsp), repr(fsp.connect), fsp.location]
            fsp._engine.set_setting("format_version", "10")  # type: ignore[attr-defined]
        for failing in (filespace.open, filespace.upgrade):
            with pytest.raises(filespace.UnsupportedFormatError) as newer:
                failing(url)
            shown.append(str(newer.value))
        empty = url.replace("schema=", "schema=e")
        with pytest.raises(filespace.NotAFilespaceError) as nothing:
            filespace.open(empty)
        shown.append(str(nothing.value))
    from filespace.fsspec import FilespaceFileSystem

    with postgres_schema_url() as plain:
        filespace.create(with_password(plain), name="f", data=(tmp_path / "b2").as_uri()).close()
        fs = FilespaceFileSystem(location=with_password(plain))
        shown += [repr(fs), fs.location]
        fs.close()
    records = [record.getMessage() for record in caplog.records]
    assert shown and all(PASSWORD not in text for text in shown + records), shown + records


def test_the_cli_never_prints_the_password(tmp_path: Path) -> None:
    cli = new_cli(tmp_path, secrets=[PASSWORD])  # every run checks stdout and stderr
    with password_url() as url:
        data = ["--data", (tmp_path / "blocks").as_uri()]
        planned = cli.ok("init", url, "--format", "8", *data, "--dry-run", "--json").json()
        assert planned["location"] == filespace.public_location(url)
        cli.ok("init", url, "--dry-run", *data)
        made = cli.ok("init", url, "--format", "8", *data)
        assert filespace.public_location(url) in made.out
        cli.fails("init", url, *data)  # exists: the error names it
        cli.ok("-f", url, "info")
        assert PASSWORD not in json.dumps(cli.ok("-f", url, "info", "--json").json())
        cli.ok("upgrade", url, "--dry-run")
        assert cli.ok("upgrade", url, "--json").json()["location"] == filespace.public_location(url)
        cli.ok("upgrade", url)
        cli.ok("-f", url, "ls", "/")
    cli.fails("init", f"mysql://u:{PASSWORD}@h/db")
    cli.fails("-f", other_database("fs_no_such_database"), "info")
    cli.fails("-f", other_database("fs_x") + "?schema=pg_x", "info")


# -- lasting PostgreSQL failures fail at once ----------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    user, _, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}"))


def _lasting_failures() -> list[tuple[str, type[Exception], str]]:
    base = with_password(postgres_url())
    join = "&" if "?" in base else "?"
    return [
        (other_database("fs_no_such_database"), FileNotFoundError, "CREATE DATABASE"),
        (_with_port(base, _free_port()), ConnectionRefusedError, "server running"),
        (
            with_password(postgres_url()).replace("//postgres:", "//fs_no_such_role:"),
            PermissionError,
            "credentials",
        ),
        (f"{base}{join}schema=pg_x", ValueError, "reserved"),
        (f"{base}{join}no_such_option=1", ValueError, "PostgreSQL URL"),
        (_with_port(base, 99999), ValueError, "port"),
        (f"{base}{join}sslmode=sometimes", ValueError, "sslmode"),
        (f"{base}{join}options=-c%20no_such_setting%3D1", ValueError, "configuration parameter"),
    ]


def test_lasting_postgres_failures_fail_at_once_naming_the_location(tmp_path: Path) -> None:
    """No retries: each is the documented error, naming the location without its password."""
    for url, kind, words in _lasting_failures():
        for attempt in (filespace.open, filespace.upgrade):
            with pytest.raises(kind, match=words) as failed:
                attempt(url)
            message = str(failed.value)
            assert PASSWORD not in message, message
            assert "127.0.0.1" in message, message
            assert not isinstance(failed.value, filespace.EngineError)
            assert failed.value.__cause__ is None  # psycopg's error holds the password
        if "reserved" in words or "URL" in words:  # found from the URL alone
            with pytest.raises(ValueError, match=words):
                filespace.check_new_location(url)
        data = (tmp_path / "blocks").as_uri()
        with pytest.raises(kind, match=words):
            filespace.create(url, name="n", data=data)
        assert key_files() == []  # the key file written first is gone again
        assert not (tmp_path / "blocks").exists()


def test_a_malformed_url_never_echoes_the_password() -> None:
    url = with_password(postgres_url(), "S3cret%zzPw")  # not valid percent-encoding
    with pytest.raises(ValueError, match="PostgreSQL URL") as failed:
        filespace.open(url)
    assert "S3cret" not in str(failed.value)


def test_only_passing_failures_are_retried() -> None:
    import psycopg

    def said(text: str) -> psycopg.OperationalError:
        return psycopg.OperationalError(f"connection failed: {text}")

    location = with_password(postgres_url())
    for passing in (
        "FATAL: the database system is starting up",
        "FATAL: the database system is shutting down",
        "FATAL: sorry, too many clients already",
        "FATAL: terminating connection due to administrator command",
        # mid-failover: the primary is gone, the standby not yet promoted
        'connection to server at "10.0.0.1", port 5432 failed: Connection refused '
        'connection to server at "10.0.0.2", port 5432 failed: session is read-only',
        'connection to server at "10.0.0.2", port 5432 failed: server is in hot standby mode',
    ):
        assert lasting_error(said(passing), location) is None, passing
    refused = lasting_error(said(f'password authentication failed for "{PASSWORD}"'), location)
    assert isinstance(refused, PermissionError) and PASSWORD not in str(refused)


# -- a failed create leaves nothing behind -------------------------------------------------
def test_create_with_a_refusing_data_bucket_leaves_nothing(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, s3_admin: Any
) -> None:
    wrong = s3_data(s3_server, data_secret_key=s3_server.spare.secret_key)
    unreachable = s3_data(s3_server, data_endpoint="http://127.0.0.1:9")
    space = tmp_path / "space"
    with password_url() as url:
        for location in (str(space), f"sqlite://{tmp_path}/m.db", url):
            for options, kind in ((wrong, ValueError), (unreachable, ConnectionError)):
                with pytest.raises(kind):
                    filespace.create(location, name="n", data=f"s3://{bucket}/p", **options)
                assert key_files() == []
                assert not space.exists() and not (tmp_path / "m.db").exists()
                assert schema_tables(url) == []
            assert "Contents" not in s3_admin.list_objects_v2(Bucket=bucket)
        # Each location is as good as new.
        right = s3_data(s3_server)
        filespace.create(space, name="a", data=f"s3://{bucket}/a", **right).close()
        filespace.create(
            f"sqlite://{tmp_path}/m.db", name="b", data=f"s3://{bucket}/b", **right
        ).close()
        with filespace.create(url, name="c", data=f"s3://{bucket}/c", **right) as fsp:
            fsp.fs.write_file("/f", b"x")
        assert len(key_files()) == 3


def test_create_failing_in_the_engine_removes_the_key_file_and_claims(tmp_path: Path) -> None:
    blocks = tmp_path / "deep" / "blocks"
    found = tmp_path / "found"
    found.mkdir()
    for location in (
        f"sqlite://{tmp_path}/no-such-dir/m.db",  # SQLite cannot make the file
        other_database("fs_no_such_database"),  # PostgreSQL has no such database
    ):
        for data in (blocks, found):
            with pytest.raises(FileNotFoundError):
                filespace.create(location, name="n", data=data.as_uri())
            assert key_files() == []
            assert not (tmp_path / "deep").exists()  # the directories it made are gone
            assert found.exists() and list(found.iterdir()) == []  # and its claim of this one
    with filespace.create(f"sqlite://{tmp_path}/m.db", name="n", data=found.as_uri()) as fsp:
        fsp.fs.write_file("/f", b"x")


def test_a_failed_create_empties_an_empty_directory_it_was_given(tmp_path: Path) -> None:
    space = tmp_path / "space"
    space.mkdir()
    (tmp_path / "data").write_text("not a directory")
    with pytest.raises(FileExistsError):
        filespace.create(space, name="n", data=(tmp_path / "data").as_uri())
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / ".filespace-id").write_text("another-filespace\n")
    with pytest.raises(FileExistsError, match=r"another filespace|belongs"):
        filespace.create(space, name="n", data=blocked.as_uri())
    assert list(space.iterdir()) == [] and key_files() == []
    assert (blocked / ".filespace-id").read_text() == "another-filespace\n"
    filespace.create(space, name="n").close()


# -- files at rest -------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_files_at_rest_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    folder = keys.config_dir() / "keys"
    folder.mkdir(parents=True)
    folder.chmod(0o755)  # made by hand, open to all
    old = os.umask(umask)
    try:
        with filespace.create(tmp_path / "space", name="n") as fsp:
            fsp.fs.write_file("/f", b"x")  # the WAL and its index exist while it is open
            made = [tmp_path / "space" / f"meta.db{suffix}" for suffix in ("", "-wal", "-shm")]
            modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in made}
            key = keys.key_file(fsp.id)
        assert modes == dict.fromkeys(modes, 0o600)
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        os.umask(old)


# -- bad locations give documented errors --------------------------------------------------
def test_a_file_or_directory_that_is_no_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, not even close" * 100)
    folder = tmp_path / "folder.db"
    folder.mkdir()
    for path in (junk, folder):
        with pytest.raises(filespace.NotAFilespaceError, match=re.escape(path.name)):
            filespace.open(f"sqlite://{path}")
        with pytest.raises(filespace.NotAFilespaceError, match=re.escape(path.name)):
            filespace.upgrade(f"sqlite://{path}")
        with pytest.raises(FileExistsError):
            filespace.create(f"sqlite://{path}", name="n", data=(tmp_path / "b").as_uri())
        with pytest.raises(FileExistsError):
            filespace.check_new_location(f"sqlite://{path}")
    assert key_files() == [] and not (tmp_path / "b").exists()
    assert junk.read_bytes().startswith(b"this is not")
    space = tmp_path / "space"
    filespace.create(space, name="n").close()
    (space / "meta.db").write_bytes(b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        (space / f"meta.db{suffix}").unlink(missing_ok=True)
    with pytest.raises(filespace.NotAFilespaceError, match=r"meta\.db"):
        filespace.open(space)


@pytest.mark.parametrize(
    "config",
    [
        "[]",
        '"meta.db"',
        "{}",
        '{"database": 5}',
        '{"database": null}',
        '{"database": "../elsewhere.db"}',
        '{"database": "/etc/passwd"}',
        '{"database": ""}',
        "{not json",
        "\udcff",
    ],
)
def test_a_malformed_config_file_is_not_a_filespace(tmp_path: Path, config: str) -> None:
    space = tmp_path / "space"
    filespace.create(space, name="n").close()
    (space / "filespace.json").write_bytes(config.encode("utf-8", "surrogateescape"))
    with pytest.raises(filespace.NotAFilespaceError, match=r"filespace\.json"):
        filespace.open(space)
    with pytest.raises(filespace.NotAFilespaceError, match=r"filespace\.json"):
        filespace.upgrade(space)


def test_unknown_schemes_and_missing_places(tmp_path: Path) -> None:
    for url in (f"mysql://u:{PASSWORD}@h/db", f"ftp://u:{PASSWORD}@h/x"):
        for call in (filespace.open, filespace.upgrade, filespace.check_new_location):
            with pytest.raises(ValueError, match="scheme") as failed:
                call(url)
            assert PASSWORD not in str(failed.value)
    with pytest.raises(FileNotFoundError):
        filespace.open(f"sqlite://{tmp_path}/none.db")
    with pytest.raises(FileNotFoundError):
        filespace.open(tmp_path / "none")
