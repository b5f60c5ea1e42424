"""A writer killed with SIGKILL mid-write leaves every file as of one of its flushes.

The writer runs in its own process, writes a large file in chunks and flushes
now and then (each flush reported on stdout); between flushes more than the
dirty limit is written, so blocks are spilled to the store uncommitted. It is
killed at a point the test sees it reach: after a write chosen at random (by
the run's seed, see tests/seeds.py) once blocks were spilled, or as it starts
a flush (the kill lands in the commit). Reopened, the filespace must hold, for
every file, blocks that all exist and read back to exactly some flushed state;
a sweep then removes the orphans the writer left, and every file still reads
back.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace.testing import SeaweedS3
from tests.test_blocks import s3_data

CHUNK = 1_000_003  # not a multiple of the block size: blocks are partly rewritten
FLUSH_EVERY = 80  # chunks: about 80 MB between flushes, past the 64 MiB dirty limit
BLOCK = 1024 * 1024
ORIGINAL_CHUNKS = 300  # the size of the file the "overwrite" writer rewrites in place

WRITER = """
import random, sys
import filespace

location, path, mode = sys.argv[1:4]
chunk, every = int(sys.argv[4]), int(sys.argv[5])

def content(tag, index):
    return random.Random(f"{tag}{index}").randbytes(chunk)

fsp = filespace.open(location)
if mode == "append":  # buffered stream, committed by sync_all
    handle = fsp.fs.open(path, "wb")
    commit = fsp.sync_all
else:  # raw stream over an existing file, committed by its own flush
    handle = fsp.fs.open(path, "r+b", buffering=0)
    commit = handle.flush
for index in range(10**6):
    handle.write(content("new", index))
    if index % every == every - 1:
        print("flushing", index + 1, flush=True)
        commit()
        print("flushed", index + 1, flush=True)
    else:
        print("wrote", index + 1, flush=True)
"""


def content(tag: str, index: int) -> bytes:
    return random.Random(f"{tag}{index}").randbytes(CHUNK)


def expected(mode: str, flushed_chunks: int) -> bytes:
    new = b"".join(content("new", index) for index in range(flushed_chunks))
    if mode == "append":
        return new
    old = b"".join(content("old", index) for index in range(ORIGINAL_CHUNKS))
    return new + old[len(new) :]


def _create(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {"name": "crash", "block_size": BLOCK}
    if kind == "s3":
        server: SeaweedS3 = request.getfixturevalue("s3_server")
        bucket: str = request.getfixturevalue("bucket")
        options.update(data=f"s3://{bucket}/crash", **s3_data(server))
    return options


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["after-spill", "mid-flush"])
@pytest.mark.parametrize("mode", ["append", "overwrite"])
@pytest.mark.parametrize("kind", ["local", "s3"])
def test_sigkill_mid_write(
    kind: str,
    mode: str,
    moment: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    rng: random.Random,
) -> None:
    location = tmp_path / "space"
    key = filespace.generate_key()
    with filespace.create(location, key=key, **_create(kind, tmp_path, request)) as fsp:
        fsp.fs.create_dir("/data")
        fsp.fs.write_file("/data/other", b"untouched")
        if mode == "overwrite":
            with fsp.fs.open("/data/big", "wb") as handle:
                for index in range(ORIGINAL_CHUNKS):
                    handle.write(content("old", index))
    env = {**os.environ, "FILESPACE_KEY": key}
    command = [sys.executable, "-c", WRITER, str(location), "/data/big", mode]
    with subprocess.Popen(
        [*command, str(CHUNK), str(FLUSH_EVERY)], stdout=subprocess.PIPE, env=env
    ) as writer:
        assert writer.stdout is not None
        # After two flushes, kill once the writer is past the dirty limit again (so
        # blocks were spilled uncommitted), or as it starts the third flush.
        spilled = 64 * 1024 * 1024 // CHUNK + 2
        target = 2 * FLUSH_EVERY + rng.randrange(spilled, FLUSH_EVERY)
        reported: list[int] = []
        for line in writer.stdout:
            what, count = line.split()
            if what == b"flushed":
                reported.append(int(count))
            if moment == "after-spill" and what == b"wrote" and int(count) >= target:
                break
            if moment == "mid-flush" and what == b"flushing" and len(reported) == 2:
                break
        writer.send_signal(signal.SIGKILL)
        for line in writer.stdout.read().splitlines():
            what, count = line.split()
            if what == b"flushed":
                reported.append(int(count))
        assert writer.wait() == -signal.SIGKILL, "the writer ended before it was killed"

    with filespace.open(location, key=key) as fsp:
        store = fsp._blocks()  # type: ignore[attr-defined]
        engine = fsp._engine  # type: ignore[attr-defined]
        stored = set(store.keys())
        size = fsp.fs.get_entry("/data/big").size
        entry_id = fsp.fs.get_entry("/data/big").file_id_external
        blocks = engine.blocks(entry_id)
        assert {block.key for block in blocks} <= stored, "an entry points at missing blocks"
        assert sum(block.length for block in blocks) >= size or mode == "overwrite"
        flushed = size // CHUNK if mode == "append" else _flushed_overwrite(fsp, reported)
        assert flushed in reported or flushed == reported[-1] + FLUSH_EVERY
        assert fsp.fs.read_file("/data/big") == expected(mode, flushed)
        assert fsp.fs.read_file("/data/other") == b"untouched"
        orphans = stored - engine.block_keys()
        if moment == "after-spill" and flushed == reported[-1] and flushed < target:
            assert orphans, "spilled, uncommitted blocks were expected"
        assert fsp.sweep_blocks(grace=0) == len(orphans)
        assert set(store.keys()) == engine.block_keys()
        assert fsp.fs.read_file("/data/big") == expected(mode, flushed)
        assert fsp.fs.read_file("/data/other") == b"untouched"


def _flushed_overwrite(fsp: filespace.Filespace, reported: list[int]) -> int:
    """How many chunks of new content the overwritten file holds (a flushed count)."""
    with fsp.fs.open("/data/big", "rb") as handle:
        count = 0
        while count < ORIGINAL_CHUNKS and handle.read(CHUNK) == content("new", count):
            count += 1
    candidates = [*reported, reported[-1] + FLUSH_EVERY]
    assert count in candidates, f"{count} chunks rewritten: not a flushed state {candidates}"
    return count
