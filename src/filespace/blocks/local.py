"""Blocks as files in a local directory (the embedded default)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from filespace.blocks.base import BlockStore


class LocalBlockStore(BlockStore):
    """Blocks under ``root/xx/key``, written via a temporary file and fsync."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key.isalnum():
            raise ValueError(f"invalid block key {key!r}")
        return self.root / key[:2] / key

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        temporary = path.with_name(f".{key}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        with open(self._path(key), "rb") as handle:
            handle.seek(offset)
            return handle.read() if length is None else handle.read(length)

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        for folder in self.root.iterdir():
            if folder.is_dir():
                for path in folder.iterdir():
                    if not path.name.startswith("."):
                        yield path.name
