"""Where a filespace lives: a directory or an engine URL, and its block store's URL.

A location is a directory (the embedded default: ``filespace.json``, the
SQLite file ``meta.db`` and the block directory ``blocks/`` inside it) or an
engine URL (``sqlite:///abs/path.db``, ``postgresql://...``) with the block
store given as ``data=`` (``file:///abs/dir`` or ``s3://bucket/prefix``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from filespace.blocks import BlockStore
from filespace.connect import validation as check
from filespace.errors import NotAFilespaceError
from filespace.meta import Engine, is_engine_url, open_engine
from filespace.paths import utf8_text
from filespace.redaction import public_location

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
        raise ValueError(f"unknown metadata engine URL scheme in {public_location(location)!r}")
    directory = Path(location).absolute()
    if not directory.exists():
        raise FileNotFoundError(2, "no filespace at this location", location)
    config = directory / CONFIG_FILE
    if not config.is_file():
        raise NotAFilespaceError(f"{location} is not a filespace (no {CONFIG_FILE})")
    try:
        settings = json.loads(config.read_text())
        database = settings["database"] if isinstance(settings, dict) else None
    except (ValueError, KeyError):
        database = None
    # The database is a file beside the config, by name: never a path elsewhere.
    if not isinstance(database, str) or database in ("", ".", "..") or "/" in database:
        raise NotAFilespaceError(f"{config} is not a filespace config file")
    return f"sqlite://{directory / database}"


def sqlite_path(engine_url: str) -> Path | None:
    """The database file of a ``sqlite://`` engine URL, ``None`` for another engine."""
    if not engine_url.startswith("sqlite://"):
        return None
    path = engine_url[len("sqlite://") :]
    if path.startswith("//"):  # sqlite:////abs/path, the SQLAlchemy spelling
        path = "/" + path.lstrip("/")
    return Path(path) if path.startswith("/") else None


def make_dirs(path: Path, undo: contextlib.ExitStack, *, found_empty: bool = False) -> None:
    """``mkdir -p path``; ``undo`` removes the directories this made.

    ``found_empty``: ``path`` may exist and was checked to be empty (a new
    filespace's directory): ``undo`` then empties it again.
    """
    top = path
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    if path.exists():
        if found_empty:
            undo.callback(_empty, path)
        return
    path.mkdir(parents=True)
    undo.callback(shutil.rmtree, top, ignore_errors=True)


def _empty(directory: Path) -> None:
    """Remove everything in ``directory`` (which ``create`` found empty), keeping it."""
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def claim_store(store: BlockStore, filespace_id: str, undo: contextlib.ExitStack) -> None:
    """Claim ``store`` for a new filespace; ``undo`` releases it."""
    store.claim(filespace_id)
    undo.callback(store.release, filespace_id)


def new_engine(engine_url: str, undo: contextlib.ExitStack) -> Engine:
    """The engine ``create`` initializes; ``undo`` closes it and removes a SQLite file it made."""
    database = sqlite_path(engine_url)
    if database is not None and not database.exists():
        undo.callback(remove_database, database)
    engine = open_engine(engine_url)
    undo.callback(engine.close)
    return engine


def remove_database(path: Path) -> None:
    """Remove a SQLite database file and the files SQLite keeps beside it."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


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
    utf8_text(data, "data")
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
    URL must have a known scheme and valid options (``ValueError``), a SQLite
    URL name a new file or a SQLite database (``FileExistsError``). Whether an
    engine already holds a filespace is found out only by connecting, which
    ``create`` does.
    """
    text = as_text(location)
    if "://" in text and not is_engine_url(text):
        raise ValueError(f"unknown metadata engine URL scheme in {public_location(text)!r}")
    database = sqlite_path(text)
    if database is not None:
        _check_new_database(database, text)
    if is_engine_url(text):
        open_engine(text).close()  # parses the URL and its options; connects to nothing
        return
    directory = Path(text).absolute()
    if (directory / CONFIG_FILE).exists():
        raise FileExistsError(errno.EEXIST, "a filespace already exists here", text)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise FileExistsError(
            errno.EEXIST, "the location exists and is not an empty directory", text
        )


_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_new_database(database: Path, text: str) -> None:
    """A SQLite URL for ``create`` names a new file, an empty one, or a SQLite database."""
    if database.is_dir():
        raise FileExistsError(errno.EEXIST, "a directory, not a database file", text)
    try:
        with database.open("rb") as handle:
            head = handle.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    if head and head != _SQLITE_HEADER:
        raise FileExistsError(errno.EEXIST, "the file exists and is not a SQLite database", text)
