"""Block stores for native file data."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from filespace.blocks.base import BlockStore, new_block_key
from filespace.blocks.local import LocalBlockStore

__all__ = ["BlockStore", "LocalBlockStore", "new_block_key", "open_block_store"]


def open_block_store(url: str) -> BlockStore:
    """The block store named by ``url`` (``file:///abs/dir``)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalBlockStore(Path(unquote(parts.path)))
    raise ValueError(f"unsupported block store URL {url!r} (expected file:///absolute/dir)")
