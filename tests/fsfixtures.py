"""Fixtures for filespaces: an isolated key/cache environment, fresh filespaces,
and a filespace with Connect enabled and a data store on a fresh bucket."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace.testing import SeaweedS3
from tests import requirements


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Key files and caches go to a throw-away directory; no key leaks in from outside."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("FILESPACE_CACHE_DIR", str(home / "cache"))
    monkeypatch.delenv("FILESPACE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("FILESPACE_KEY", raising=False)
    monkeypatch.delenv("FILESPACE", raising=False)
    return home


POSTGRES_ENV = "FILESPACE_TEST_POSTGRES"
ENGINES = ["sqlite", "postgresql"]


def postgres_url() -> str:
    """The test server's URL, or a skip saying how to get one."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        requirements.skip(
            "postgresql", f"{POSTGRES_ENV} is not set: these tests need a server (.ci/run sets it)"
        )
    return url


@contextmanager
def postgres_schema_url(server: str | None = None) -> Iterator[str]:
    """A URL naming a fresh schema in the test database (or ``server``'s); dropped after."""
    import psycopg

    base = server or postgres_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}schema={schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def new_location(engine: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A location (and create() options) for a new filespace on ``engine``."""
    if engine == "sqlite":
        yield str(tmp_path / "space"), {}
        return
    with postgres_schema_url() as url:
        yield url, {"data": (tmp_path / "blocks").as_uri()}


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    """Each engine in turn."""
    return str(request.param)


@pytest.fixture
def fsp(engine_name: str, tmp_path: Path) -> Iterator[filespace.Filespace]:
    """A fresh filespace on each engine: embedded SQLite, then PostgreSQL."""
    with new_location(engine_name, tmp_path) as (location, options):
        with filespace.create(location, name="test", **options) as space:
            yield space


def store_config(server: SeaweedS3, bucket: str, **overrides: Any) -> filespace.S3DataStoreConfig:
    """A data-store config for ``bucket`` with the admin identity."""
    options: dict[str, Any] = {
        "access_key": server.admin.access_key,
        "secret_key": server.admin.secret_key,
        "bucket_name": bucket,
        "region": server.region,
        "endpoint": server.endpoint,
    }
    options.update(overrides)
    return filespace.S3DataStoreConfig(**options)


@pytest.fixture
def connected(fsp: filespace.Filespace, s3_server: SeaweedS3, bucket: str) -> filespace.Filespace:
    """``fsp`` with Connect enabled and data store ``store`` on ``bucket``."""
    fsp.connect.enable()
    fsp.connect.add_data_store("store", store_config(s3_server, bucket))
    return fsp


def raw_sql(fsp: filespace.Filespace, sql: str, *params: Any) -> int:
    """Run ``sql`` on the filespace's engine as a writer without the key would; rows changed.

    ``?`` placeholders on both engines.
    """
    changed, _ = _sql(fsp, sql, params)
    return changed


def query_sql(fsp: filespace.Filespace, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows ``sql`` (a query, ``?`` placeholders) returns, read past the filespace's API."""
    _, rows = _sql(fsp, sql, params)
    return rows


def _sql(
    fsp: filespace.Filespace, sql: str, params: tuple[Any, ...]
) -> tuple[int, list[tuple[Any, ...]]]:
    """(rows changed, rows returned) of ``sql`` run on its own connection, committed."""
    url = fsp.engine_url
    if url.startswith("sqlite://"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite://") :])
        try:
            cursor = conn.execute(sql, params)
            rows = cursor.fetchall()
            conn.commit()
        finally:
            conn.close()
        return cursor.rowcount, rows
    from urllib.parse import parse_qs, urlsplit

    import psycopg

    schema = parse_qs(urlsplit(url).query)["schema"][0]
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        cursor = conn.execute(sql.replace("?", "%s"), params)
        rows = cursor.fetchall() if cursor.description is not None else []
        return cursor.rowcount, rows


def location_of(fsp: filespace.Filespace) -> str:
    """What opens ``fsp`` again as a new client: its directory, or its engine URL."""
    url = fsp.engine_url
    return str(Path(url[len("sqlite://") :]).parent) if url.startswith("sqlite://") else url


@contextmanager
def s3_block_space(
    engine_name: str, tmp_path: Path, server: SeaweedS3, bucket: str, endpoint: str = ""
) -> Iterator[filespace.Filespace]:
    """A filespace whose native files live in ``bucket`` under ``space/``, reached at
    ``endpoint`` (the server's own by default)."""
    with new_location(engine_name, tmp_path) as (location, _):
        admin = server.admin
        with filespace.create(
            location,
            name="blocks",
            data=f"s3://{bucket}/space",
            data_endpoint=endpoint or server.endpoint,
            data_region=server.region,
            data_access_key=admin.access_key,
            data_secret_key=admin.secret_key,
        ) as space:
            yield space


@pytest.fixture
def s3_blocks(
    engine_name: str, tmp_path: Path, s3_server: SeaweedS3, bucket: str
) -> Iterator[filespace.Filespace]:
    """A filespace whose native files live in ``bucket``, with ``/native`` written."""
    with s3_block_space(engine_name, tmp_path, s3_server, bucket) as space:
        space.fs.write_file("/native", b"native bytes")
        space.sync_all()
        yield space
