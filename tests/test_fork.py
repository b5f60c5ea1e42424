"""A forked child (multiprocessing's 'fork', DataLoader workers) reads on its own.

The parent first reads an external and a native file (so the HTTP pool, the
fetch pool, the botocore clients and the caches exist, with readahead under
way at the moment of the fork); the child must then open and read both
completely and correctly, and exit, instead of hanging on a lock, a queue or a
pool inherited from the parent.
"""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace.testing import SeaweedS3
from tests.fsfixtures import new_location, store_config
from tests.test_blocks import s3_data

BLOCK = 64 * 1024  # small blocks: many block fetches and a long readahead
_CHILD_TIMEOUT_S = 60.0

pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


@pytest.fixture
def space(
    engine_name: str, tmp_path: Path, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> Iterator[tuple[str, str, bytes, bytes]]:
    """A filespace with native data in S3 and a linked object: location, key, both contents."""
    key = filespace.generate_key()
    external = os.urandom(5 * 1024 * 1024 + 123)
    native = os.urandom(3 * 1024 * 1024 + 45)
    s3_admin.put_object(Bucket=bucket, Key="linked.bin", Body=external)
    with new_location(engine_name, tmp_path) as (location, options):
        options.update(data=f"s3://{bucket}/native", key=key, block_size=BLOCK)
        with filespace.create(location, name="fork", **options, **s3_data(s3_server)) as fsp:
            fsp.connect.enable()
            fsp.connect.add_data_store("store", store_config(s3_server, bucket))
            fsp.connect.link_file("/linked.bin", "store", "linked.bin")
            fsp.fs.write_file("/native.bin", native)
        yield location, key, external, native


def _child(location: str, key: str, external: bytes, native: bytes, inherited: Any) -> int:
    """In the child: read both files through a filespace of its own, and an inherited handle."""
    with filespace.open(location, key=key) as fsp:
        assert fsp.fs.read_file("/linked.bin") == external
        assert fsp.fs.read_file("/native.bin") == native
        with fsp.fs.open("/linked.bin", "rb") as handle:
            parts = []
            while piece := handle.read(100_000):
                parts.append(piece)
            assert b"".join(parts) == external
        with fsp.fs.open("/native.bin", "rb") as handle:
            handle.seek(BLOCK + 7)
            assert handle.read(2 * BLOCK) == native[BLOCK + 7 : 3 * BLOCK + 7]
            handle.seek(0)
            assert handle.read() == native
    # A native handle the parent opened and was reading sequentially: the rest of it.
    start = inherited.tell()
    assert inherited.read() == native[start:]
    return 0


def _wait(pid: int) -> int:
    """The child's exit code; fails the test if it has not exited in time (a hang)."""
    deadline = time.monotonic() + _CHILD_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child did not finish within {_CHILD_TIMEOUT_S:.0f} s")
        time.sleep(0.05)


def test_a_forked_child_reads_external_and_native_files(
    space: tuple[str, str, bytes, bytes],
) -> None:
    location, key, external, native = space
    with filespace.open(location, key=key) as fsp:
        # The parent reads both kinds, so every pool and cache exists...
        assert fsp.fs.read_file("/linked.bin") == external
        assert fsp.fs.read_file("/native.bin") == native
        linked = fsp.fs.open("/linked.bin", "rb")
        stored = fsp.fs.open("/native.bin", "rb")
        try:
            # ...and forks while sequential reads have readahead in flight.
            assert linked.read(300_000) == external[:300_000]
            assert stored.read(3 * BLOCK) == native[: 3 * BLOCK]
            pid = os.fork()
            if pid == 0:  # the child: never return into pytest
                code = 1
                try:
                    code = _child(location, key, external, native, stored)
                except BaseException:  # noqa: BLE001 - reported here; the exit code tells the parent
                    traceback.print_exc()
                finally:
                    os._exit(code)
            assert _wait(pid) == 0
            # The parent's handles go on as if nothing happened.
            assert linked.read() == external[300_000:]
            assert stored.read() == native[3 * BLOCK :]
        finally:
            linked.close()
            stored.close()


def test_a_forked_child_forgets_its_parents_prefetches(
    space: tuple[str, str, bytes, bytes],
) -> None:
    location, key, external, native = space
    with filespace.open(location, key=key, cache_size_mb=64) as fsp:
        ahead = fsp.fs.prefetch(["/linked.bin", "/native.bin"])
        assert ahead.wait(60)
        with filespace.open(location, key=key) as other:
            stalled = other.fs.prefetch(["/native.bin", "/linked.bin"], max_mb=0.001)
            # A parent thread holds the locks at the moment of the fork.
            with other.fs._prefetches._lock, stalled._lock:  # type: ignore[attr-defined]
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        assert stalled.done and stalled.wait() and ahead.done
                        # What an open of the inherited filespace does first (its
                        # engine connections are the parent's: not used here).
                        inherited = other.fs._prefetches  # type: ignore[attr-defined]
                        assert not inherited
                        inherited.opened("/linked.bin")  # no hang on the held lock
                        with filespace.open(location, key=key) as mine:
                            again = mine.fs.prefetch(["/native.bin", "/linked.bin"])
                            assert again.wait(60) and not again.errors
                            assert mine.fs.read_file("/native.bin") == native
                            assert mine.fs.read_file("/linked.bin") == external
                        code = 0
                    except BaseException:  # noqa: BLE001 - reported here; the exit code tells
                        traceback.print_exc()
                    finally:
                        os._exit(code)
            assert _wait(pid) == 0
            stalled.cancel()
            assert stalled.wait(60)
