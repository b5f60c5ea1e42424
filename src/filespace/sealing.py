"""Sealing secrets with AES-256-GCM under the filespace key.

Each sealed value is ``version || nonce || ciphertext+tag``. The associated
data binds it to the filespace id and to the record it belongs to, so a sealed
secret copied onto another record (or another filespace) does not open.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from filespace.errors import WrongKeyError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
_NONCE_BYTES = 12


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

    def _context(self, record: str) -> bytes:
        return f"filespace:{self._filespace_id}|{record}".encode()

    def seal(self, secret: str, record: str) -> bytes:
        """Encrypt ``secret`` for the record named ``record``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher().encrypt(nonce, secret.encode("utf-8"), self._context(record))
        return _VERSION + nonce + sealed

    def open(self, sealed: bytes, record: str) -> str:
        """Decrypt a value sealed for ``record``; a wrong key or record fails."""
        from cryptography.exceptions import InvalidTag

        if sealed[:1] != _VERSION:
            raise WrongKeyError("sealed secret has an unknown layout")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            plain = self._cipher().decrypt(nonce, body, self._context(record))
        except InvalidTag:
            raise WrongKeyError(
                f"a sealed secret of {record} does not open with this key"
            ) from None
        return plain.decode("utf-8")
