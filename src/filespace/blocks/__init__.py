"""Block stores for native file data: a local directory or an S3 prefix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from filespace.blocks.base import BlockStamp, BlockStore, new_block_key
from filespace.blocks.local import LocalBlockStore

if TYPE_CHECKING:
    from filespace.blocks.s3 import S3BlockStoreOptions

__all__ = ["BlockStamp", "BlockStore", "LocalBlockStore", "new_block_key", "open_block_store"]


def open_block_store(url: str, *, s3: S3BlockStoreOptions | None = None) -> BlockStore:
    """The block store named by ``url``: ``file:///abs/dir`` or ``s3://bucket/prefix``.

    An S3 store needs ``s3`` (endpoint, region and credentials of the bucket).
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalBlockStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        from filespace.blocks.s3 import S3BlockStore

        if s3 is None:
            raise ValueError(f"the block store {url} needs its S3 options")
        return S3BlockStore(url, s3)
    raise ValueError(
        f"unsupported block store URL {url!r} (expected file:///absolute/dir or s3://bucket/prefix)"
    )
