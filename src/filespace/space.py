"""Creating, opening and upgrading filespaces; the ``Filespace`` object.

Where a filespace lives (a directory or an engine URL, and its block store)
is read and checked by ``locations``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from filespace import keys, paths
from filespace.blocks import BlockStore, LocalBlockStore, open_block_store, s3settings
from filespace.blocks.s3 import S3BlockStore, S3BlockStoreOptions
from filespace.connect.manager import FIRST_CONNECT_FORMAT, ConnectManager
from filespace.errors import (
    KeyNotFoundError,
    NotAFilespaceError,
    UnsupportedFormatError,
    WrongKeyError,
)
from filespace.fs import Filesystem
from filespace.locations import (
    CONFIG_FILE,
    DATABASE_FILE,
    RELATIVE_DATA,
    as_text,
    check_data_url,
    check_new_location,
    claim_store,
    engine_url_of,
    make_dirs,
    new_engine,
    resolve_data_url,
    sqlite_path,
)
from filespace.meta import SCHEMA_VERSION, Engine, is_engine_url, open_engine
from filespace.redaction import public_location
from filespace.rotation import rotate_key
from filespace.sealing import Sealer

CURRENT_FORMAT = 9
OLDEST_FORMAT = 8
DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024
DEFAULT_SWEEP_GRACE_S = 3600.0


def create(
    location: str | os.PathLike[str],
    *,
    name: str,
    data: str | None = None,
    format_version: int = CURRENT_FORMAT,
    key: str | bytes | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    data_region: str = "us-east-1",
    data_endpoint: str = "",
    data_access_key: str | None = None,
    data_secret_key: str | None = None,
    data_virtual_addressing: bool = False,
) -> Filespace:
    """Create a new filespace at ``location`` and open it.

    ``data`` is the block store of native files: ``file:///abs/dir`` or
    ``s3://bucket/prefix``. An S3 block store takes its bucket's region,
    endpoint (empty: AWS), credentials and addressing style from the
    ``data_*`` options; the secret key is sealed with the filespace key before
    it is stored, so opening the filespace later needs that key.

    The steps run in the order that loses least: the key file first (a
    filespace is never made whose key was not kept), then the block store is
    checked and claimed (its bucket must answer, its prefix hold no other
    filespace's blocks), then the engine. A failure at any step removes what
    this call made (key file, claim, directories, database file), so the
    location can be used again as it was.
    """
    text = as_text(location)
    if not isinstance(name, str) or not name.strip() or len(name) > 255 or "\x00" in name:
        raise ValueError(f"a filespace name must be 1-255 characters, got {name!r}")
    paths.utf8_text(name, "filespace name")
    if format_version not in (OLDEST_FORMAT, CURRENT_FORMAT):
        raise ValueError(f"format_version must be {OLDEST_FORMAT} or {CURRENT_FORMAT}")
    if isinstance(block_size, bool) or not isinstance(block_size, int):
        raise ValueError("block_size must be an int")
    if not 64 * 1024 <= block_size <= 64 * 1024 * 1024:
        raise ValueError("block_size must be between 64 KiB and 64 MiB")
    raw_key = keys.parse_key(key) if key is not None else bytes.fromhex(keys.generate_key())
    directory: Path | None = None
    check_new_location(text)
    if is_engine_url(text):
        if data is None:
            raise ValueError("data= (the block store URL) is required with an engine URL")
        engine_url, data_url = text, check_data_url(data)
    else:
        directory = Path(text).absolute()
        engine_url = f"sqlite://{directory / DATABASE_FILE}"
        data_url = check_data_url(data) if data is not None else RELATIVE_DATA
    filespace_id = str(uuid.uuid4())
    data_settings: dict[str, str] = {}
    s3_store: S3BlockStore | None = None
    if data_url.startswith("s3:"):
        sealer = Sealer(raw_key, filespace_id, keys.key_id(raw_key, filespace_id))
        data_settings, options = s3settings.record(
            data_url,
            sealer,
            region=data_region,
            endpoint=data_endpoint,
            access_key=data_access_key,
            secret_key=data_secret_key,
            virtual_addressing=data_virtual_addressing,
        )
        s3_store = S3BlockStore(data_url, options)
    else:
        given = (data_endpoint, data_access_key, data_secret_key, data_virtual_addressing)
        if given != ("", None, None, False) or data_region != "us-east-1":
            raise ValueError("the data_* options are for an s3:// data URL only")
        if data_url != RELATIVE_DATA:
            root = Path(unquote(urlsplit(data_url).path))
            if root.exists() and not root.is_dir():
                raise FileExistsError(17, "the data location is not a directory", data_url)
    settings = {
        "filespace_id": filespace_id,
        "name": name,
        "format_version": str(format_version),
        "key_check": keys.check_value(raw_key, filespace_id),
        "key_id": keys.key_id(raw_key, filespace_id),
        "block_size": str(block_size),
        "data_url": data_url,
        "connect_enabled": "0",
        "created_ns": str(time.time_ns()),
        **data_settings,
    }
    with contextlib.ExitStack() as undo:
        if key is None:
            keys.store_key(filespace_id, raw_key)
            undo.callback(keys.remove_key, filespace_id)
        if s3_store is not None:
            undo.callback(s3_store.close)
            s3settings.check_reachable(s3_store)
            claim_store(s3_store, filespace_id, undo)
        elif data_url != RELATIVE_DATA:  # the default block directory is the filespace's by place
            root = Path(unquote(urlsplit(data_url).path))
            make_dirs(root, undo)
            claim_store(LocalBlockStore(root), filespace_id, undo)
        if directory is not None:
            make_dirs(directory, undo, found_empty=True)
        engine = new_engine(engine_url, undo)
        if engine.exists():
            raise FileExistsError(17, "a filespace already exists here", public_location(text))
        engine.initialize(settings, time.time_ns())
        if directory is not None:
            config = {"database": DATABASE_FILE, "created_by": "filespace"}
            (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        made = Filespace(
            engine,
            location=text,
            settings=settings,
            key=raw_key,
            cache_dir=None,
            cache_size_mb=1024,
        )
        undo.pop_all()
    if s3_store is not None:
        s3_store.close()
    return made


def open(
    location: str | os.PathLike[str],
    *,
    key: str | bytes | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    cache_size_mb: int = 1024,
    revalidate_after_s: float = 0.0,
) -> Filespace:
    """Open an existing filespace.

    ``revalidate_after_s``: how long after the server last confirmed an
    external file (in any process sharing the cache) an ``open`` whose bytes
    are all cached may read them without asking again (0: every ``open``
    asks; see ``docs/semantics.md``).

    An unknown location raises ``FileNotFoundError``; one that holds no
    filespace (a directory without one, a file that is no SQLite database, an
    empty schema) ``NotAFilespaceError``; a PostgreSQL server that refuses the
    location for good (no such database, nothing listening, credentials
    refused, a bad option) the error that says so at once. Messages name the
    location without its password.
    """
    text = as_text(location)
    if isinstance(cache_size_mb, bool) or not isinstance(cache_size_mb, int) or cache_size_mb < 0:
        raise ValueError(f"cache_size_mb must be a non-negative int, got {cache_size_mb!r}")
    window = revalidate_after_s
    if isinstance(window, bool) or not isinstance(window, int | float) or not 0 <= window < 1e12:
        raise ValueError(f"revalidate_after_s must be seconds >= 0, got {window!r}")
    engine = _existing_engine(text)
    public = public_location(text)
    try:
        settings = engine.settings()
        schema = int(settings.get("schema_version", "0"))
        version = int(settings.get("format_version", "0"))
        if schema > SCHEMA_VERSION or version > CURRENT_FORMAT:
            raise UnsupportedFormatError(
                f"{public} has format {version} (schema {schema}), newer than this version of "
                f"filespace reads (format {CURRENT_FORMAT}, schema {SCHEMA_VERSION}): upgrade "
                "the filespace package"
            )
        if schema < SCHEMA_VERSION:
            engine.migrate()
        raw_key = _find_key(settings, key)
    except BaseException:
        engine.close()
        raise
    return Filespace(
        engine,
        location=text,
        settings=settings,
        key=raw_key,
        cache_dir=Path(cache_dir) if cache_dir is not None else None,
        cache_size_mb=cache_size_mb,
        revalidate_after_s=float(window),
    )


def _find_key(settings: dict[str, str], given: str | bytes | None) -> bytes | None:
    """The key, checked against the filespace; ``None`` if none is to be found."""
    filespace_id = settings["filespace_id"]
    try:
        raw = keys.find_key(filespace_id, given)
    except KeyNotFoundError:
        return None
    except ValueError as exc:
        raise WrongKeyError(f"not a filespace key: {exc}") from None
    try:
        keys.verify_key(raw, filespace_id, settings["key_check"])
    except WrongKeyError:
        pending = keys.pending_key(filespace_id) if _from_key_file(given) else None
        if pending is None:
            raise
        # A rotation switched the engine, then stopped before renaming its key file.
        keys.verify_key(pending, filespace_id, settings["key_check"])
        keys.promote_pending_key(filespace_id)
        return pending
    return raw


def _from_key_file(given: str | bytes | None) -> bool:
    return given is None and not os.environ.get(keys.KEY_ENV)


def _existing_engine(text: str) -> Engine:
    """The engine of the filespace at ``text``; the errors ``open`` documents if none is there."""
    engine_url = engine_url_of(text)
    database = sqlite_path(engine_url)
    if database is not None:
        if not database.exists():
            raise FileNotFoundError(2, "no filespace at this location", public_location(text))
        if database.is_dir():
            raise NotAFilespaceError(
                f"{public_location(text)} is a directory, not a filespace database"
            )
    engine = open_engine(engine_url)
    try:
        if not engine.exists():
            raise NotAFilespaceError(f"{public_location(text)} holds no filespace")
    except BaseException:
        engine.close()
        raise
    return engine


def upgrade(location: str | os.PathLike[str]) -> int:
    """Migrate a filespace to the current format in place; returns the new format."""
    text = as_text(location)
    engine = _existing_engine(text)
    try:
        version = int(engine.settings().get("format_version", "0"))
        if version > CURRENT_FORMAT:
            raise UnsupportedFormatError(
                f"{public_location(text)} has format {version}, newer than this code"
            )
        engine.migrate()
        if version < CURRENT_FORMAT:
            engine.set_setting("format_version", str(CURRENT_FORMAT))
        return CURRENT_FORMAT
    finally:
        engine.close()


class Filespace:
    """An open filespace: ``fs`` for the tree, ``connect`` for external files.

    Made by ``create`` and ``open``, not constructed directly. A ``with``
    block closes it.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        location: str,
        settings: dict[str, str],
        key: bytes | None,
        cache_dir: Path | None,
        cache_size_mb: int,
        revalidate_after_s: float = 0.0,
    ) -> None:
        self._engine = engine
        self._location = public_location(location)  # the only form kept: it is shown
        self._key = key
        self.id: str = settings["filespace_id"]
        """The filespace's stable id (a UUID): the same for every client."""
        self.name: str = settings["name"]
        """The name given at ``create``."""
        self.cache_dir = cache_dir
        self.cache_size_mb = cache_size_mb
        self._data_url = resolve_data_url(engine.url, settings["data_url"])
        self._block_store: BlockStore | None = None
        self._sealer_cache: Sealer | None = None
        self._closed = False
        self.connect = ConnectManager(engine, self._sealer, location=self._location)
        """Data stores and external links (Connect)."""
        from filespace.io.cache import BlockCache

        where = location if "://" in location else os.path.abspath(location)
        self._cache = BlockCache.for_filespace(
            self.id, cache_dir, cache_size_mb, location=public_location(where)
        )
        self.fs = Filesystem(
            engine,
            self._blocks,
            int(settings.get("block_size", DEFAULT_BLOCK_SIZE)),
            self.connect.url_provider,
            cache=self._cache,
            revalidate_after_s=revalidate_after_s,
        )
        """The file tree: directories, files, links and their data."""

    def __repr__(self) -> str:
        return f"Filespace(name={self.name!r}, id={self.id!r}, location={self._location!r})"

    @property
    def full_name(self) -> str:
        """``name.domain``: the name and where its metadata lives."""
        parts = urlsplit(self._engine.url)
        domain = parts.hostname if parts.scheme.startswith("postgres") else "local"
        return f"{self.name}.{domain or socket.gethostname()}"

    @property
    def format_version(self) -> int:
        """The on-disk format (9: with external files)."""
        return int(self._engine.settings().get("format_version", "0"))

    @property
    def location(self) -> str:
        """The location this filespace was opened from (a directory or an engine URL).

        Without a password: this is the location's public form, the one every
        repr and message shows (pass the password again, or keep it in
        ``PGPASSWORD`` / ``~/.pgpass``, to open it from this value).
        """
        return self._location

    @property
    def key_file(self) -> Path:
        """Where this filespace's key is kept on this machine (it may not be there)."""
        return keys.key_file(self.id)

    @property
    def engine_url(self) -> str:
        """Where the metadata lives; never with a password (engines drop it)."""
        return self._engine.url

    @property
    def data_url(self) -> str:
        """Where native file data lives; never with credentials (refused in ``data=``)."""
        return self._data_url

    def _blocks(self) -> BlockStore:
        """The block store, opened on first use (an S3 one unseals its secret then)."""
        if self._block_store is None:
            options = self._s3_options() if self._data_url.startswith("s3:") else None
            self._block_store = open_block_store(self._data_url, s3=options)
        return self._block_store

    def _s3_options(self) -> S3BlockStoreOptions:
        return s3settings.options(
            self._data_url,
            self._engine.settings(),
            self._sealer(),
            save=self._engine.set_setting,
            filespace_id=self.id,
        )

    def sweep_blocks(self, grace: float = DEFAULT_SWEEP_GRACE_S) -> int:
        """Delete stored blocks no file references; returns how many were deleted.

        Only blocks older than ``grace`` seconds go: a writer (in any process or
        host) stores blocks before it commits the metadata that references
        them, and those must survive until it does. Open files of this
        filespace are synced first. ``grace=0`` is for when nothing else writes.
        """
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not grace >= 0:
            raise ValueError(f"grace must be a non-negative number of seconds, got {grace!r}")
        store = self._blocks()
        owner = store.owner()
        if owner is not None and owner != self.id:
            raise RuntimeError(
                f"the block store {store.url} belongs to filespace {owner}, not {self.id}: "
                "not sweeping it"
            )
        self.sync_all()
        cutoff = time.time() - grace  # before the referenced set is read: see BlockStore
        referenced = self._engine.block_keys()
        return store.sweep(referenced, older_than=cutoff)

    def rotate_key(self, new_key: str | bytes | None = None, *, save_key_file: bool = True) -> str:
        """Seal every secret of this filespace under a new key; returns it as 64 hex digits.

        ``new_key`` (as for ``open``'s ``key=``) or a fresh random one. Data-store
        secrets, the S3 block store's secret and Connect's settings are resealed
        and the engine's key check replaced in one transaction; a store changed
        without the key stops it (``IntegrityError``). With ``save_key_file``
        the key file is replaced (the old key is gone); every other client needs
        the new key (key file, ``FILESPACE_KEY`` or ``key=``) from then on, and a
        client still open with the old one fails with ``WrongKeyError`` when it
        next seals or opens a secret.
        """
        raw = (
            keys.parse_key(new_key) if new_key is not None else keys.parse_key(keys.generate_key())
        )
        settings = self._engine.settings()
        old = self._key if self._key is not None else _find_key(settings, None)
        if old is None:
            self._sealer()  # raises KeyNotFoundError, saying where a key is looked for
            raise AssertionError("unreachable")
        rotate_key(self._engine, self.id, self._data_url, old, raw, save=save_key_file)
        self._key, self._sealer_cache = raw, None
        return raw.hex()

    def _sealer(self) -> Sealer:
        """The sealer of the current key; ``WrongKeyError`` once another client rotated it."""
        settings = self._engine.settings()
        if self._sealer_cache is None:
            key = self._key if self._key is not None else _find_key(settings, None)
            if key is None:
                raise KeyNotFoundError(
                    f"no key for filespace {self.id}: pass key= to filespace.open, set "
                    f"{keys.KEY_ENV}, or restore the key file {keys.key_file(self.id)}"
                )
            self._sealer_cache = Sealer(key, self.id, keys.key_id(key, self.id))
        if self._sealer_cache.key_id != settings["key_id"]:
            raise WrongKeyError(
                f"the key of filespace {self.id} was rotated since it was opened here: "
                "open it again with the new key"
            )
        return self._sealer_cache

    def sync_all(self) -> None:
        """Flush every pending data and metadata change so other clients see it."""
        self.fs.flush_open_files()

    def close(self) -> None:
        """Sync, then release everything; idempotent."""
        if self._closed:
            return
        try:
            self.sync_all()
        finally:
            self._closed = True
            self._engine.close()
            self._cache.close()
            if self._block_store is not None:
                self._block_store.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Filespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["FIRST_CONNECT_FORMAT", "Filespace", "create", "open", "upgrade"]
