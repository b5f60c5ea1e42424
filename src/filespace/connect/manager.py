"""``fsp.connect``: data stores and external links (the reference SDK's ConnectManager).

Every method checks its input before it touches anything, so bad input gets
one clear error and changes nothing. Connect must be available (format 9 or
newer, and enabled); otherwise every method but ``are_data_stores_available``
and ``enable`` raises ``ConnectUnavailableError`` saying how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from filespace import paths
from filespace.connect import bulk
from filespace.connect import mirror as mirroring
from filespace.connect import validation as check
from filespace.connect.models import (
    DataStoreInfo,
    DataStoreKind,
    DataStoreRekeyState,
    ExternalFileInfo,
    LinkedFilesResult,
    LinkItem,
    LinkReport,
    MirrorProgress,
    MirrorReport,
    S3Credentials,
    S3DataStoreConfig,
)
from filespace.connect.signing import UrlSigner
from filespace.errors import (
    ConnectUnavailableError,
    DataStoreError,
    DataStoreExistsError,
    DataStoreLimitError,
    DataStoreNotEmptyError,
    DataStoreNotFoundError,
    LinkExistsError,
    MissingParentError,
    NotALinkError,
    ObjectNotFoundError,
)
from filespace.fs import external_info
from filespace.io.external import ExternalObject
from filespace.meta.engine import (
    NameTaken,
    NoSuchEntry,
    NoSuchStore,
    StoreBusy,
    StoreLimit,
    StoreTaken,
)
from filespace.meta.records import EntryRecord, NewLink, StoreRecord
from filespace.objects import http
from filespace.objects.s3 import S3AccessError, S3Client, S3Target
from filespace.redaction import without_query
from filespace.resolver import Resolver

if TYPE_CHECKING:
    from filespace.meta.engine import Engine
    from filespace.sealing import Sealer

FIRST_CONNECT_FORMAT = 9
_CURSOR_PREFIX = "c1."


def _secret_record(store_uid: str) -> str:
    return f"data_store:{store_uid}:secret_key"


class ConnectManager:
    """Manages data stores and the external files linked from them."""

    def __init__(
        self,
        engine: Engine,
        sealer: Callable[[], Sealer],
        *,
        location: str,
    ) -> None:
        self._engine = engine
        self._sealer = sealer
        self._location = location
        self._resolver = Resolver(engine)
        self._enabled_seen = False
        self._signers: dict[int, tuple[tuple[str, bytes], UrlSigner]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ConnectManager(location={self._location!r})"

    # -- availability ----------------------------------------------------------
    def _format_version(self) -> int:
        return int(self._engine.settings().get("format_version", "0"))

    def are_data_stores_available(self) -> bool:
        """Whether the format supports external files (9+) and Connect is enabled."""
        if self._enabled_seen:
            return True
        settings = self._engine.settings()
        available = (
            int(settings.get("format_version", "0")) >= FIRST_CONNECT_FORMAT
            and settings.get("connect_enabled") == "1"
        )
        self._enabled_seen = available  # enabling is one-way, so "yes" can be kept
        return available

    def _require(self) -> None:
        if self.are_data_stores_available():
            return
        version = self._format_version()
        if version < FIRST_CONNECT_FORMAT:
            raise ConnectUnavailableError(
                f"Connect needs filespace format {FIRST_CONNECT_FORMAT} or newer; this one is "
                f"format {version}: upgrade it with filespace.upgrade({self._location!r}) "
                "or `filespace upgrade LOCATION`"
            )
        raise ConnectUnavailableError(
            "Connect is not enabled on this filespace: call fsp.connect.enable() "
            "or run `filespace connect enable`"
        )

    def enable(self) -> None:
        """Turn Connect on for this filespace (needs the filespace key); idempotent."""
        version = self._format_version()
        if version < FIRST_CONNECT_FORMAT:
            self._require()
        self._sealer()  # proves the key is at hand before secrets can be stored
        self._engine.set_setting("connect_enabled", "1")
        self._enabled_seen = True

    # -- data stores ---------------------------------------------------------------
    def add_data_store(self, name: str, config: S3DataStoreConfig) -> DataStoreInfo:
        """Add an S3 data store; its secret is sealed before it is stored."""
        self._require()
        check.store_name(name)
        if not isinstance(config, S3DataStoreConfig):
            raise ValueError("config must be an S3DataStoreConfig")
        access_key = check.credential(config.access_key, "access_key")
        secret_key = check.credential(config.secret_key, "secret_key")
        bucket = check.bucket_name(config.bucket_name)
        region = check.region(config.region)
        endpoint = check.endpoint(config.endpoint)
        minutes = check.url_expiration(config.url_expiration_minutes)
        if not isinstance(config.use_virtual_addressing, bool):
            raise ValueError("use_virtual_addressing must be a bool")
        sealer = self._sealer()
        uid = uuid.uuid4().hex
        record = StoreRecord(
            id=0,
            uid=uid,
            name=name,
            kind=DataStoreKind.S3.value,
            bucket=bucket,
            region=region,
            endpoint=endpoint,
            virtual_addressing=config.use_virtual_addressing,
            url_expiration_minutes=minutes,
            access_key=access_key,
            sealed_secret=sealer.seal(secret_key, _secret_record(uid)),
            key_id=sealer.key_id,
            rekey_state=DataStoreRekeyState.NO_REKEY.value,
            created_ns=time.time_ns(),
        )
        try:
            added = self._engine.add_store(record, check.MAX_DATA_STORES)
        except StoreTaken:
            raise DataStoreExistsError(f"a data store named {name!r} already exists") from None
        except StoreLimit:
            raise DataStoreLimitError(
                f"this filespace already has the maximum of {check.MAX_DATA_STORES} data stores"
            ) from None
        return self._info(added, with_secret=False)

    def _store(self, name: str) -> StoreRecord:
        if not isinstance(name, str) or not name:
            raise ValueError("a data store name must be a non-empty string")
        store = self._engine.store(name)
        if store is None:
            raise DataStoreNotFoundError(f"no data store named {name!r}")
        return store

    def _info(self, store: StoreRecord, *, with_secret: bool) -> DataStoreInfo:
        secret = ""
        if with_secret:
            secret = self._sealer().open(store.sealed_secret, _secret_record(store.uid))
        return DataStoreInfo(
            name=store.name,
            access_key=store.access_key,
            secret_key=secret,
            bucket_name=store.bucket,
            region=store.region,
            endpoint=store.endpoint,
            url_expiration_minutes=store.url_expiration_minutes,
            use_virtual_addressing=store.virtual_addressing,
            kind=DataStoreKind(store.kind),
            key_id=store.key_id,
            rekey_state=DataStoreRekeyState(store.rekey_state),
        )

    def list_data_stores(self) -> list[DataStoreInfo]:
        """Every data store, by name; ``secret_key`` is empty."""
        self._require()
        return [self._info(store, with_secret=False) for store in self._engine.stores()]

    def get_data_store(self, name: str) -> DataStoreInfo | None:
        """One data store with its decrypted ``secret_key``, or ``None``."""
        self._require()
        check.store_name(name)
        store = self._engine.store(name)
        return None if store is None else self._info(store, with_secret=True)

    def remove_data_store(self, name: str) -> None:
        """Remove a data store that has no linked files."""
        self._require()
        check.store_name(name)
        try:
            self._engine.remove_store(name)
        except NoSuchStore:
            raise DataStoreNotFoundError(f"no data store named {name!r}") from None
        except StoreBusy as busy:
            raise DataStoreNotEmptyError(name, busy.count) from None
        self._forget_signers()

    def rekey_data_store(
        self,
        name: str,
        credentials: S3Credentials | None = None,
        *,
        new_access_key: str | None = None,
        new_secret_key: str | None = None,
    ) -> None:
        """Rotate a data store's credentials; later reads use only the new ones."""
        self._require()
        check.store_name(name)
        keyword_given = new_access_key is not None or new_secret_key is not None
        if credentials is not None and keyword_given:
            raise ValueError("pass credentials or new_access_key/new_secret_key, not both")
        if credentials is not None:
            if not isinstance(credentials, S3Credentials):
                raise ValueError("credentials must be S3Credentials")
            new_access_key, new_secret_key = credentials.access_key, credentials.secret_key
        elif not keyword_given:
            raise ValueError("new credentials are required")
        access_key = check.credential(new_access_key, "new access key")
        secret_key = check.credential(new_secret_key, "new secret key")
        store = self._store(name)
        sealer = self._sealer()
        try:
            self._engine.update_store(name, rekey_state=DataStoreRekeyState.IN_PROGRESS.value)
            self._engine.update_store(
                name,
                access_key=access_key,
                sealed_secret=sealer.seal(secret_key, _secret_record(store.uid)),
                key_id=sealer.key_id,
                rekey_state=DataStoreRekeyState.NO_REKEY.value,
            )
        except NoSuchStore:
            raise DataStoreNotFoundError(f"no data store named {name!r}") from None
        self._forget_signers()

    # -- S3 access -------------------------------------------------------------------
    def _forget_signers(self) -> None:
        with self._lock:
            self._signers.clear()

    def _signer(self, store: StoreRecord) -> UrlSigner:
        """The signer for the store's current credentials (a new one after a rekey)."""
        identity = (store.access_key, store.sealed_secret)
        with self._lock:
            cached = self._signers.get(store.id)
            if cached is not None and cached[0] == identity:
                return cached[1]
        secret = self._sealer().open(store.sealed_secret, _secret_record(store.uid))
        client = S3Client(
            S3Target(
                bucket=store.bucket,
                region=store.region,
                endpoint=store.endpoint,
                virtual_addressing=store.virtual_addressing,
            ),
            store.access_key,
            secret,
        )
        signer = UrlSigner(client, store.url_expiration_minutes * 60)
        with self._lock:
            self._signers[store.id] = (identity, signer)
        return signer

    def client_for(self, name: str) -> S3Client:
        """The S3 client of a data store (used by mirror and the CLI's checks)."""
        self._require()
        return self._signer(self._store(name)).client

    def open_external(self, entry: EntryRecord, path: str) -> ExternalObject:
        """A byte-range source for a linked entry (used by ``fs.open``)."""
        link = entry.link
        if link is None:
            raise NotALinkError(f"{path} is not an external file")
        identity = http.Identity(etag=link.checksum, size=link.size)
        if link.kind == "http":
            url = link.url or ""
            place = "url:" + url.split("/")[2] if url.count("/") >= 2 else ""
            return ExternalObject(path, link.size, identity, lambda fresh: url, place)
        self._require()
        store_id = link.data_store_id
        key = link.object_key or ""

        def urls(fresh: bool) -> str:
            # A fresh URL re-reads the store, so credentials rotated by another
            # client are picked up instead of re-signing with the old ones.
            store = self._engine.store_by_id(store_id) if store_id is not None else None
            if store is None:
                raise DataStoreError(f"the data store of {path} no longer exists")
            return self._signer(store).url(key, fresh=fresh)

        return ExternalObject(path, link.size, identity, urls, f"store:{self._location}:{store_id}")

    # -- links ---------------------------------------------------------------------------
    def link_file(
        self,
        file_path: str,
        data_store_name: str,
        object_id: str,
        size: int | None = None,
        checksum: str = "",
    ) -> None:
        """Link an S3 object as a read-only file at ``file_path``.

        Without both ``size`` and ``checksum`` one HeadObject learns them.
        """
        self._require()
        parent_names, name = paths.parent_and_name(file_path)
        check.store_name(data_store_name)
        check.object_key(object_id)
        if size is not None:
            check.size(size)
        etag = check.checksum(checksum)
        if (size is None) != (etag == ""):
            raise ValueError("give both size and checksum, or neither")
        if size is not None:
            link = NewLink(size=size, checksum=etag, object_key=object_id)
            self._link_at(file_path, parent_names, name, link, data_store_name)
            return
        parent, name = self._link_parent(file_path)
        store = self._store(data_store_name)
        if size is None:
            try:
                head = self._signer(store).client.head(object_id)
            except S3AccessError as exc:
                if exc.code == "NotFound":
                    raise ObjectNotFoundError(
                        f"no object {object_id!r} in bucket {store.bucket!r}"
                    ) from None
                raise DataStoreError(f"cannot look up {object_id!r}: {exc}") from None
            size, etag = head.size, head.etag
        self._create_link(
            parent.id,
            name,
            file_path,
            NewLink(size=size, checksum=etag, data_store_id=store.id, object_key=object_id),
        )

    def _link_at(
        self,
        file_path: str,
        parent_names: tuple[str, ...],
        name: str,
        link: NewLink,
        store_name: str | None,
    ) -> None:
        """Create a link in one engine transaction; resolve the slow way if that can't."""
        try:
            self._engine.create_at(
                parent_names, name, "file", time.time_ns(), link=link, store_name=store_name
            )
            return
        except NameTaken:
            raise LinkExistsError(file_path) from None
        except NoSuchStore:
            raise DataStoreNotFoundError(f"no data store named {store_name!r}") from None
        except NoSuchEntry:
            pass  # a missing parent, or a symlink on the way: find out which
        parent, _ = self._link_parent(file_path)
        if store_name is not None:
            link = dataclasses.replace(link, data_store_id=self._store(store_name).id)
        self._create_link(parent.id, name, file_path, link)

    def _link_parent(self, file_path: str) -> tuple[EntryRecord, str]:
        try:
            return self._resolver.parent(file_path)
        except (FileNotFoundError, NotADirectoryError):
            raise MissingParentError(file_path) from None

    def _create_link(self, parent_id: int, name: str, file_path: str, link: NewLink) -> None:
        try:
            self._engine.create(parent_id, name, "file", time.time_ns(), link=link)
        except NameTaken:
            raise LinkExistsError(file_path) from None
        except NoSuchEntry:
            raise MissingParentError(file_path) from None
        except NoSuchStore:
            raise DataStoreNotFoundError("the data store was removed meanwhile") from None

    def link_http_file(self, file_path: str, url: str, *, size: int | None = None) -> None:
        """Link an HTTP(S) URL as a read-only file; learns its size unless given."""
        self._require()
        paths.split(file_path)
        check.http_url(url)
        if size is not None:
            check.size(size)
        parent, name = self._link_parent(file_path)
        size, etag = self._probe(url, size)
        self._create_link(parent.id, name, file_path, NewLink(size=size, checksum=etag, url=url))

    @staticmethod
    def _probe(url: str, size: int | None) -> tuple[int, str]:
        if size is not None:
            return size, ""
        try:
            found, etag = http.probe(url)
        except http.RangeError as exc:
            raise RuntimeError(f"cannot reach {without_query(url)}: {exc}") from None
        return found, check.checksum(etag) if etag else ""

    def update_http_file_url(
        self, file_path: str, new_url: str, *, size: int | None = None
    ) -> None:
        """Point an HTTP link at a new URL."""
        self._require()
        check.http_url(new_url)
        if size is not None:
            check.size(size)
        entry = self._external_entry(file_path)
        if entry.link is None or entry.link.kind != "http":
            raise NotALinkError(f"{file_path} is not an HTTP link")
        size, etag = self._probe(new_url, size)
        self._engine.update_link(
            entry.id, size=size, checksum=etag, url=new_url, now_ns=time.time_ns()
        )

    def _external_entry(self, file_path: str) -> EntryRecord:
        entry = self._resolver.walk(file_path, follow_last=False)
        if entry.link is None:
            raise NotALinkError(f"{file_path} is not an external file")
        return entry

    def unlink_file(self, file_path: str) -> None:
        """Remove a link (never a native file, never the object)."""
        self._require()
        entry = self._external_entry(file_path)
        try:
            self._engine.remove(entry.id)
        except NoSuchEntry:
            raise FileNotFoundError(2, "no such file or directory", file_path) from None

    def get_external_file(self, path: str) -> ExternalFileInfo:
        """Where the external file at ``path`` comes from."""
        self._require()
        entry = self._external_entry(path)
        info = external_info(entry, paths.normalize(path))
        assert info is not None
        return info

    # -- listing -----------------------------------------------------------------------------
    def list_external_files(
        self, data_store_name: str, limit: int = 100, cursor: str = ""
    ) -> LinkedFilesResult:
        """One page of a store's linked files, in a stable order; pass ``cursor`` on."""
        self._require()
        check.store_name(data_store_name)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValueError(f"limit must be an int from 1 to 1000, got {limit!r}")
        store = self._store(data_store_name)
        after = self._decode_cursor(cursor, store.id)
        page = self._engine.links_page(store.id, after, limit)
        file_paths = self._engine.paths_of(page.entry_ids) if page.entry_ids else []
        last = page.entry_ids[-1] if page.entry_ids else after
        return LinkedFilesResult(
            file_paths=file_paths,
            file_ids=list(page.entry_ids),
            has_more=page.has_more,
            cursor=self._encode_cursor(store.id, last) if page.has_more else "",
        )

    @staticmethod
    def _encode_cursor(store_id: int, after: int) -> str:
        raw = f"{store_id}:{after}".encode()
        return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str, store_id: int) -> int:
        if not isinstance(cursor, str):
            raise ValueError("cursor must be a string")
        if cursor == "":
            return 0
        if not cursor.startswith(_CURSOR_PREFIX):
            raise ValueError("malformed cursor")
        body = cursor[len(_CURSOR_PREFIX) :]
        try:
            text = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
            owner, after = (int(part) for part in text.split(":"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValueError("malformed cursor") from None
        if owner != store_id or after < 0:
            raise ValueError("the cursor belongs to another data store")
        return after

    def count_external_files(self, data_store_name: str) -> int:
        """How many files are linked to a store (kept as a counter: constant time)."""
        self._require()
        check.store_name(data_store_name)
        return self._engine.count_links(self._store(data_store_name).id)[0]

    # -- bulk ----------------------------------------------------------------------------------
    def link_files(
        self,
        items: Iterable[LinkItem | tuple[Any, ...]],
        *,
        data_store_name: str,
        create_parents: bool = False,
    ) -> LinkReport:
        """Link many objects of one data store; per-item problems are reported, not raised.

        ``items`` are ``LinkItem`` or ``(file_path, object_id[, size[, checksum]])``
        tuples, consumed lazily. Each is checked like ``link_file``; items without
        size and checksum are looked up with HeadObject (16 in flight). Links are
        written in batches of 5,000, each one transaction: a batch lands whole or
        not at all. A failed item becomes a ``LinkFailure`` (reasons include
        "path taken", "missing parent", "object not found" and the ``ValueError``
        text of a malformed item); the others are linked. ``create_parents`` makes
        missing parent directories first. An unknown store raises
        ``DataStoreNotFoundError``; an engine failure is raised, and the batches
        before it stay linked.
        """
        self._require()
        store = self._store(check.store_name(data_store_name))
        return bulk.link_files(
            self._engine,
            self._resolver,
            store,
            lambda: self._signer(store).client,
            items,
            create_parents=create_parents,
        )

    def mirror(
        self,
        data_store_name: str,
        prefix: str,
        dest_dir: str,
        *,
        strip_prefix: bool = True,
        delete: bool = True,
        dry_run: bool = False,
        progress: MirrorProgress | None = None,
    ) -> MirrorReport:
        """Make ``dest_dir`` hold exactly one link per object of the store under ``prefix``.

        New objects are linked, changed ones (ETag or size differ, or the path
        links something else) re-pointed, and with ``delete`` every link of the
        store under ``dest_dir`` that no listed object maps to is removed: the
        directory belongs to the mirror. Missing directories (``dest_dir`` too)
        are made; native files, directories and symlinks are never touched: an
        object whose path one of them holds is skipped.

        The path of an object is its key under ``dest_dir``; ``strip_prefix``
        first removes the prefix up to its last ``/`` (``logs/2024-`` strips
        ``logs/``). Keys that cannot be paths are skipped and reported in
        ``skipped``: an empty, ``.`` or ``..`` name (``a//b``, a trailing ``/``),
        a name over 255 bytes, a path over 4096 bytes, and a key that is also a
        directory prefix (``a/b`` when ``a/b/c`` exists: the file ``a/b`` is
        skipped, the directory wins). Directory markers (keys ending in ``/``
        with no bytes) are skipped silently.

        The listing is streamed and applied in batches of 2,000 objects, each one
        transaction; memory does not grow with the object count, and a run that
        dies half-way is finished by running it again. ``dry_run`` changes
        nothing and reports what a run would do. ``progress`` is called with the
        report so far after every batch.
        """
        self._require()
        store = self._store(check.store_name(data_store_name))
        return mirroring.mirror(
            self._engine,
            self._resolver,
            store,
            self._signer(store).client,
            prefix,
            dest_dir,
            strip_prefix=strip_prefix,
            delete=delete,
            dry_run=dry_run,
            progress=progress,
        )
