"""Rotating the filespace key: every sealed value resealed under a new key, at once.

The engine switches keys in one transaction (each data store's secret, the S3
block store's secret, Connect's settings, and the key's check value and id),
so a client sees either the old key's world or the new one's. The new key
is written beside the key file first and renamed over it once the engine has
switched; if the process dies in between, opening the filespace finds the
pending key (``space._find_key``).
"""

from __future__ import annotations

from filespace import keys
from filespace.blocks import s3settings
from filespace.connect import settings as connect_settings
from filespace.connect.stores import seal, unseal
from filespace.errors import EngineError, WrongKeyError
from filespace.meta.engine import Engine
from filespace.meta.errors import KeyChanged
from filespace.sealing import Sealer

_ATTEMPTS = 5  # each one re-reads the stores: another client changed one meanwhile


def rotate_key(
    engine: Engine, filespace_id: str, data_url: str, old_key: bytes, new_key: bytes, *, save: bool
) -> None:
    """Reseal everything sealed under ``old_key`` with ``new_key``; ``save``: the key file too."""
    if new_key == old_key:
        raise ValueError("the new filespace key is the current one")
    old = Sealer(old_key, filespace_id, keys.key_id(old_key, filespace_id))
    new = Sealer(new_key, filespace_id, keys.key_id(new_key, filespace_id))
    old_check = keys.check_value(old_key, filespace_id)
    new_check = keys.check_value(new_key, filespace_id)
    if save:
        keys.store_pending_key(filespace_id, new_key)
    try:
        _switch(engine, data_url, old, new, old_check, new_check)
    except BaseException:
        # The commit may have landed even though its answer was lost.
        if engine.settings().get("key_check") != new_check:
            if save:
                keys.remove_pending_key(filespace_id)
            raise
    if save:
        keys.promote_pending_key(filespace_id)


def _switch(
    engine: Engine, data_url: str, old: Sealer, new: Sealer, old_check: str, new_check: str
) -> None:
    for _ in range(_ATTEMPTS):
        settings = engine.settings()
        if settings.get("key_check") != old_check:
            raise WrongKeyError(
                "the filespace key is no longer the one this filespace was opened with "
                "(rotated by another client?): open it again with the current key"
            )
        # Opening each secret checks it too: a store changed without the key
        # stops the rotation (IntegrityError) instead of being sealed anew.
        secrets = [
            (store.name, store.sealed_secret, seal(new, store, unseal(old, store)))
            for store in engine.stores()
        ]
        changes = {
            "key_check": new_check,
            "key_id": new.key_id,
            **s3settings.reseal(data_url, settings, old, new),
            **connect_settings.reseal(settings, old, new),
        }
        try:
            engine.replace_key(old_check, changes, secrets, new.key_id)
            return
        except KeyChanged:
            continue
    raise EngineError(
        "the filespace's data stores kept changing while its key was rotated; try again"
    )
