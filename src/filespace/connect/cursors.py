"""The opaque cursor of ``list_external_files``: which store, and the last entry id given.

A cursor names its store, so one handed to another store's listing is
refused instead of silently skipping that store's links.
"""

from __future__ import annotations

import base64
import binascii
import re

_PREFIX = "c1."
_BODY = re.compile(r"([0-9]{1,19}):([0-9]{1,19})")
_MAX_ID = 2**63 - 1  # ids are signed 64-bit integers in every engine


def encode(store_id: int, after: int) -> str:
    """The cursor that continues a listing of ``store_id`` after entry ``after``."""
    raw = f"{store_id}:{after}".encode()
    return _PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, store_id: int) -> int:
    """The entry id to list after (0 for ``""``); ``ValueError`` for a bad or foreign cursor."""
    if not isinstance(cursor, str):
        raise ValueError("cursor must be a string")
    if cursor == "":
        return 0
    if not cursor.startswith(_PREFIX):
        raise ValueError("malformed cursor")
    body = cursor[len(_PREFIX) :]
    try:
        text = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("malformed cursor") from None
    found = _BODY.fullmatch(text)
    if found is None:
        raise ValueError("malformed cursor")
    owner, after = int(found[1]), int(found[2])
    if after > _MAX_ID:
        raise ValueError("malformed cursor")
    if owner != store_id:
        raise ValueError("the cursor belongs to another data store")
    return after
