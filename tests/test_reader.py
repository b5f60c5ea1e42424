"""Reading external files through the block reader: stream semantics, block edges,
prefetching, concurrency, caching and what a reader sees when the object changes."""

from __future__ import annotations

import errno
import io
import os
import random
import threading
from typing import Any

import pytest

import filespace
from filespace import Filespace
from filespace.io.prefetch import BLOCK_SIZE, MAX_WINDOW
from filespace.testing import SeaweedS3

B = BLOCK_SIZE
SIZE = 5 * B + 1234  # a partial last block


@pytest.fixture
def blob(connected: Filespace, s3_admin: Any, bucket: str) -> tuple[Filespace, bytes]:
    data = os.urandom(SIZE)
    s3_admin.put_object(Bucket=bucket, Key="blob", Body=data)
    connected.connect.link_file("/blob", "store", "blob")
    return connected, data


def test_seek_tell_and_edges(blob: tuple[Filespace, bytes]) -> None:
    fsp, data = blob
    for buffering in (-1, 0):
        with fsp.fs.open("/blob", "rb", buffering=buffering) as handle:
            assert handle.read(0) == b""
            assert handle.seek(-10, io.SEEK_END) == SIZE - 10
            assert handle.read(100) == data[-10:]  # short at EOF
            assert handle.read(1) == b""
            assert handle.tell() == SIZE
            assert handle.seek(SIZE + 100) == SIZE + 100  # past EOF: reads nothing
            assert handle.read(5) == b""
            handle.seek(B - 3)
            assert handle.seek(2, io.SEEK_CUR) == B - 1
            assert handle.read(2) == data[B - 1 : B + 1]
            assert handle.tell() == B + 1
            handle.seek(0)
            assert handle.read(7) == data[:7]
            with pytest.raises(OSError, match="negative seek"):
                handle.seek(-1)
        assert handle.closed
        with pytest.raises(ValueError, match="closed file"):
            handle.read(1)


@pytest.mark.parametrize("buffering", [-1, 0, 4096])
def test_reads_straddling_block_edges(blob: tuple[Filespace, bytes], buffering: int) -> None:
    fsp, data = blob
    cases = [
        (start, length)
        for edge in range(0, SIZE + 1, B)
        for start in (edge - 2, edge - 1, edge, edge + 1)
        for length in (1, 2, 3, 4096, B - 1, B, B + 1, 2 * B + 5)
        if 0 <= start <= SIZE
    ]
    random.Random(1).shuffle(cases)
    with fsp.fs.open("/blob", "rb", buffering=buffering) as handle:
        for start, length in cases:
            handle.seek(start)
            got = handle.read(length)
            if buffering == 0:  # a raw read may be short; the rest follows
                while len(got) < min(length, SIZE - start):
                    more = handle.read(length - len(got))
                    assert more
                    got += more
            assert got == data[start : start + length], (start, length)


@pytest.mark.parametrize("chunk", [1000, 4096, B, B + 1, 1024 * 1024, 3 * B - 7])
def test_sequential_reads_prefetch_correctly(blob: tuple[Filespace, bytes], chunk: int) -> None:
    fsp, data = blob
    with fsp.fs.open("/blob", "rb") as handle:
        parts = []
        while part := handle.read(chunk):
            parts.append(part)
    assert b"".join(parts) == data
    with fsp.fs.open("/blob", "rb", buffering=0) as raw:
        buffer = bytearray(chunk)
        view = memoryview(buffer)
        got = bytearray()
        while count := raw.readinto(view):
            got += view[:count]
    assert got == data


def test_read_all_from_the_middle_and_readinto(blob: tuple[Filespace, bytes]) -> None:
    fsp, data = blob
    with fsp.fs.open("/blob", "rb") as handle:
        handle.seek(B + 5)
        assert handle.read() == data[B + 5 :]
        handle.seek(3)
        buffer = bytearray(2 * B)
        assert handle.readinto(buffer) == 2 * B
        assert buffer == data[3 : 3 + 2 * B]
    assert fsp.fs.read_file("/blob") == data


def test_lines_iteration_and_text(connected: Filespace, s3_admin: Any, bucket: str) -> None:
    lines = [f"line {i} {'x' * (i % 700)}\n".encode() for i in range(3000)]  # ~1 MiB
    body = b"".join(lines)
    s3_admin.put_object(Bucket=bucket, Key="lines.txt", Body=body)
    connected.connect.link_file("/lines.txt", "store", "lines.txt")
    with connected.fs.open("/lines.txt", "rb") as handle:
        assert handle.readline() == lines[0]
        assert list(handle) == lines[1:]
    with connected.fs.open("/lines.txt", "r") as text:
        assert text.read() == body.decode()
    with connected.fs.open("/lines.txt", "r", encoding="utf-8", newline="") as text:
        text.seek(len(b"".join(lines[:1000])))
        assert text.readline() == lines[1000].decode()
    with pytest.raises(ValueError, match="can't have unbuffered text I/O"):
        connected.fs.open("/lines.txt", "r", buffering=0)


