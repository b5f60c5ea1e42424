"""Native files over block stores: random writes against a model, copy-on-write commits."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import filespace
from filespace.blocks import LocalBlockStore
from filespace.testing import SeaweedS3
from tests.test_blocks import s3_data

BLOCK = 64 * 1024  # the smallest block size: many block boundaries in little data


@pytest.fixture(params=["local", "s3"])
def small_blocks(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[filespace.Filespace]:
    """A filespace with 64 KiB blocks on each kind of block store."""
    options: dict[str, Any] = {}
    if request.param == "s3":
        server: SeaweedS3 = request.getfixturevalue("s3_server")
        bucket: str = request.getfixturevalue("bucket")
        options = {"data": f"s3://{bucket}/native", **s3_data(server)}
    with filespace.create(tmp_path / "space", name="n", block_size=BLOCK, **options) as fsp:
        yield fsp


_offsets = st.integers(min_value=0, max_value=5 * BLOCK)
_operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), _offsets, st.integers(min_value=1, max_value=3 * BLOCK)),
        st.tuples(st.just("truncate"), _offsets, st.just(0)),
        st.tuples(st.just("flush"), st.just(0), st.just(0)),
        st.tuples(st.just("read"), _offsets, st.integers(min_value=0, max_value=2 * BLOCK)),
        st.tuples(st.just("reopen"), st.just(0), st.just(0)),
    ),
    max_size=25,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operations=_operations, seed=st.integers(0, 255))
def test_random_writes_match_a_model(
    small_blocks: filespace.Filespace, operations: list[tuple[str, int, int]], seed: int
) -> None:
    fs = small_blocks.fs
    model = bytearray()
    fs.write_file("/m", b"")
    handle = fs.open("/m", "r+b", buffering=0)
    try:
        for number, (action, offset, length) in enumerate(operations):
            if action == "write":
                data = bytes([(seed + number) % 251 + 1]) * length
                handle.seek(offset)
                handle.write(data)
                if len(model) < offset:
                    model.extend(bytes(offset - len(model)))
                model[offset : offset + length] = data
            elif action == "truncate":
                handle.truncate(offset)
                del model[offset:]
                model.extend(bytes(offset - len(model)))
            elif action == "flush":
                handle.flush()
                assert fs.get_entry("/m").size == len(model)
            elif action == "read":
                handle.seek(offset)
                assert handle.read(length) == bytes(model[offset : offset + length])
            else:
                handle.close()
                assert fs.read_file("/m") == model
                handle = fs.open("/m", "r+b", buffering=0)
        handle.seek(0)
        assert handle.readall() == model
    finally:
        handle.close()
    assert fs.read_file("/m") == model
    small_blocks.sync_all()
    fs.delete("/m")
    assert small_blocks.sweep_blocks(grace=0) == 0  # no block leaked along the way


def test_blocks_are_stored_before_the_metadata_commits(
    small_blocks: filespace.Filespace,
) -> None:
    fsp = small_blocks
    store = fsp._blocks()  # type: ignore[attr-defined]
    engine = fsp._engine  # type: ignore[attr-defined]
    fsp.fs.write_file("/f", b"a" * (2 * BLOCK))
    committed = engine.block_keys()
    assert len(committed) == 2 and set(store.keys()) == committed
    handle = fsp.fs.open("/f", "r+b", buffering=0)
    handle.write(b"b" * 10)  # copy-on-write of block 0, in memory so far
    handle.seek(100 * BLOCK)
    handle.write(os.urandom(70 * 1024 * 1024))  # past the dirty limit: blocks spill
    spilled = set(store.keys()) - committed
    assert spilled, "blocks are written to the store before any commit"
    assert engine.block_keys() == committed  # ...and nothing references them yet
    assert fsp.fs.get_entry("/f").size == 2 * BLOCK
    assert fsp.fs.read_file("/f")[:10] == b"a" * 10  # other readers see the committed state
    fsp.sync_all()  # commits the open writer
    assert fsp.fs.get_entry("/f").size == 100 * BLOCK + 70 * 1024 * 1024
    assert fsp.fs.read_file("/f")[:12] == b"b" * 10 + b"aa"
    assert len(engine.block_keys() & committed) == 1  # block 0 replaced by its copy
    handle.close()
    assert set(store.keys()) == engine.block_keys()  # the replaced block 0 is gone


def test_a_deleted_file_drops_its_uncommitted_blocks(fsp: filespace.Filespace) -> None:
    store = fsp._blocks()  # type: ignore[attr-defined]
    handle = fsp.fs.open("/gone", "wb", buffering=0)
    handle.write(os.urandom(80 * 1024 * 1024))
    assert list(store.keys())
    fsp.fs.delete("/gone")
    with pytest.raises(FileNotFoundError):
        handle.close()
    assert list(store.keys()) == []


def test_large_writes_through_buffers(fsp: filespace.Filespace) -> None:
    """Sequential 1 MiB writes (whole-block allocation) and a few odd sizes around them."""
    chunks = [os.urandom(1 << 20), os.urandom(3), os.urandom(5 << 20), os.urandom(300_000)]
    with fsp.fs.open("/big", "wb") as handle:
        for chunk in chunks * 3:
            handle.write(chunk)
    expected = b"".join(chunks * 3)
    assert fsp.fs.read_file("/big") == expected
    with fsp.fs.open("/big", "ab") as handle:
        handle.write(b"tail")
    with fsp.fs.open("/big", "rb") as handle:
        assert isinstance(handle, io.BufferedReader)
        handle.seek(-10, io.SEEK_END)
        assert handle.read() == expected[-6:] + b"tail"


class _SyncRecordingStore(LocalBlockStore):
    """The real local store, noting which blocks were synced and what was referenced then."""

    def __init__(self, root: Path, engine: Any) -> None:
        super().__init__(root)
        self.engine = engine
        self.synced: set[str] = set()
        self.unsynced_referenced: set[str] = set()

    def sync(self, keys: Iterable[str]) -> None:
        # Looked at before these keys count as synced: a block a commit already
        # references when its sync comes (a sync moved after the commit) is caught.
        self.unsynced_referenced |= self.engine.block_keys() - self.synced
        keys = list(keys)
        super().sync(keys)
        self.synced.update(keys)


def test_blocks_are_durable_before_they_are_referenced(tmp_path: Path) -> None:
    with filespace.create(tmp_path / "s", name="d", block_size=BLOCK) as fsp:
        engine = fsp._engine  # type: ignore[attr-defined]
        store = _SyncRecordingStore(tmp_path / "s" / "blocks", engine)
        fsp._block_store = store  # type: ignore[attr-defined]
        with fsp.fs.open("/f", "wb") as handle:
            for _ in range(3):
                handle.write(os.urandom(70 * 1024 * 1024))  # spills, not yet durable
                fsp.sync_all()
                assert engine.block_keys() <= store.synced
        fsp.fs.write_file("/g", b"small")
        assert engine.block_keys() <= store.synced
        assert not store.unsynced_referenced


def test_sequential_writes_stream_into_the_store(fsp: filespace.Filespace) -> None:
    """Appends go straight into block files as they come; reads on the handle see them."""
    store = fsp._blocks()  # type: ignore[attr-defined]
    engine = fsp._engine  # type: ignore[attr-defined]
    block = 4 * 1024 * 1024
    data = os.urandom(2 * block + 300_000)
    with fsp.fs.open("/s", "w+b", buffering=0) as handle:
        for start in range(0, len(data), 100_000):
            handle.write(data[start : start + 100_000])
        streamed = set(store.keys())
        assert len(streamed) == 3  # two whole blocks and the one being written
        assert engine.block_keys() == set()  # none committed yet
        handle.seek(block - 10)
        assert handle.read(20) == data[block - 10 : block + 10]
        handle.seek(2 * block + 5)
        assert handle.read(10) == data[2 * block + 5 : 2 * block + 15]  # the open stream
        handle.seek(2 * block + 1000)  # back into the streamed block: it becomes a dirty copy
        handle.write(b"X" * 10)
        handle.seek(0, io.SEEK_END)
        handle.write(b"tail")
    expected = bytearray(data + b"tail")
    expected[2 * block + 1000 : 2 * block + 1010] = b"X" * 10
    assert fsp.fs.read_file("/s") == expected
    assert set(store.keys()) == engine.block_keys()  # the superseded stream block is gone


def test_a_long_uncommitted_write_commits_on_its_own(
    fsp: filespace.Filespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filespace.blocks import native

    monkeypatch.setattr(native, "_MAX_UNCOMMITTED_S", 0.0)
    with fsp.fs.open("/slow", "wb", buffering=0) as handle:
        handle.write(b"a" * (5 * 1024 * 1024))  # a whole block stored: old enough at once
        assert fsp.fs.get_entry("/slow").size == 5 * 1024 * 1024
        handle.write(b"b")  # only in memory (a copy of the committed last block): no hurry
        assert fsp.fs.get_entry("/slow").size == 5 * 1024 * 1024
        handle.write(b"c" * (4 * 1024 * 1024))  # into the store again: committed at once
        assert fsp.fs.get_entry("/slow").size == 9 * 1024 * 1024 + 1
