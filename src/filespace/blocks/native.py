"""Raw streams over native files: blocks in a block store, listed in the engine.

A write that starts a block nothing stores yet, at the block's start, streams
into a new block of the store as it comes (a local store writes it straight
to its file: no copy in memory); it goes on streaming while the writes go on
where the last one ended. Any other write goes to dirty in-memory blocks
(copy-on-write of a stored block); when they grow past a bound, whole blocks
are written to the block store under fresh keys. ``flush`` writes the rest and
then commits the new block list and size in one engine transaction, and only
after that deletes the blocks it replaced. So a crash at any point leaves the
file as of its last flush, plus maybe unreferenced blocks for a sweep.

Reads from a local store go straight into the caller's buffer. From a remote
store (S3) a sequential reader goes through the same block ``Reader`` as
external files (``io.prefetch``: whole blocks, a readahead window that grows
while the reads stay sequential, fetched by the process's one fetch pool),
over ``StoredBlocks``, the file's stored blocks (committed or pending) as they
were when the read began; any write drops that reader. A random read fetches just its range.
Given the filespace's block cache, that reader keeps what it fetches there,
named by the file's block keys: a stored block never changes (a write makes a
new key), so those bytes need no confirming, and ``preload`` (``fs.prefetch``)
fills the cache ahead of a reader.

A file holds at most ``MAX_FILE_SIZE`` bytes (5 TiB): a write or truncate
past it fails whole with ``OSError(EFBIG)``, as a POSIX write past the file
size limit does, and changes nothing.

A sweep spares blocks younger than its grace period (an hour by default), so a
writer must not keep stored blocks uncommitted for long: once its oldest
uncommitted block is ``_MAX_UNCOMMITTED_S`` old, the next write commits.
"""

from __future__ import annotations

import contextlib
import errno
import io
import threading
import time
from collections.abc import Callable

from filespace.blocks.base import BlockStore, BlockWriter, new_block_key
from filespace.io import cache as blockcache
from filespace.io.cache import BlockCache
from filespace.io.prefetch import Reader
from filespace.io.preload import Preloader
from filespace.io.streams import PositionedRaw
from filespace.meta.engine import Engine, NoSuchEntry
from filespace.meta.records import BlockRecord
from filespace.objects import http
from filespace.objects.pace import Pace
from filespace.paths import MAX_FILE_SIZE

_DIRTY_LIMIT = 64 * 1024 * 1024
_LARGE_WRITE = 256 * 1024  # a write this big into a new block allocates the block whole
_MAX_UNCOMMITTED_S = 600.0  # well inside Filespace.sweep_blocks' default grace of an hour
_NO_LIMIT = 1 << 62


def _too_large(path: str) -> OSError:
    return OSError(errno.EFBIG, f"a file holds at most {MAX_FILE_SIZE} bytes (5 TiB)", path)