def test_concurrent_readers_of_one_file(blob: tuple[Filespace, bytes]) -> None:
    fsp, data = blob
    problems: list[BaseException] = []
    start = threading.Barrier(8)

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            with fsp.fs.open("/blob", "rb", buffering=rng.choice([-1, 0])) as handle:
                for _ in range(40):
                    offset = rng.randrange(SIZE)
                    length = rng.choice([1, 100, B, 2 * B + 3])
                    handle.seek(offset)
                    got = handle.read(length)
                    expected = data[offset : offset + length]
                    assert expected.startswith(got)
                    assert got
            assert fsp.fs.read_file("/blob") == data
        except BaseException as exc:  # noqa: BLE001 - any failure in a thread is reported below
            problems.append(exc)

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not problems, problems


def test_one_handle_shared_by_threads(blob: tuple[Filespace, bytes]) -> None:
    fsp, data = blob
    with fsp.fs.open("/blob", "rb") as handle:
        chunks: list[bytes] = []
        lock = threading.Lock()

        def take() -> None:
            while True:
                with lock:
                    offset = handle.tell()
                    chunk = handle.read(10_000)
                    if not chunk:
                        return
                    chunks.append(offset.to_bytes(8, "big") + chunk)

        threads = [threading.Thread(target=take) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    chunks.sort()
    assert b"".join(chunk[8:] for chunk in chunks) == data


def test_open_handle_serves_cached_blocks_without_the_server(
    blob: tuple[Filespace, bytes], s3_server: SeaweedS3
) -> None:
    fsp, data = blob
    offsets = [i * B + 17 for i in range(6)]
    with fsp.fs.open("/blob", "rb") as handle:
        for offset in reversed(offsets):  # random access: kept in the memory tier
            handle.seek(offset)
            assert handle.read(100) == data[offset : offset + 100]
        s3_server.pause()
        try:
            for offset in offsets:
                handle.seek(offset)
                assert handle.read(100) == data[offset : offset + 100]
        finally:
            s3_server.resume()


def test_change_after_caching(blob: tuple[Filespace, bytes], s3_admin: Any, bucket: str) -> None:
    fsp, data = blob
    handle = fsp.fs.open("/blob", "rb")
    handle.seek(2 * B)
    assert handle.read(10) == data[2 * B : 2 * B + 10]  # block 2 is cached now
    assert fsp.fs.read_file("/blob") == data  # ...and all the others
    new = os.urandom(SIZE)
    s3_admin.put_object(Bucket=bucket, Key="blob", Body=new)

    # An open buffered handle may go on serving the linked version's cached blocks...
    handle.seek(2 * B + 10)
    assert handle.read(10) == data[2 * B + 10 : 2 * B + 20]
    handle.close()
    # ...but every open asks the server first, so all-cached still fails: ESTALE.
    with pytest.raises(filespace.StaleFileError) as stale:
        fsp.fs.read_file("/blob")
    assert stale.value.errno == errno.ESTALE
    assert "/blob" in str(stale.value)
    assert "'blob'" in str(stale.value)  # names the object too
    with fsp.fs.open("/blob", "rb") as again:
        again.seek(2 * B)
        with pytest.raises(filespace.StaleFileError) as info:
            again.read(10)
    assert info.value.errno == errno.ESTALE
    # A new link of the changed object has a new checksum: new bytes, never old ones.
    fsp.connect.link_file("/blob2", "store", "blob")
    assert fsp.fs.read_file("/blob2") == new
    with fsp.fs.open("/blob2", "rb") as fresh:
        fresh.seek(2 * B)
        assert fresh.read(10) == new[2 * B : 2 * B + 10]


def test_unbuffered_handle_confirms_every_read(
    blob: tuple[Filespace, bytes], s3_admin: Any, bucket: str
) -> None:
    fsp, data = blob
    with fsp.fs.open("/blob", "rb", buffering=0) as raw:
        assert raw.read(10) == data[:10]
        s3_admin.put_object(Bucket=bucket, Key="blob", Body=os.urandom(SIZE))
        with pytest.raises(filespace.StaleFileError) as info:
            raw.read(10)  # the block is cached, but the read still asks the server
        assert info.value.errno == errno.ESTALE


def test_large_file_window_and_eof(connected: Filespace, s3_admin: Any, bucket: str) -> None:
    size = MAX_WINDOW // 4 + 3 * B + 11  # a few requests, an odd tail
    data = os.urandom(size)
    s3_admin.put_object(Bucket=bucket, Key="big", Body=data)
    connected.connect.link_file("/big", "store", "big")
    with connected.fs.open("/big", "rb") as handle:
        got = bytearray()
        while chunk := handle.read(1_000_003):
            got += chunk
        assert handle.read() == b""
    assert got == data
    with connected.fs.open("/big", "rb") as handle:
        handle.seek(size - B - 5)  # a jump, then a stream to EOF
        assert handle.read() == data[size - B - 5 :]


def test_forked_child_reads_an_inherited_handle(blob: tuple[Filespace, bytes]) -> None:
    # As a DataLoader worker would: loads under way in the parent are not the child's.
    import select

    fsp, data = blob
    handle = fsp.fs.open("/blob", "rb")
    assert handle.read(1000) == data[:1000]  # readahead may still be in flight
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            handle.seek(3 * B)
            ok = handle.read(5000) == data[3 * B : 3 * B + 5000]
            handle.seek(0)
            ok = ok and handle.read() == data
            os.write(write_end, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 60)
        if not ready:
            os.kill(pid, 9)
        assert ready, "the child hung"
        assert os.read(read_end, 1) == b"1"
    finally:
        os.waitpid(pid, 0)
        os.close(read_end)
        handle.close()
    assert handle.closed
