"""Raw streams over native files: blocks in a block store, listed in the engine.

Writes go to dirty in-memory blocks; when they grow past a bound, whole blocks
are written to the block store under fresh keys. ``flush`` writes the rest and
then commits the new block list and size in one engine transaction, and only
after that deletes the blocks it replaced. So a crash at any point leaves the
file as of its last flush, plus maybe unreferenced blocks for a sweep.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

from filespace.blocks import BlockStore, new_block_key
from filespace.meta.engine import Engine, NoSuchEntry
from filespace.meta.records import BlockRecord

_DIRTY_LIMIT = 64 * 1024 * 1024
_NO_LIMIT = 1 << 62


class NativeRawFile(io.RawIOBase):
    """An ``io.RawIOBase`` over one native file."""

    def __init__(
        self,
        *,
        engine: Engine,
        store: BlockStore,
        entry_id: int,
        size: int,
        block_size: int,
        path: str,
        readable: bool,
        writable: bool,
        append: bool = False,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.name = path
        self._engine = engine
        self._store = store
        self._entry_id = entry_id
        self._size = size
        self._block_size = block_size
        self._readable = readable
        self._writable = writable
        self._append = append
        self._pos = 0
        self._blocks = {block.index: block for block in engine.blocks(entry_id)}
        self._pending: dict[int, BlockRecord] = {}  # written to the store, not yet committed
        self._dirty: dict[int, bytearray] = {}
        self._changed = False
        self._keep_below = _NO_LIMIT  # lowest block count since the last commit
        self._lock = threading.RLock()
        self._on_close = on_close

    # -- io.RawIOBase ---------------------------------------------------------------
    def readable(self) -> bool:
        return self._readable

    def writable(self) -> bool:
        return self._writable

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._pos + offset
        elif whence == io.SEEK_END:
            position = self._size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if position < 0:
            raise OSError(22, "negative seek position", self.name)
        self._pos = position
        return position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._checkClosed()
        if not self._readable:
            raise io.UnsupportedOperation("file not open for reading")
        with self._lock:
            target = memoryview(buffer).cast("B")
            count = max(0, min(len(target), self._size - self._pos))
            done = 0
            while done < count:
                index, within = divmod(self._pos + done, self._block_size)
                take = min(count - done, self._block_size - within)
                self._copy_block(index, within, target[done : done + take])
                done += take
            self._pos += done
            return done

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._checkClosed()
        if not self._writable:
            raise io.UnsupportedOperation("file not open for writing")
        with self._lock:
            source = memoryview(data).cast("B")
            if self._append:
                self._pos = self._size
            done = 0
            while done < len(source):
                index, within = divmod(self._pos + done, self._block_size)
                take = min(len(source) - done, self._block_size - within)
                block = self._dirty_block(index)
                if len(block) < within:
                    block.extend(bytes(within - len(block)))
                block[within : within + take] = source[done : done + take]
                done += take
            self._pos += done
            self._size = max(self._size, self._pos)
            self._changed = True
            if len(self._dirty) * self._block_size > _DIRTY_LIMIT:
                self._spill(keep_last=True)
            return done

    def truncate(self, size: int | None = None) -> int:
        self._checkClosed()
        if not self._writable:
            raise io.UnsupportedOperation("file not open for writing")
        with self._lock:
            size = self._pos if size is None else size
            if size < 0:
                raise ValueError(f"negative size {size}")
            self.resize(size)
            return size

    def flush(self) -> None:
        if self.closed:
            return
        with self._lock:
            if self._changed:
                self._commit()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.flush()
        finally:
            super().close()
            if self._on_close is not None:
                self._on_close()

    # -- internals -----------------------------------------------------------------
    def resize(self, size: int) -> None:
        """Set the file's size, zero-filling or cutting (used by truncate)."""
        if size < self._size:
            index, within = divmod(size, self._block_size)
            if within:
                del self._dirty_block(index)[within:]
            count = -(-size // self._block_size)
            for dropped in [i for i in self._dirty if i >= count]:
                del self._dirty[dropped]
            stale = [i for i in self._pending if i >= count]
            self._store.delete(self._pending.pop(i).key for i in stale)
            for dropped in [i for i in self._blocks if i >= count]:
                del self._blocks[dropped]
            self._keep_below = min(self._keep_below, count)
        self._size = size
        self._changed = True

    def _block_count(self) -> int:
        return -(-self._size // self._block_size)

    def _copy_block(self, index: int, within: int, target: memoryview) -> None:
        dirty = self._dirty.get(index)
        if dirty is not None:
            chunk = bytes(dirty[within : within + len(target)])
        else:
            record = self._pending.get(index) or self._blocks.get(index)
            chunk = (
                self._store.get(record.key, within, len(target)) if record is not None else b""
            )
        target[: len(chunk)] = chunk
        if len(chunk) < len(target):  # a hole, or a block shorter than its span
            target[len(chunk) :] = bytes(len(target) - len(chunk))

    def _dirty_block(self, index: int) -> bytearray:
        block = self._dirty.get(index)
        if block is None:
            record = self._pending.get(index) or self._blocks.get(index)
            block = bytearray(self._store.get(record.key)) if record is not None else bytearray()
            self._dirty[index] = block
        return block

    def _spill(self, *, keep_last: bool) -> None:
        """Write dirty blocks to the store; keep the last one in memory if asked."""
        indexes = sorted(self._dirty)
        if keep_last and indexes:
            indexes = indexes[:-1]
        limit = self._block_count()
        for index in indexes:
            data = self._dirty.pop(index)
            if index >= limit:  # cut off by a truncate after it was written to
                continue
            span = min(self._block_size, self._size - index * self._block_size)
            del data[span:]
            key = new_block_key()
            self._store.put(key, data)
            replaced = self._pending.get(index)
            self._pending[index] = BlockRecord(index=index, key=key, length=len(data))
            if replaced is not None:
                self._store.delete([replaced.key])

    def _commit(self) -> None:
        self._spill(keep_last=False)
        pending = list(self._pending.values())
        try:
            unreferenced = self._engine.commit_data(
                self._entry_id, self._size, self._keep_below, pending, time.time_ns()
            )
        except NoSuchEntry:
            self._store.delete(record.key for record in self._pending.values())
            self._pending.clear()
            raise FileNotFoundError(2, "file was deleted while open", self.name) from None
        self._store.delete(unreferenced)
        self._blocks.update({record.index: record for record in pending})
        self._pending.clear()
        self._keep_below = _NO_LIMIT
        self._changed = False
