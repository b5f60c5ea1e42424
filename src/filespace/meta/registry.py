"""Choosing an engine by the scheme of its URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from filespace.meta.engine import Engine
from filespace.redaction import public_location


def open_engine(url: str) -> Engine:
    """The engine for ``url``: ``sqlite:///abs/path.db`` or ``postgresql://...``."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = url[len("sqlite://") :]
        if path.startswith("//"):  # sqlite:////abs/path, the SQLAlchemy spelling
            path = "/" + path.lstrip("/")
        if not path.startswith("/"):
            raise ValueError(
                f"a sqlite engine URL needs an absolute path: {public_location(url)!r}"
            )
        from filespace.meta.sqlite import open_sqlite

        return open_sqlite(Path(path))
    if scheme in ("postgresql", "postgres"):
        import importlib.util

        if importlib.util.find_spec("psycopg_pool") is None:
            raise ValueError(
                "the PostgreSQL engine needs psycopg: pip install 'filespace[postgres]'"
            )
        from filespace.meta.postgres import open_postgres

        return open_postgres(url)
    raise ValueError(f"unknown metadata engine URL scheme {scheme!r} in {public_location(url)!r}")


def is_engine_url(location: str) -> bool:
    """Whether ``location`` names an engine by URL rather than a directory."""
    return urlsplit(location).scheme in ("sqlite", "postgresql", "postgres")
