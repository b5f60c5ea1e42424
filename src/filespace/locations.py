"""Where a filespace lives: a directory or an engine URL, and its block store's URL.

A location is a directory (the embedded default: ``filespace.json``, the
SQLite file ``meta.db`` and the block directory ``blocks/`` inside it) or an
engine URL (``sqlite:///abs/path.db``, ``postgresql://...``) with the block
store given as ``data=`` (``file:///abs/dir`` or ``s3://bucket/prefix``).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from filespace.connect import validation as check
from filespace.errors import NotAFilespaceError
from filespace.meta import is_engine_url

CONFIG_FILE = "filespace.json"
DATABASE_FILE = "meta.db"
BLOCKS_DIR = "blocks"
RELATIVE_DATA = "file:" + BLOCKS_DIR  # the block directory beside the database
_MAX_DATA_PREFIX_BYTES = 900  # S3 keys are at most 1024 bytes; blocks add ~45


def as_text(location: str | os.PathLike[str]) -> str:
    """A location as text; ``ValueError`` for anything but a non-empty path or URL."""
    if isinstance(location, os.PathLike):
        return os.fspath(location)
    if not isinstance(location, str) or not location:
        raise ValueError(f"a filespace location must be a path or URL, got {location!r}")
    return location


def engine_url_of(location: str) -> str:
    """The engine URL of a location, reading a directory's config file."""
    if is_engine_url(location):
        return location
    if "://" in location:
        raise ValueError(f"unknown metadata engine URL scheme in {location!r}")
    directory = Path(location).absolute()
    if not directory.exists():
        raise FileNotFoundError(2, "no filespace at this location", location)
    config = directory / CONFIG_FILE
    if not config.is_file():
        raise NotAFilespaceError(f"{location} is not a filespace (no {CONFIG_FILE})")
    try:
        settings = json.loads(config.read_text())
        database = settings["database"]
    except (ValueError, KeyError, TypeError):
        raise NotAFilespaceError(f"{config} is not a filespace config file") from None
    return f"sqlite://{directory / database}"


def resolve_data_url(engine_url: str, data: str) -> str:
    """Resolve a data URL stored relative to the database's directory."""
    if data == RELATIVE_DATA and engine_url.startswith("sqlite:///"):
        database = Path(engine_url[len("sqlite://") :])
        return (database.parent / BLOCKS_DIR).as_uri()
    return data


def check_data_url(data: str) -> str:
    """A block store URL, checked and normalised (``s3://bucket/a/b``), or ``ValueError``."""
    usage = f"data must be file:///absolute/dir or s3://bucket/prefix, got {data!r}"
    if not isinstance(data, str):
        raise ValueError(usage)
    parts = urlsplit(data)
    if parts.query or parts.fragment or "\x00" in data:
        raise ValueError(usage)
    if parts.scheme == "file" and parts.path.startswith("/") and not parts.netloc:
        return data
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(usage)
    if "@" in parts.netloc or ":" in parts.netloc:
        raise ValueError(f"{usage}: no credentials or port in the bucket part")
    try:
        bucket = check.bucket_name(parts.netloc)
    except ValueError as exc:
        raise ValueError(f"data: {exc}") from None
    prefix = unquote(parts.path).strip("/")
    if prefix:
        names = prefix.split("/")
        if any(name in ("", ".", "..") for name in names):
            raise ValueError(f"data: invalid prefix {prefix!r} (empty, '.' or '..' part)")
        if len(prefix.encode("utf-8", "surrogatepass")) > _MAX_DATA_PREFIX_BYTES:
            raise ValueError(f"data: prefix longer than {_MAX_DATA_PREFIX_BYTES} bytes")
    return f"s3://{bucket}/{quote(prefix)}" if prefix else f"s3://{bucket}"


def check_new_location(location: str | os.PathLike[str]) -> None:
    """Raise what ``create`` would raise for ``location`` itself; create nothing.

    A directory must be new or empty (``FileExistsError`` otherwise); an engine
    URL must have a known scheme (``ValueError``). Whether an engine already
    holds a filespace is found out only by connecting, which ``create`` does.
    """
    text = as_text(location)
    if "://" in text and not is_engine_url(text):
        raise ValueError(f"unknown metadata engine URL scheme in {text!r}")
    if is_engine_url(text):
        return
    directory = Path(text).absolute()
    if (directory / CONFIG_FILE).exists():
        raise FileExistsError(errno.EEXIST, "a filespace already exists here", text)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise FileExistsError(
            errno.EEXIST, "the location exists and is not an empty directory", text
        )
