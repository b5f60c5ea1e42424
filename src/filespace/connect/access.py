"""Reaching a data store's bucket: credentials to S3 clients and URL signers.

One signer (with its S3 client) is kept per store and set of credentials, so
a rekey, here or by another client, makes a new one; ``forget`` drops them
all after a remove or rekey. ``Access`` is the read path's ``UrlProvider``:
an S3 link's URL is signed here, an HTTP link's URL is used as stored, and
whether HTTP links may reach private addresses is read from the sealed
settings each time the read path asks.
``head_object`` is the one HeadObject lookup and ``verify`` the one bucket
check, each raising public errors that say what went wrong.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from filespace.connect.signing import UrlSigner
from filespace.connect.stores import open_secret
from filespace.errors import DataStoreAccessError, DataStoreError, ObjectNotFoundError
from filespace.io.external import retire_urls
from filespace.meta.records import LinkRecord, StoreRecord
from filespace.objects.s3 import ObjectHead, S3AccessError, S3Client, S3Target
from filespace.paths import MAX_FILE_SIZE

if TYPE_CHECKING:
    from filespace.meta.engine import Engine
    from filespace.sealing import Sealer


class Access:
    """Clients, signers and URLs for the stores of one filespace."""

    def __init__(
        self,
        engine: Engine,
        sealer: Callable[[], Sealer],
        require: Callable[[], None],
        location: str,
        allows_private_urls: Callable[[], bool],
    ) -> None:
        self._engine = engine
        self._allows_private_urls = allows_private_urls
        self._sealer = sealer
        self._require = require  # Connect's availability gate
        self._location = location
        self._signers: dict[int, tuple[tuple[str, bytes], UrlSigner]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Access(location={self._location!r})"

    def forget(self) -> None:
        """Drop every signer and client (after a store is removed or rekeyed).

        Open handles in the whole process (of any ``Filespace``) stop reusing
        the URLs they hold too, so nothing signed with the old credentials is
        sent once the rekey has returned.
        """
        with self._lock:
            self._signers.clear()
        retire_urls()

    def signer(self, store: StoreRecord) -> UrlSigner:
        """The signer for the store's current credentials (a new one after a rekey)."""
        identity = (store.access_key, store.sealed_secret)
        with self._lock:
            cached = self._signers.get(store.id)
            if cached is not None and cached[0] == identity:
                return cached[1]
        # Before any request: a destination changed without the key fails here.
        secret = open_secret(self._engine, self._sealer(), store)
        client = S3Client(target(store), store.access_key, secret)
        signer = UrlSigner(client, store.url_expiration_minutes * 60)
        with self._lock:
            self._signers[store.id] = (identity, signer)
        return signer

    def client(self, store: StoreRecord) -> S3Client:
        """The S3 client of a store's current credentials."""
        return self.signer(store).client

    # -- the read path's UrlProvider ---------------------------------------------
    def place(self, link: LinkRecord) -> str:
        """The server a link is read from: the store, or the URL's host."""
        if link.kind == "http":
            url = link.url or ""
            return "url:" + url.split("/")[2] if url.count("/") >= 2 else ""
        self._require()
        return f"store:{self._location}:{link.data_store_id}"

    def allows_private_urls(self) -> bool:
        """Whether HTTP links may reach private addresses (the sealed setting, read now)."""
        return self._allows_private_urls()

    def url(self, link: LinkRecord, fresh: bool) -> str:
        """A URL for the link's bytes: an HTTP link's own, or a presigned GET."""
        if link.kind == "http":
            return link.url or ""
        # A fresh URL re-reads the store, so credentials rotated by another
        # client are picked up instead of re-signing with the old ones.
        store_id = link.data_store_id
        store = self._engine.store_by_id(store_id) if store_id is not None else None
        if store is None:
            raise DataStoreError(f"the data store {link.data_store_name!r} no longer exists")
        return self.signer(store).url(link.object_key or "", fresh=fresh)


def target(store: StoreRecord) -> S3Target:
    """Where a store's bucket is."""
    return S3Target(
        bucket=store.bucket,
        region=store.region,
        endpoint=store.endpoint,
        virtual_addressing=store.virtual_addressing,
    )


def head_object(client: S3Client, key: str) -> ObjectHead:
    """Size and ETag of ``key``; ``ObjectNotFoundError`` if missing, else ``DataStoreError``.

    An object over ``MAX_FILE_SIZE`` cannot be a file: ``ValueError``.
    """
    try:
        found = client.head(key)
    except S3AccessError as exc:
        bucket = client.target.bucket
        if exc.kind == "not_found":
            raise ObjectNotFoundError(f"no object {key!r} in bucket {bucket!r}") from None
        raise DataStoreAccessError(
            f"cannot look up {key!r} in bucket {bucket!r}: {exc.status} ({exc})", exc.status
        ) from None
    if found.size > MAX_FILE_SIZE:
        raise ValueError(
            f"object {key!r} claims {found.size} bytes, over the limit of {MAX_FILE_SIZE} (5 TiB)"
        )
    return found


def verify(client: S3Client, access_key: str) -> None:
    """Raise ``DataStoreAccessError`` unless the client's bucket answers its credentials."""
    try:
        client.check_bucket()
    except S3AccessError as exc:
        raise DataStoreAccessError(exc.describe(client.target, access_key), exc.status) from None
