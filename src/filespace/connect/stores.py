"""Data stores: adding, finding, rekeying and removing them, with their secrets sealed.

A store's secret key is sealed with the filespace key before it reaches the
engine, bound to the store's uid and to every field that decides where its
requests go (``destination``), and opened only where a caller asks for it
(``get_data_store``) or a client needs it (``connect.access``), both through
``open_secret``.
"""

from __future__ import annotations

import dataclasses
import difflib
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from filespace.connect import validation as check
from filespace.connect.models import (
    DataStoreInfo,
    DataStoreKind,
    DataStoreRekeyState,
    S3Credentials,
    S3DataStoreConfig,
)
from filespace.errors import DataStoreNotFoundError
from filespace.meta.errors import engine_errors
from filespace.meta.records import StoreRecord
from filespace.sealing import Binding, is_legacy

if TYPE_CHECKING:
    from filespace.meta.engine import Engine
    from filespace.sealing import Sealer


_LISTED = 20  # store names an unknown-name error lists at most


def secret_record(store_uid: str) -> str:
    """What a store's sealed secret is bound to: opening it for another store fails."""
    return f"data_store:{store_uid}:secret_key"


def destination(store: StoreRecord) -> Binding:
    """The fields of a store that decide where its signed requests go (bound to the seal)."""
    return {
        "kind": store.kind,
        "bucket": store.bucket,
        "region": store.region,
        "endpoint": store.endpoint,
        "virtual_addressing": bool(store.virtual_addressing),
        "access_key": store.access_key,
    }


def unseal(sealer: Sealer, store: StoreRecord) -> str:
    """The store's secret key; ``IntegrityError`` if its destination was changed without the key.

    A secret sealed before destinations were bound (layout 1) opens as well.
    """
    record = secret_record(store.uid)
    if is_legacy(store.sealed_secret):
        return sealer.open(store.sealed_secret, record, legacy=True)
    return sealer.open(store.sealed_secret, record, destination(store))


def seal(sealer: Sealer, store: StoreRecord, secret: str) -> bytes:
    """``secret`` sealed for ``store``, bound to where it is now."""
    return sealer.seal(secret, secret_record(store.uid), destination(store))


def open_secret(engine: Engine, sealer: Sealer, store: StoreRecord) -> str:
    """``unseal``; a layout-1 secret is resealed, bound to the store as it is now, once."""
    secret = unseal(sealer, store)
    if is_legacy(store.sealed_secret):
        # Conditional: a rekey that landed meanwhile (new credentials) is kept.
        engine.reseal_store(store.name, store.sealed_secret, seal(sealer, store, secret))
    return secret


class Stores:
    """The data stores of one filespace."""

    def __init__(self, engine: Engine, sealer: Callable[[], Sealer]) -> None:
        self._engine = engine
        self._sealer = sealer

    def add(self, name: str, config: S3DataStoreConfig) -> DataStoreInfo:
        """Add an S3 data store (one transaction); its secret is sealed first."""
        check.store_name(name)
        config = check.data_store_config(config)
        sealer = self._sealer()
        uid = uuid.uuid4().hex
        unsealed = StoreRecord(
            id=0,
            uid=uid,
            name=name,
            kind=DataStoreKind.S3.value,
            bucket=config.bucket_name,
            region=config.region,
            endpoint=config.endpoint,
            virtual_addressing=config.use_virtual_addressing,
            url_expiration_minutes=config.url_expiration_minutes,
            access_key=config.access_key,
            sealed_secret=b"",
            key_id=sealer.key_id,
            rekey_state=DataStoreRekeyState.NO_REKEY.value,
            created_ns=time.time_ns(),
        )
        record = dataclasses.replace(
            unsealed, sealed_secret=seal(sealer, unsealed, config.secret_key)
        )
        with engine_errors(store=name):
            added = self._engine.add_store(record, check.MAX_DATA_STORES)
        return self.info(added, with_secret=False)

    def record(self, name: str) -> StoreRecord:
        """The engine's record of a store; ``DataStoreNotFoundError`` if there is none."""
        check.store_name(name)
        store = self._engine.store(name)
        if store is None:
            raise self.unknown(name)
        return store

    def unknown(self, name: str) -> DataStoreNotFoundError:
        """The error for a missing store: the names it may be a typo of, or those there are."""
        names = [store.name for store in self._engine.stores()]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        if close:
            hint = "did you mean " + " or ".join(repr(found) for found in close) + "?"
        elif not names:
            hint = "this filespace has no data stores"
        else:
            shown = ", ".join(names[:_LISTED])
            more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
            hint = f"the data stores are: {shown}{more}"
        return DataStoreNotFoundError(f"no data store named {name!r}; {hint}")

    def info(self, store: StoreRecord, *, with_secret: bool) -> DataStoreInfo:
        """The public description of a store; the secret is opened only ``with_secret``."""
        secret = ""
        if with_secret:
            secret = open_secret(self._engine, self._sealer(), store)
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

    def all(self) -> list[DataStoreInfo]:
        """Every store, by name, without secrets."""
        return [self.info(store, with_secret=False) for store in self._engine.stores()]

    def find(self, name: str, *, with_secret: bool) -> DataStoreInfo | None:
        """One store by name, or ``None``."""
        check.store_name(name)
        store = self._engine.store(name)
        return None if store is None else self.info(store, with_secret=with_secret)

    def remove(self, name: str) -> None:
        """Remove a store that has no links (one transaction)."""
        check.store_name(name)
        with engine_errors(store=name):
            self._engine.remove_store(name)

    def rekey(
        self,
        name: str,
        credentials: S3Credentials | None,
        new_access_key: str | None,
        new_secret_key: str | None,
    ) -> None:
        """Seal and store new credentials; see ``ConnectManager.rekey_data_store``.

        The rotation is one engine transaction, written only once the new
        secret is sealed: the new access key, sealed secret, key id and
        ``NO_REKEY`` commit together or not at all. No client ever sees a
        half-rotated store, and no failure or crash can leave one
        ``IN_PROGRESS`` (a store an older version left so is mended here).
        """
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
        store = self.record(name)
        sealer = self._sealer()
        # The store as it is must still match its seal: a rekey never adopts
        # a destination changed without the key.
        open_secret(self._engine, sealer, store)
        sealed = seal(sealer, dataclasses.replace(store, access_key=access_key), secret_key)
        with engine_errors(store=name):
            self._engine.update_store(
                name,
                access_key=access_key,
                sealed_secret=sealed,
                key_id=sealer.key_id,
                rekey_state=DataStoreRekeyState.NO_REKEY.value,
            )
