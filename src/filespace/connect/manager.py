"""``fsp.connect``: data stores and external links (the reference SDK's ConnectManager).

The facade over Connect's parts: the availability gate (``gate``), stores and
their sealed secrets (``stores``), the sealed settings (``settings``),
clients, signers and URLs (``access``),
single links (``links``), many links (``bulk``), mirroring (``mirror``) and
the listing cursor (``cursors``). Every method checks its input before it
touches anything, so bad input gets one clear error and changes nothing.
Connect must be available (format 9 or newer, and enabled); otherwise every
method but ``are_data_stores_available``, ``enable`` and ``disable`` raises
``ConnectUnavailableError`` saying how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from filespace.connect import bulk, cursors, feeds
from filespace.connect import events as notifications
from filespace.connect import mirror as mirroring
from filespace.connect import validation as check
from filespace.connect.access import Access, verify
from filespace.connect.follower import Follower, FollowStats
from filespace.connect.gate import FIRST_CONNECT_FORMAT, Gate
from filespace.connect.links import Links
from filespace.connect.models import (
    ConnectSettings,
    DataStoreInfo,
    ExternalFileInfo,
    LinkedFilesResult,
    LinkItem,
    LinkReport,
    MirrorProgress,
    MirrorReport,
    S3Credentials,
    S3DataStoreConfig,
    SyncReport,
)
from filespace.connect.settings import Settings
from filespace.connect.stores import Stores
from filespace.errors import DataStoreNotFoundError
from filespace.objects.s3 import S3Client, S3Target
from filespace.redaction import public_location
from filespace.resolver import Resolver

if TYPE_CHECKING:
    from filespace.meta.engine import Engine
    from filespace.sealing import Sealer

__all__ = ["FIRST_CONNECT_FORMAT", "ConnectManager"]


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
        location = public_location(location)  # shown in its repr and messages: no password
        self._location = location
        self._resolver = Resolver(engine)
        self._gate = Gate(engine, sealer, location)
        self._stores = Stores(engine, sealer)
        self._settings = Settings(engine, sealer)
        self._access = Access(
            engine, sealer, self._gate.require, location, self._settings.allows_private_urls
        )
        self._links = Links(engine, self._stores, self._access)

    def __repr__(self) -> str:
        return f"ConnectManager(location={self._location!r})"

    @property
    def url_provider(self) -> Access:
        """The read path's URL provider for links (``io.external.UrlProvider``)."""
        return self._access

    # -- availability ----------------------------------------------------------
    def are_data_stores_available(self) -> bool:
        """Whether the format supports external files (9+) and Connect is enabled."""
        return self._gate.available()

    def enable(self) -> None:
        """Turn Connect on for this filespace (needs the filespace key); idempotent."""
        self._gate.enable()

    # -- settings ----------------------------------------------------------------
    def configure(self, *, allow_private_urls: bool | None = None) -> ConnectSettings:
        """Change Connect's settings (needs the filespace key); returns them all.

        ``allow_private_urls=True`` lets HTTP links reach loopback, private,
        link-local (cloud metadata), unspecified, multicast and reserved
        addresses, which are refused by default (``PrivateUrlError``); ``False``
        refuses them again, for links made meanwhile too. ``None`` keeps a
        setting as it is. The settings are sealed under the filespace key, so
        only a keyholder can change them: without the key ``KeyNotFoundError``.
        A non-bool is a ``ValueError``.
        """
        self._gate.require()
        return self._settings.configure(allow_private_urls)

    def get_settings(self) -> ConnectSettings:
        """Connect's settings: the defaults until ``configure`` changes them.

        A stored value that does not open with this filespace's key (tampered
        with, or copied from another filespace) raises ``WrongKeyError``.
        """
        self._gate.require()
        return self._settings.get()

    def disable(self) -> None:
        """Turn Connect off for this filespace; idempotent.

        Refused with ``ConnectInUseError`` (its ``count`` says how many) while
        any external file is linked, S3 or HTTP; nothing is changed then. Data
        stores stay, sealed, and are there again after ``enable()``. Clients
        that have already used Connect keep it until they reopen the filespace.
        """
        self._gate.disable()

    # -- data stores -------------------------------------------------------------
    def add_data_store(self, name: str, config: S3DataStoreConfig) -> DataStoreInfo:
        """Add an S3 data store; its secret is sealed before it is stored."""
        self._gate.require()
        return self._stores.add(name, config)

    def list_data_stores(self) -> list[DataStoreInfo]:
        """Every data store, by name; ``secret_key`` is empty."""
        self._gate.require()
        return self._stores.all()

    def get_data_store(self, name: str) -> DataStoreInfo | None:
        """One data store with its decrypted ``secret_key``, or ``None``."""
        self._gate.require()
        return self._stores.find(name, with_secret=True)

    def data_store(self, name: str) -> DataStoreInfo:
        """One data store without its secret (``secret_key`` is ``""``; no key needed).

        Raises ``DataStoreNotFoundError`` if there is none by that name.
        """
        self._gate.require()
        return self._stores.info(self._stores.record(name), with_secret=False)

    def remove_data_store(self, name: str) -> None:
        """Remove a data store that has no linked files."""
        self._gate.require()
        self._stores.remove(name)
        self._access.forget()

    def rekey_data_store(
        self,
        name: str,
        credentials: S3Credentials | None = None,
        *,
        new_access_key: str | None = None,
        new_secret_key: str | None = None,
    ) -> None:
        """Rotate a data store's credentials; later reads use only the new ones."""
        self._gate.require()
        self._stores.rekey(name, credentials, new_access_key, new_secret_key)
        self._access.forget()

    def verify_data_store(self, store: str | S3DataStoreConfig) -> None:
        """Check that a bucket answers its credentials (one ListObjects of one key).

        ``store`` is the name of a data store (its stored credentials are used)
        or an ``S3DataStoreConfig`` to check before adding it or rekeying to it
        (checked like ``add_data_store`` first: ``ValueError``). Raises
        ``DataStoreAccessError`` saying why the bucket refused, with ``status``
        ``"unreachable"``, ``"auth failed"``, ``"no such bucket"`` or
        ``"error (CODE)"``; ``DataStoreNotFoundError`` for an unknown name.
        """
        self._gate.require()
        if isinstance(store, str):
            record = self._stores.record(store)
            verify(self._access.client(record), record.access_key)
            return
        config = check.data_store_config(store)
        bucket = S3Target(
            config.bucket_name, config.region, config.endpoint, config.use_virtual_addressing
        )
        verify(S3Client(bucket, config.access_key, config.secret_key), config.access_key)

    def client_for(self, name: str) -> S3Client:
        """The S3 client of a data store (used by tests and tools that talk to the bucket)."""
        self._gate.require()
        return self._access.client(self._stores.record(name))

    # -- links ---------------------------------------------------------------------
    def link_file(
        self,
        file_path: str,
        data_store_name: str,
        object_id: str,
        size: int | None = None,
        checksum: str = "",
        *,
        create_parents: bool = False,
    ) -> None:
        """Link an S3 object as a read-only file at ``file_path``.

        Without both ``size`` and ``checksum`` one HeadObject learns them (a
        missing object: ``ObjectNotFoundError``). The parent directory must
        exist (``MissingParentError``) unless ``create_parents``: then the
        missing ones are made first, in one transaction, and the link in a
        second (the engine has no single operation for both); if the link
        then fails, the directories made for it are removed again.
        """
        self._gate.require()
        try:
            self._links.link_file(
                file_path, data_store_name, object_id, size, checksum, create_parents=create_parents
            )
        except DataStoreNotFoundError:
            # The fast path names the store to the engine: say what the names are.
            raise self._stores.unknown(data_store_name) from None

    def head_object(self, data_store_name: str, object_id: str) -> tuple[int, str]:
        """``(size, checksum)`` of an object of a data store, by one HeadObject; links nothing.

        A missing object raises ``ObjectNotFoundError``, any other refusal
        ``DataStoreAccessError``; an object over 5 TiB ``ValueError``.
        """
        self._gate.require()
        return self._links.head(data_store_name, object_id)

    def link_http_file(self, file_path: str, url: str, *, size: int | None = None) -> None:
        """Link an HTTP(S) URL as a read-only file; learns its size unless given.

        The URL's host must resolve to a public address: loopback, private,
        link-local (cloud metadata), unspecified, multicast and reserved ones
        raise ``PrivateUrlError`` unless ``configure(allow_private_urls=True)``;
        every read checks the address it connects to again. Redirects are not
        followed. A malformed URL is a ``ValueError``; one that does not answer
        a ``RuntimeError``. A weak ETag (``W/"..."``) is not kept as checksum.
        """
        self._gate.require()
        self._links.link_http_file(file_path, url, size)

    def update_http_file_url(
        self, file_path: str, new_url: str, *, size: int | None = None
    ) -> None:
        """Point an HTTP link at a new URL (checked like ``link_http_file``)."""
        self._gate.require()
        self._links.update_http_file_url(file_path, new_url, size)

    def unlink_file(self, file_path: str) -> None:
        """Remove a link (never a native file, never the object).

        Nothing at ``file_path``: ``LinkNotFoundError``, both a
        ``FileNotFoundError`` and a ``RuntimeError``; not a link: ``NotALinkError``.
        """
        self._gate.require()
        self._links.unlink_file(file_path)

    def unlink_tree(
        self, dir_path: str, *, data_store_name: str | None = None, dry_run: bool = False
    ) -> int:
        """Remove every link under a directory, or only ``data_store_name``'s; how many.

        Native files, directories and symlinks stay, and no object is touched.
        The work is done by the engine in transactions of at most 5,000 links,
        counters included, so a tree of millions costs no round trip per link;
        ``dry_run`` only counts. ``NotADirectoryError`` for a file,
        ``DataStoreNotFoundError`` for an unknown store.
        """
        self._gate.require()
        if data_store_name is not None:
            check.store_name(data_store_name)
        return self._links.unlink_tree(dir_path, data_store_name, dry_run=dry_run)

    def get_external_file(self, path: str) -> ExternalFileInfo:
        """Where the external file at ``path`` comes from."""
        self._gate.require()
        return self._links.get_external_file(path)

    # -- listing -----------------------------------------------------------------------
    def list_external_files(
        self, data_store_name: str, limit: int = 100, cursor: str = ""
    ) -> LinkedFilesResult:
        """One page of a store's linked files, in a stable order; pass ``cursor`` on."""
        self._gate.require()
        check.store_name(data_store_name)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValueError(f"limit must be an int from 1 to 1000, got {limit!r}")
        store = self._stores.record(data_store_name)
        after = cursors.decode(cursor, store.id)
        page = self._engine.links_page(store.id, after, limit)
        file_paths = self._engine.paths_of(page.entry_ids) if page.entry_ids else []
        last = page.entry_ids[-1] if page.entry_ids else after
        return LinkedFilesResult(
            file_paths=file_paths,
            file_ids=list(page.entry_ids),
            has_more=page.has_more,
            cursor=cursors.encode(store.id, last) if page.has_more else "",
        )

    def count_external_files(self, data_store_name: str) -> int:
        """How many files are linked to a store (kept as a counter: constant time)."""
        self._gate.require()
        return self._engine.count_links(self._stores.record(data_store_name).id)[0]

    # -- bulk ----------------------------------------------------------------------------
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
        size and checksum are looked up with HeadObject (16 in flight; fewer while
        the server throttles, see docs/semantics.md). Links are
        written in batches of 20,000, each one transaction: a batch lands whole or
        not at all. A failed item becomes a ``LinkFailure`` (reasons include
        "path taken", "missing parent", "object not found" and the ``ValueError``
        text of a malformed item); the others are linked. ``create_parents`` makes
        missing parent directories first. An unknown store raises
        ``DataStoreNotFoundError``; an engine failure is raised, and the batches
        before it stay linked.
        """
        self._gate.require()
        store = self._stores.record(data_store_name)
        return bulk.link_files(
            self._engine,
            self._resolver,
            store,
            lambda: self._access.client(store),
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
        self._gate.require()
        store = self._stores.record(data_store_name)
        return mirroring.mirror(
            self._engine,
            self._resolver,
            store,
            self._access.client(store),
            prefix,
            dest_dir,
            strip_prefix=strip_prefix,
            delete=delete,
            dry_run=dry_run,
            progress=progress,
        )

    # -- following a bucket ----------------------------------------------------------------
    def apply_events(
        self,
        events: object,
        *,
        data_store_name: str,
        prefix: str = "",
        dest_dir: str,
        strip_prefix: bool = True,
    ) -> SyncReport:
        """Apply S3 event notifications to ``dest_dir`` as ``mirror`` would; see ``SyncReport``.

        ``events`` is one document or an iterable of them: a dict, or JSON
        ``str``/``bytes``, in the S3 event format (``Records[]``; SNS and SQS
        envelopes are opened). ``ObjectCreated:*`` links or re-links with the
        record's size and ETag (no HeadObject), ``ObjectRemoved:*`` unlinks;
        keys are URL-decoded and mapped to paths as ``mirror`` maps them
        (``strip_prefix``). Per key, an event whose ``sequencer`` is not later
        than the last one applied to ``dest_dir`` changes nothing ("stale"), so
        duplicated and reordered deliveries converge. Applied in batches of
        2,000 keys, each one transaction. ``dest_dir`` is made if missing.
        """
        self._gate.require()
        documents = notifications.documents(events)
        store = self._stores.record(data_store_name)
        applier = notifications.Applier(
            self._engine,
            self._resolver,
            store,
            prefix,
            dest_dir,
            strip_prefix=strip_prefix,
        )
        return applier.apply(
            outcome for document in documents for outcome in notifications.parse_records(document)
        )

    def follow(
        self,
        source: str,
        *,
        data_store_name: str,
        prefix: str = "",
        dest_dir: str,
        strip_prefix: bool = True,
        reconcile_every: float | None = None,
        progress: Callable[[FollowStats], object] | None = None,
    ) -> Follower:
        """A ``Follower`` applying the event documents ``source`` delivers, as ``apply_events``.

        ``source``: ``amqp://user:pass@host:port/vhost?queue=Q``,
        ``nats://host:port/SUBJECT``, ``sqs://`` + a queue URL, or
        ``http://HOST:PORT/PATH`` (a webhook listener; needs ``set_webhook_token``).
        Nothing is connected until ``Follower.run``. Messages are acknowledged
        only after their changes commit. ``reconcile_every`` seconds: an
        incremental ``mirror`` of the prefix catches what was never delivered.
        ``progress`` is called with the stats once connected, after every batch
        and reconcile, and when the feed is lost and found again. See
        ``docs/following.md``.
        """
        self._gate.require()
        feeds.check_source(source)
        if reconcile_every is not None and (
            isinstance(reconcile_every, bool)
            or not isinstance(reconcile_every, int | float)
            or not reconcile_every > 0
        ):
            raise ValueError(f"reconcile_every must be seconds > 0, got {reconcile_every!r}")
        if progress is not None and not callable(progress):
            raise ValueError("progress must be callable or None")
        store = self._stores.record(data_store_name)
        applier = notifications.Applier(
            self._engine, self._resolver, store, prefix, dest_dir, strip_prefix=strip_prefix
        )
        feed = feeds.open_feed(source, self._settings.webhook_token)

        def reconcile() -> MirrorReport:
            return self.mirror(data_store_name, prefix, dest_dir, strip_prefix=strip_prefix)

        return Follower(source, feed, applier, reconcile, reconcile_every, progress)

    def set_webhook_token(self, token: str | None) -> None:
        """Set (``None``: remove) the bearer token a webhook ``follow`` requires; needs the key.

        16 to 256 characters of ``A-Z a-z 0-9 . _ ~ + / = -``; kept sealed under
        the filespace key with Connect's settings, never shown.
        """
        self._gate.require()
        self._settings.set_webhook_token(token)
