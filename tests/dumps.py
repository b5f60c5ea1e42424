"""A full dump of a filespace's engine, read behind the library's back.

Every row of every table, read with ``sqlite3`` or ``psycopg`` directly (never
through the engine under test), plus the files of a local block directory: two
dumps are equal exactly when nothing the filespace stores has changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import filespace
from tests.fsfixtures import new_location

Dump = dict[str, list[tuple[Any, ...]]]


def _sorted(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=repr)


class EngineDump:
    """Reads every table of one filespace's engine; call it for a dump."""

    def __init__(self, engine_url: str, location: str, blocks: Path | None) -> None:
        self._blocks = blocks
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None
        if engine_url.startswith("sqlite://"):
            path = engine_url[len("sqlite://") :]
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        else:
            import psycopg

            from filespace.meta.postgres import split_url

            conninfo, self._schema = split_url(location)
            self._pg = psycopg.connect(conninfo, autocommit=True)

    def __call__(self) -> Dump:
        dump = self._sqlite_dump() if self._sqlite is not None else self._pg_dump()
        if self._blocks is not None and self._blocks.exists():
            dump["<blocks>"] = sorted(
                (str(path.relative_to(self._blocks)), path.stat().st_size)
                for path in self._blocks.rglob("*")
                if path.is_file()
            )
        return dump

    def _sqlite_dump(self) -> Dump:
        assert self._sqlite is not None
        tables = [
            row[0]
            for row in self._sqlite.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        query = 'SELECT * FROM "{}"'  # names from the catalog
        return {
            table: _sorted(self._sqlite.execute(query.format(table)).fetchall()) for table in tables
        }

    def _pg_dump(self) -> Dump:
        tables = [
            row[0]
            for row in self._pg.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "ORDER BY table_name",
                (self._schema,),
            )
        ]
        query = 'SELECT * FROM "{}"."{}"'  # names from the catalog
        return {
            table: _sorted(self._pg.execute(query.format(self._schema, table)).fetchall())
            for table in tables
        }

    def close(self) -> None:
        """Release the connection."""
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()


def no_s3_config(**overrides: object) -> filespace.S3DataStoreConfig:
    """A data-store config whose endpoint nothing listens on (links with size need no S3)."""
    options: dict[str, object] = {
        "access_key": "AKEXAMPLE",
        "secret_key": "secret-example-key",
        "bucket_name": "bucket",
        "region": "us-east-1",
        "endpoint": "http://127.0.0.1:9",
    }
    options.update(overrides)
    return filespace.S3DataStoreConfig(**options)  # type: ignore[arg-type]


@contextmanager
def dumped_space(
    engine: str, tmp_path: Path, config: filespace.S3DataStoreConfig | None = None
) -> Iterator[tuple[filespace.Filespace, Callable[[], Dump]]]:
    """A new filespace on ``engine`` with Connect on and a store ``s``, and its dump."""
    with new_location(engine, tmp_path) as (location, options):
        with filespace.create(location, name="dumped", **options) as fsp:
            fsp.connect.enable()
            fsp.connect.add_data_store("s", config or no_s3_config())
            blocks = Path(unquote(urlsplit(fsp.data_url).path))
            dump = EngineDump(fsp.engine_url, location, blocks)
            try:
                yield fsp, dump
            finally:
                dump.close()


def changes(before: Dump, after: Dump) -> str:
    """What differs between two dumps, table by table (for assertion messages)."""
    lines = []
    for table in sorted(set(before) | set(after)):
        old, new = set(before.get(table, [])), set(after.get(table, []))
        if old != new:
            lines.append(f"{table}: gone {sorted(old - new, key=repr)[:5]}")
            lines.append(f"{table}: new {sorted(new - old, key=repr)[:5]}")
    return "\n".join(lines)