class StoredBlocks:
    """A native file's stored blocks as a ``Reader``'s source (``io.source.BlockSource``).

    Each request fetches whole blocks with ``BlockStore.get``; holes and the
    part of a block past its stored length read as zeros.
    """

    latency: float | None = None  # blocks are not streamed straight to the caller

    def __init__(
        self, store: BlockStore, path: str, size: int, block_size: int, keys: dict[int, str]
    ) -> None:
        self.path = path
        self.size = size
        self._store = store
        self._block = block_size
        self._keys = keys  # block index -> key, a snapshot: writes drop the reader

    def __repr__(self) -> str:
        return f"StoredBlocks({self.path!r}, size={self.size})"

    def stream(
        self,
        start: int,
        end: int,
        piece: int,
        deliver: Callable[[int, memoryview], None],
        batch: int = 1,
    ) -> None:
        """Deliver the blocks under ``[start, end)``, one whole block per call.

        A block that cannot be read is an ``OSError`` naming the file's path
        (the store's own message, naming the block, kept).
        """
        for index in range(start // self._block, -(-min(end, self.size) // self._block)):
            length = min(self._block, self.size - index * self._block)
            key = self._keys.get(index)
            try:
                data = self._store.get(key) if key is not None else b""
            except OSError as exc:
                detail = exc.strerror or str(exc)
                if exc.filename and str(exc.filename) not in detail:
                    detail = f"{detail} ({exc.filename})"
                raise OSError(exc.errno, detail, self.path) from None
            if len(data) != length:
                data = data[:length] + bytes(max(0, length - len(data)))
            deliver(index * self._block, memoryview(data))

    @property
    def pace(self) -> Pace | None:
        """The block store's pace: readahead shrinks while it throttles."""
        return self._store.pace

    def open_stream(self, start: int, end: int) -> http.RangeStream:
        """Not used: ``latency`` is never near (see ``Reader``)."""
        raise io.UnsupportedOperation("stored blocks are read block by block")

    def check(self, offset: int) -> None:
        """Nothing to confirm: stored blocks never change."""

    def error(self, problem: http.RangeError) -> OSError:
        """(Block stores raise ``OSError`` themselves; this is for completeness.)"""
        return OSError(errno.EIO, str(problem), self.path)


class NativeRawFile(PositionedRaw):
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
        cache: BlockCache | None = None,
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
        self._pending_since: float | None = None  # when the oldest pending block was stored
        self._lock = threading.RLock()
        self._on_close = on_close
        self._remote = store.remote
        self._reader: Reader | None = None  # a remote store's readahead, until a write
        self._cache = cache
        self._last_end = 0  # where the previous read ended: the next one is sequential
        self._stream: _Stream | None = None  # the block being written sequentially, if any

    # -- io.RawIOBase ---------------------------------------------------------------
    def readable(self) -> bool:
        return self._readable

    def writable(self) -> bool:
        return self._writable

    def _end(self) -> int:
        return self._size

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._checkClosed()
        if not self._readable:
            raise io.UnsupportedOperation("file not open for reading")
        with self._lock:
            target = memoryview(buffer).cast("B")
            count = max(0, min(len(target), self._size - self._pos))
            sequential = self._pos == self._last_end
            done = 0
            while done < count:
                index, within = divmod(self._pos + done, self._block_size)
                take = min(count - done, self._block_size - within)
                self._copy_block(index, within, target[done : done + take], sequential)
                done += take
            self._pos += done
            self._last_end = self._pos
            return done

    def readall(self) -> bytes:
        """The rest of the file in one read (``RawIOBase`` would read 8 KiB at a time)."""
        self._checkClosed()
        with self._lock:
            buffer = bytearray(max(0, self._size - self._pos))
            del buffer[self.readinto(buffer) :]
            return bytes(buffer)

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._checkClosed()
        if not self._writable:
            raise io.UnsupportedOperation("file not open for writing")
        with self._lock:
            self._drop_reader()  # what it read ahead may be what this write replaces
            source = memoryview(data).cast("B")
            if self._append:
                self._pos = self._size
            if len(source) and self._pos + len(source) > MAX_FILE_SIZE:
                raise _too_large(self.name)
            done = 0
            try:
                while done < len(source):
                    index, within = divmod(self._pos + done, self._block_size)
                    take = min(len(source) - done, self._block_size - within)
                    piece = source[done : done + take]
                    if not self._streamed(index, within, piece):
                        block = self._dirty_block(index, large=index > 0 or take >= _LARGE_WRITE)
                        if len(block) < within:
                            block.extend(bytes(within - len(block)))
                        block[within : within + take] = piece
                    done += take
            finally:
                self._pos += done
                self._size = max(self._size, self._pos)
                self._changed = self._changed or done > 0
            if len(self._dirty) * self._block_size > _DIRTY_LIMIT:
                self._spill(keep_last=True)
            since = self._pending_since
            if since is not None and time.monotonic() - since > _MAX_UNCOMMITTED_S:
                self._commit()
            return done

    def truncate(self, size: int | None = None) -> int:
        self._checkClosed()
        if not self._writable:
            raise io.UnsupportedOperation("file not open for writing")
        with self._lock:
            size = self._pos if size is None else size
            if size < 0:
                raise ValueError(f"negative size {size}")
            if size > MAX_FILE_SIZE:
                raise _too_large(self.name)
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
            if self._stream is not None:  # only if the commit failed: release the file
                self._stream.writer.close()
                self._stream = None
            self._drop_reader()
            super().close()
            if self._on_close is not None:
                self._on_close()

    def discard(self) -> None:
        """Close without committing: forget every change since the last commit.

        The blocks stored for them are deleted (best effort: what is left is
        unreferenced, and a sweep removes it).
        """
        if self.closed:
            return
        with self._lock:
            stream, self._stream = self._stream, None
            keys = [record.key for record in self._pending.values()]
            if stream is not None:
                keys.append(stream.key)
                with contextlib.suppress(OSError):
                    stream.writer.close()
            self._pending.clear()
            self._dirty.clear()
            self._changed = False
            with contextlib.suppress(OSError):
                self._store.delete(keys)
        self.close()

    # -- internals -----------------------------------------------------------------
    def resize(self, size: int) -> None:
        """Set the file's size, zero-filling or cutting (used by truncate)."""
        self._drop_reader()
        if size < self._size:
            self._end_stream()
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

    def _record(self, index: int) -> BlockRecord | None:
        return self._pending.get(index) or self._blocks.get(index)

    def _streamed(self, index: int, within: int, piece: memoryview) -> bool:
        """Write ``piece`` to the block being streamed (starting one if it may); done?"""
        stream = self._stream
        if stream is not None and stream.index == index:
            if within != stream.writer.length:
                self._end_stream()  # not where it ended: the block becomes a dirty copy
                return False
        elif within == 0 and index not in self._dirty and self._record(index) is None:
            key = new_block_key()
            writer = self._store.open_writer(key)
            if writer is None:
                return False
            self._end_stream()
            stream = self._stream = _Stream(index, key, writer)
            if self._pending_since is None:
                self._pending_since = time.monotonic()
        else:
            return False
        try:
            stream.writer.write(piece)
        except BaseException:
            self._end_stream()  # keeps what reached the block; this write failed
            raise
        if stream.writer.length == self._block_size:
            self._end_stream()
        return True

    def _end_stream(self) -> None:
        """Finish the streamed block: from now on it is a stored, uncommitted block."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        stream.writer.close()
        if stream.writer.length:
            record = BlockRecord(index=stream.index, key=stream.key, length=stream.writer.length)
            self._pending[stream.index] = record
        else:
            self._store.delete([stream.key])

    def _copy_block(self, index: int, within: int, target: memoryview, sequential: bool) -> None:
        dirty = self._dirty.get(index)
        record = None if dirty is not None else self._record(index)
        stream = self._stream
        if dirty is None and stream is not None and stream.index == index:
            count = self._store.readinto(stream.key, within, target)  # what is streamed so far
        elif dirty is not None:
            chunk = dirty[within : within + len(target)]
            target[: len(chunk)] = chunk
            count = len(chunk)
        elif record is None:
            count = 0
        elif self._remote and (sequential or self._read_ahead(index)):
            position = index * self._block_size + within
            count = self._remote_reader(position).readinto(position, target, len(target))
        else:
            count = self._store.readinto(record.key, within, target)
        if count < len(target):  # a hole, or a block shorter than its span
            target[count:] = bytes(len(target) - count)

    def _read_ahead(self, index: int) -> bool:
        """Whether the readahead holds block ``index`` (a skip forward keeps using it)."""
        return self._reader is not None and self._reader.holds(index)

    def _remote_reader(self, position: int, kind: type[Reader] = Reader) -> Reader:
        """The readahead over the blocks stored now, made on the first read after a write."""
        if self._reader is None or not isinstance(self._reader, kind):
            keys = {index: record.key for index, record in self._blocks.items()}
            keys.update((index, record.key) for index, record in self._pending.items())
            source = StoredBlocks(self._store, self.name, self._size, self._block_size, keys)
            # Named by the block keys: the same bytes for as long as the keys are the same.
            listing = "\x00".join(f"{index}={key}" for index, key in sorted(keys.items()))
            self._drop_reader()
            self._reader = kind(
                source,
                self._cache,
                blockcache.namespace(f"native:{listing}", "", self._size, self._block_size),
                block_size=self._block_size,
                request_size=self._block_size,  # one block per request: blocks are objects
                sequential_from=position,  # (the read that makes it is sequential)
                confirms=False,  # stored blocks never change
            )
        return self._reader

    def preload(self) -> int:
        """Fetch the file's stored blocks into the cache (a remote store's); bytes fetched."""
        with self._lock:
            if not self._remote or self._cache is None or not self._size:
                return 0
            reader = self._remote_reader(0, Preloader)
            assert isinstance(reader, Preloader)
            return reader.preload()

    def _drop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def _dirty_block(self, index: int, *, large: bool = False) -> bytearray:
        """The in-memory copy of a block, loaded from the store if it has one.

        Bytes of a dirty block past the file's size are always zero, so a new
        block for a large write is allocated whole: growing a bytearray chunk
        by chunk costs far more than one zero-filled allocation (measured).
        """
        block = self._dirty.get(index)
        if block is None:
            record = self._pending.get(index) or self._blocks.get(index)
            if record is not None:
                block = bytearray(self._store.get(record.key))
            else:
                block = bytearray(self._block_size) if large else bytearray()
            self._dirty[index] = block
        return block

    def _spill(self, *, keep_last: bool) -> None:
        """Write dirty blocks to the store; keep the last one in memory if asked."""
        indexes = sorted(self._dirty)
        if keep_last and indexes:
            indexes = indexes[:-1]
        limit = self._block_count()
        payloads: list[tuple[str, bytearray]] = []
        written: list[BlockRecord] = []
        for index in indexes:
            data = self._dirty[index]
            if index >= limit:  # cut off by a truncate after it was written to
                continue
            del data[min(self._block_size, self._size - index * self._block_size) :]
            key = new_block_key()
            payloads.append((key, data))
            written.append(BlockRecord(index=index, key=key, length=len(data)))
        # All stored (made durable by _commit), or an error and the dirty blocks kept.
        self._store.put_many(payloads, durable=False)
        for index in indexes:
            del self._dirty[index]
        replaced = [self._pending[r.index].key for r in written if r.index in self._pending]
        self._pending.update((record.index, record) for record in written)
        if written and self._pending_since is None:
            self._pending_since = time.monotonic()
        if replaced:
            self._store.delete(replaced)

    def _commit(self) -> None:
        self._end_stream()
        self._spill(keep_last=False)
        pending = list(self._pending.values())
        self._store.sync(record.key for record in pending)  # durable before referenced
        try:
            unreferenced = self._engine.commit_data(
                self._entry_id, self._size, self._keep_below, pending, time.time_ns()
            )
        except NoSuchEntry:
            self._store.delete(record.key for record in self._pending.values())
            self._pending.clear()
            self._pending_since = None
            raise FileNotFoundError(2, "file was deleted while open", self.name) from None
        self._store.delete(unreferenced)
        self._blocks.update({record.index: record for record in pending})
        self._pending.clear()
        self._keep_below = _NO_LIMIT
        self._pending_since = None
        self._changed = False


class _Stream:
    """A block being written sequentially straight into the store."""

    __slots__ = ("index", "key", "writer")

    def __init__(self, index: int, key: str, writer: BlockWriter) -> None:
        self.index = index
        self.key = key
        self.writer = writer
