"""The opaque cursor of ``list_external_files``: which store, and the last entry id given.

A cursor names its store, so one handed to another store's listing is
refused instead of silently skipping that store's links.
"""

from __future__ import annotations

import base64
import binascii

_PREFIX = "c1."


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
        owner, after = (int(part) for part in text.split(":"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("malformed cursor") from None
    if owner != store_id or after < 0:
        raise ValueError("the cursor belongs to another data store")
    return after
