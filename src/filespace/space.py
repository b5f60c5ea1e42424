"""Creating, opening and upgrading filespaces; the ``Filespace`` object.

Where a filespace lives (a directory or an engine URL, and its block store)
is read and checked by ``locations``.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from filespace import keys, paths
from filespace.blocks import BlockStore, LocalBlockStore, open_block_store
from filespace.blocks.s3 import S3BlockStore, S3BlockStoreOptions
from filespace.connect import validation as check
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
    engine_url_of,
    resolve_data_url,
)
from filespace.meta import SCHEMA_VERSION, Engine, is_engine_url, open_engine
from filespace.sealing import Sealer

CURRENT_FORMAT = 9
OLDEST_FORMAT = 8
DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024
_SEALED_DATA_SECRET = "data_s3_secret_key_sealed"  # noqa: S105 - a setting's name
_DATA_SECRET_RECORD = "block_store:secret_key"  # noqa: S105 - the sealing record's name
DEFAULT_SWEEP_GRACE_S = 3600.0


def _s3_data_settings(
    data_url: str,
    *,
    region: str,
    endpoint: str,
    access_key: str | None,
    secret_key: str | None,
    virtual_addressing: bool,
) -> tuple[dict[str, str], S3BlockStoreOptions]:
    """Checked options of an S3 block store, and the settings that record them (unsealed)."""
    if not access_key or not secret_key:
        raise ValueError(
            f"data={data_url} needs data_access_key= and data_secret_key= for the bucket"
        )
    if not isinstance(virtual_addressing, bool):
        raise ValueError("data_virtual_addressing must be a bool")
    options = S3BlockStoreOptions(
        region=check.region(region),
        endpoint=check.endpoint(endpoint),
        access_key=check.credential(access_key, "data_access_key"),
        secret_key=check.credential(secret_key, "data_secret_key"),
        virtual_addressing=virtual_addressing,
    )
    settings = {
        "data_s3_region": options.region,
        "data_s3_endpoint": options.endpoint,
        "data_s3_access_key": options.access_key,
        "data_s3_virtual_addressing": "1" if virtual_addressing else "0",
    }
    return settings, options


def _check_s3_store(store: S3BlockStore, filespace_id: str) -> None:
    """Make sure the data bucket answers and the prefix is free, before anything is created."""
    from filespace.objects.s3 import S3AccessError

    try:
        store.check_access()
    except S3AccessError as exc:
        if exc.kind == "unreachable":
            raise ConnectionError(errno.EHOSTUNREACH, f"data bucket unreachable: {exc}") from None
        raise ValueError(f"data bucket refused these options: {exc}") from None
    store.check_claimable(filespace_id)


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
    it is stored, so opening the filespace later needs that key. The bucket is
    checked (and the prefix must not hold another filespace's blocks) before
    anything is created.
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
    store: BlockStore | None = None
    if data_url.startswith("s3:"):
        data_settings, options = _s3_data_settings(
            data_url,
            region=data_region,
            endpoint=data_endpoint,
            access_key=data_access_key,
            secret_key=data_secret_key,
            virtual_addressing=data_virtual_addressing,
        )
        sealer = Sealer(raw_key, filespace_id, keys.key_id(raw_key, filespace_id))
        sealed = sealer.seal(options.secret_key, record=_DATA_SECRET_RECORD)
        data_settings[_SEALED_DATA_SECRET] = base64.b64encode(sealed).decode("ascii")
        s3_store = S3BlockStore(data_url, options)
        _check_s3_store(s3_store, filespace_id)
        store = s3_store
    else:
        given = (data_endpoint, data_access_key, data_secret_key, data_virtual_addressing)
        if given != ("", None, None, False) or data_region != "us-east-1":
            raise ValueError("the data_* options are for an s3:// data URL only")
        if data_url != RELATIVE_DATA:
            root = Path(unquote(urlsplit(data_url).path))
            if root.exists():
                if not root.is_dir():
                    raise FileExistsError(17, "the data location is not a directory", data_url)
                LocalBlockStore(root).check_claimable(filespace_id)
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
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    engine = open_engine(engine_url)
    try:
        if engine.exists():
            raise FileExistsError(17, "a filespace already exists here", text)
        engine.initialize(settings, time.time_ns())
    finally:
        engine.close()
    if data_url != RELATIVE_DATA:  # the default block directory is the filespace's by place
        if store is None:
            store = open_block_store(data_url)
        try:
            store.claim(filespace_id)
        finally:
            store.close()
    if directory is not None:
        config = {"database": DATABASE_FILE, "created_by": "filespace"}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    if key is None:
        keys.store_key(filespace_id, raw_key)
    return open(text, key=raw_key)


def open(
    location: str | os.PathLike[str],
    *,
    key: str | bytes | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    cache_size_mb: int = 1024,
) -> Filespace:
    """Open an existing filespace."""
    text = as_text(location)
    if isinstance(cache_size_mb, bool) or not isinstance(cache_size_mb, int) or cache_size_mb < 0:
        raise ValueError(f"cache_size_mb must be a non-negative int, got {cache_size_mb!r}")
    engine_url = engine_url_of(text)
    if engine_url.startswith("sqlite:///") and not Path(engine_url[len("sqlite://") :]).exists():
        raise FileNotFoundError(2, "no filespace at this location", text)
    engine = open_engine(engine_url)
    try:
        if not engine.exists():
            raise NotAFilespaceError(f"{text} holds no filespace")
        settings = engine.settings()
        schema = int(settings.get("schema_version", "0"))
        version = int(settings.get("format_version", "0"))
        if schema > SCHEMA_VERSION or version > CURRENT_FORMAT:
            raise UnsupportedFormatError(
                f"{text} has format {version} (schema {schema}), newer than this version of "
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
    keys.verify_key(raw, filespace_id, settings["key_check"])
    return raw


def upgrade(location: str | os.PathLike[str]) -> int:
    """Migrate a filespace to the current format in place; returns the new format."""
    text = as_text(location)
    engine_url = engine_url_of(text)
    engine = open_engine(engine_url)
    try:
        if not engine.exists():
            raise NotAFilespaceError(f"{text} holds no filespace")
        version = int(engine.settings().get("format_version", "0"))
        if version > CURRENT_FORMAT:
            raise UnsupportedFormatError(f"{text} has format {version}, newer than this code")
        engine.migrate()
        if version < CURRENT_FORMAT:
            engine.set_setting("format_version", str(CURRENT_FORMAT))
        return CURRENT_FORMAT
    finally:
        engine.close()


class Filespace:
    """An open filespace: ``fs`` for the tree, ``connect`` for external files."""

    def __init__(
        self,
        engine: Engine,
        *,
        location: str,
        settings: dict[str, str],
        key: bytes | None,
        cache_dir: Path | None,
        cache_size_mb: int,
    ) -> None:
        self._engine = engine
        self._location = location
        self._key = key
        self.id: str = settings["filespace_id"]
        self.name: str = settings["name"]
        self.cache_dir = cache_dir
        self.cache_size_mb = cache_size_mb
        self._data_url = resolve_data_url(engine.url, settings["data_url"])
        self._block_store: BlockStore | None = None
        self._sealer_cache: Sealer | None = None
        self._closed = False
        self.connect = ConnectManager(engine, self._sealer, location=location)
        from filespace.io.cache import BlockCache

        self.fs = Filesystem(
            engine,
            self._blocks,
            int(settings.get("block_size", DEFAULT_BLOCK_SIZE)),
            self.connect.url_provider,
            cache=BlockCache.for_filespace(self.id, cache_dir, cache_size_mb),
        )

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
        """The location this filespace was opened from (a directory or an engine URL)."""
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
        settings = self._engine.settings()
        try:
            sealed = base64.b64decode(settings[_SEALED_DATA_SECRET], validate=True)
            region, endpoint = settings["data_s3_region"], settings["data_s3_endpoint"]
            access_key = settings["data_s3_access_key"]
            virtual_addressing = settings["data_s3_virtual_addressing"] == "1"
        except (KeyError, ValueError):
            raise NotAFilespaceError(
                f"filespace {self.id}: the settings of its S3 block store are incomplete"
            ) from None
        return S3BlockStoreOptions(
            region=region,
            endpoint=endpoint,
            access_key=access_key,
            secret_key=self._sealer().open(sealed, _DATA_SECRET_RECORD),
            virtual_addressing=virtual_addressing,
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

    def _sealer(self) -> Sealer:
        if self._sealer_cache is None:
            settings = self._engine.settings()
            key = self._key if self._key is not None else _find_key(settings, None)
            if key is None:
                raise KeyNotFoundError(
                    f"no key for filespace {self.id}: pass key= to filespace.open, set "
                    f"{keys.KEY_ENV}, or restore the key file {keys.key_file(self.id)}"
                )
            self._sealer_cache = Sealer(key, self.id, settings["key_id"])
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
