"""An S3 block store as the engine's settings record it: checked, sealed, bound.

``create`` turns the ``data_*`` options into settings with the secret key
sealed under the filespace key, bound to every field that says where blocks
go (the data URL, endpoint, region, addressing style and access key); an open
filespace turns them back into options, and a change made without the key is
an ``IntegrityError`` before any block is sent.
"""

from __future__ import annotations

import base64
import errno
from collections.abc import Callable

from filespace.blocks.s3 import S3BlockStore, S3BlockStoreOptions
from filespace.connect import validation as check
from filespace.errors import NotAFilespaceError
from filespace.sealing import Sealer, is_legacy

SEALED_SECRET = "data_s3_secret_key_sealed"  # noqa: S105 - a setting's name
_RECORD = "block_store:secret_key"
_FIELDS = ("region", "endpoint", "access_key", "virtual_addressing")


def _binding(data_url: str, settings: dict[str, str]) -> dict[str, str]:
    """What the sealed secret is bound to: every field that says where blocks go."""
    return {"data_url": data_url, **{f: settings.get(f"data_s3_{f}", "") for f in _FIELDS}}


def record(
    data_url: str,
    sealer: Sealer,
    *,
    region: str,
    endpoint: str,
    access_key: str | None,
    secret_key: str | None,
    virtual_addressing: bool,
) -> tuple[dict[str, str], S3BlockStoreOptions]:
    """Checked options of an S3 block store, and the settings that record them (secret sealed)."""
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
    sealed = sealer.seal(options.secret_key, _RECORD, _binding(data_url, settings))
    settings[SEALED_SECRET] = base64.b64encode(sealed).decode("ascii")
    return settings, options


def options(
    data_url: str,
    settings: dict[str, str],
    sealer: Sealer,
    *,
    save: Callable[[str, str], None],
    filespace_id: str,
) -> S3BlockStoreOptions:
    """The options recorded in ``settings``; ``IntegrityError`` if changed without the key.

    A secret sealed before destinations were bound is opened once and resealed
    bound (written back with ``save(name, value)``).
    """
    try:
        sealed = base64.b64decode(settings[SEALED_SECRET], validate=True)
        region, endpoint = settings["data_s3_region"], settings["data_s3_endpoint"]
        access_key = settings["data_s3_access_key"]
        virtual_addressing = settings["data_s3_virtual_addressing"] == "1"
    except (KeyError, ValueError):
        raise NotAFilespaceError(
            f"filespace {filespace_id}: the settings of its S3 block store are incomplete"
        ) from None
    secret = _unseal(data_url, settings, sealed, sealer)
    if is_legacy(sealed):
        resealed = sealer.seal(secret, _RECORD, _binding(data_url, settings))
        save(SEALED_SECRET, base64.b64encode(resealed).decode("ascii"))
    return S3BlockStoreOptions(
        region=region,
        endpoint=endpoint,
        access_key=access_key,
        secret_key=secret,
        virtual_addressing=virtual_addressing,
    )


def _unseal(data_url: str, settings: dict[str, str], sealed: bytes, sealer: Sealer) -> str:
    if is_legacy(sealed):
        return sealer.open(sealed, _RECORD, legacy=True)
    return sealer.open(sealed, _RECORD, _binding(data_url, settings))


def reseal(data_url: str, settings: dict[str, str], old: Sealer, new: Sealer) -> dict[str, str]:
    """The sealed-secret setting sealed under ``new`` instead of ``old`` (none: no S3 store)."""
    stored = settings.get(SEALED_SECRET)
    if stored is None:
        return {}
    secret = _unseal(data_url, settings, base64.b64decode(stored, validate=True), old)
    resealed = new.seal(secret, _RECORD, _binding(data_url, settings))
    return {SEALED_SECRET: base64.b64encode(resealed).decode("ascii")}


def check_reachable(store: S3BlockStore) -> None:
    """Make sure the data bucket answers these options, before anything is created."""
    from filespace.objects.s3 import S3AccessError

    try:
        store.check_access()
    except S3AccessError as exc:
        if exc.kind == "unreachable":
            raise ConnectionError(errno.EHOSTUNREACH, f"data bucket unreachable: {exc}") from None
        raise ValueError(f"data bucket refused these options: {exc}") from None
