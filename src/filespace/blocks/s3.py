"""Blocks as objects under a prefix of an S3 bucket (the shared block store).

A block is the object ``<prefix>/blocks/<first two characters>/<key>``; the
object ``<prefix>/filespace-id`` names the filespace that claimed the prefix.
All traffic goes through the one S3 client (``filespace.objects.s3``).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from filespace.blocks.base import BlockStamp, BlockStore, check_block_key
from filespace.objects import pace as paces
from filespace.objects.s3 import S3AccessError, S3Client, S3Target

OWNER_OBJECT = "filespace-id"
_BLOCKS = "blocks/"


@dataclass(frozen=True, slots=True)
class S3BlockStoreOptions:
    """Where the data bucket is and the credentials to use it."""

    region: str = "us-east-1"
    endpoint: str = ""  # empty: AWS's endpoint for the region
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    virtual_addressing: bool = False


def split_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/a/b``; the prefix is ``""`` or ends in ``/``."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
    prefix = unquote(parts.path).strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


class S3BlockStore(BlockStore):
    """Put, get and delete blocks as S3 objects, listing them for sweeps."""

    put_concurrency = 8
    remote = True

    def __init__(self, url: str, options: S3BlockStoreOptions) -> None:
        bucket, self._prefix = split_s3_url(url)
        self.url = f"s3://{bucket}/{self._prefix}".rstrip("/")
        self._client = S3Client(
            S3Target(
                bucket=bucket,
                region=options.region,
                endpoint=options.endpoint,
                virtual_addressing=options.virtual_addressing,
            ),
            options.access_key,
            options.secret_key,
        )

    def __repr__(self) -> str:
        return f"S3BlockStore({self.url!r}, endpoint={self._client.target.endpoint!r})"

    @property
    def pace(self) -> paces.Pace:
        """The pace of the data bucket's endpoint (shared with every client of it)."""
        return self._client.pace

    @property
    def client(self) -> S3Client:
        """The S3 client of the data bucket."""
        return self._client

    def _object(self, key: str) -> str:
        check_block_key(key)
        return f"{self._prefix}{_BLOCKS}{key[:2]}/{key}"

    def check_access(self) -> None:
        """Raise ``S3AccessError`` unless the bucket answers these credentials."""
        self._client.check_bucket()

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        name = self._object(key)
        try:
            self._client.put(name, data if isinstance(data, bytes) else bytes(data))
        except S3AccessError as exc:
            raise OSError(errno.EIO, f"cannot store block: {exc}", self.url) from None

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            return b""
        name = self._object(key)
        try:
            return self._client.get(name, offset, None if length is None else offset + length)
        except S3AccessError as exc:
            if exc.kind == "not_found":
                missing = f"{self.url}/{key}"
                raise FileNotFoundError(errno.ENOENT, "block missing", missing) from None
            if exc.code == "InvalidRange":  # asked past the block's end
                return b""
            raise OSError(errno.EIO, f"cannot read block: {exc}", self.url) from None

    def delete(self, keys: Iterable[str]) -> None:
        names = [self._object(key) for key in keys]
        if not names:
            return
        try:
            self._client.delete(names)
        except S3AccessError as exc:
            raise OSError(errno.EIO, f"cannot delete blocks: {exc}", self.url) from None

    def stamps(self) -> Iterator[BlockStamp]:
        try:
            for item in self._client.list_stamped(self._prefix + _BLOCKS):
                name = item.key.rpartition("/")[2]
                if name.isascii() and name.isalnum():
                    yield BlockStamp(name, item.modified)
        except S3AccessError as exc:
            raise OSError(errno.EIO, f"cannot list blocks: {exc}", self.url) from None

    def owner(self) -> str | None:
        try:
            text = self._client.get(self._prefix + OWNER_OBJECT).decode("utf-8", "replace")
        except S3AccessError as exc:
            if exc.kind == "not_found":
                return None
            raise OSError(errno.EIO, f"cannot read the owner marker: {exc}", self.url) from None
        return text.strip() or None

    def claim(self, filespace_id: str) -> None:
        self.check_claimable(filespace_id)
        try:
            self._client.put(self._prefix + OWNER_OBJECT, f"{filespace_id}\n".encode())
        except S3AccessError as exc:
            raise OSError(errno.EIO, f"cannot claim the block store: {exc}", self.url) from None

    def release(self, filespace_id: str) -> None:
        if self.owner() == filespace_id:
            try:
                self._client.delete([self._prefix + OWNER_OBJECT])
            except S3AccessError as exc:
                message = f"cannot release the block store: {exc}"
                raise OSError(errno.EIO, message, self.url) from None
