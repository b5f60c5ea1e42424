"""Sealing secrets with AES-256-GCM under the filespace key.

Each sealed value is ``layout || nonce || ciphertext+tag``. The associated
data binds it to the filespace id, to the record it belongs to and to the
fields of that record that decide where the secret is sent (a store's
endpoint, bucket, region, addressing style and access key). Whoever can
write the engine but has no key can change those fields, but the secret
then no longer opens: the change is an ``IntegrityError`` before any request.

Layout 1 bound only the record; it is still opened when the caller passes
``legacy=True`` (the caller then reseals it with its fields, once).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from filespace.errors import IntegrityError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_LEGACY = b"\x01"  # bound to the record only
_BOUND = b"\x02"  # bound to the record and its destination fields
_NONCE_BYTES = 12

Binding = Mapping[str, str | bool | int]
"""The fields of a record that a sealed value is bound to."""


class Sealer:
    """Seals and opens secrets for one filespace with its key."""

    def __init__(self, key: bytes, filespace_id: str, key_id: str) -> None:
        self._key = key
        self._filespace_id = filespace_id
        self.key_id = key_id
        self._aead: AESGCM | None = None

    def __repr__(self) -> str:
        return f"Sealer(filespace_id={self._filespace_id!r})"

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead = AESGCM(self._key)
        return self._aead

    def _context(self, record: str, bound: Binding | None) -> bytes:
        context = f"filespace:{self._filespace_id}|{record}"
        if bound is not None:
            # Sorted keys and ASCII escapes: the same fields always give the same bytes.
            context += "|" + json.dumps(dict(bound), sort_keys=True, separators=(",", ":"))
        return context.encode()

    def seal(self, secret: str, record: str, bound: Binding | None = None) -> bytes:
        """Encrypt ``secret`` for the record named ``record`` with the fields ``bound``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher().encrypt(
            nonce, secret.encode("utf-8"), self._context(record, bound or {})
        )
        return _BOUND + nonce + sealed

    def open(
        self, sealed: bytes, record: str, bound: Binding | None = None, *, legacy: bool = False
    ) -> str:
        """Decrypt a value sealed for ``record`` and ``bound``.

        ``IntegrityError`` if it was sealed for another record, filespace or
        field values (the key itself is checked when the filespace opens).
        A layout-1 value opens only with ``legacy=True``.
        """
        from cryptography.exceptions import InvalidTag

        layout = sealed[:1]
        if layout == _BOUND:
            context = self._context(record, bound or {})
        elif layout == _LEGACY and legacy:
            context = self._context(record, None)
        elif layout == _LEGACY:
            raise IntegrityError(f"{record}: sealed in the old layout, which must be resealed")
        else:
            raise IntegrityError(f"{record}: the sealed secret has an unknown layout")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            plain = self._cipher().decrypt(nonce, body, context)
        except InvalidTag:
            raise IntegrityError(
                f"{record}: the sealed secret does not match the stored settings it is bound "
                "to (changed without the filespace key?); refusing to use them"
            ) from None
        return plain.decode("utf-8")


def is_legacy(sealed: bytes) -> bool:
    """Whether ``sealed`` is in layout 1 (bound to its record only)."""
    return sealed[:1] == _LEGACY
