"""A worker's error reaches the parent as itself, through the standard library's pools.

A linked object changed in the bucket after it was linked: a worker process
reading it gets ``StaleFileError`` (ESTALE), which must come back to the parent
as that class with its errno, path and detail, and leave the pool working. An
error that does not pickle breaks a ``ProcessPoolExecutor`` (``BrokenProcessPool``)
and hangs a ``multiprocessing.Pool``: results are awaited with a timeout, so a
hang fails the test instead of stalling the run.
"""

from __future__ import annotations

import errno
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from filespace import Filespace, StaleFileError
from tests import process_workers as workers
from tests.fsfixtures import location_of
from tests.waiting import HANG_S


def _linked(connected: Filespace, s3_admin: Any, bucket: str) -> dict[str, Any]:
    """``/fresh`` as linked, ``/changed`` changed since; the storage options of the filespace."""
    s3_admin.put_object(Bucket=bucket, Key="fresh", Body=b"fresh bytes")
    s3_admin.put_object(Bucket=bucket, Key="changed", Body=b"as linked")
    connected.connect.link_file("/fresh", "store", "fresh")
    connected.connect.link_file("/changed", "store", "changed")
    # Changed in place, same size: only the ETag tells.
    s3_admin.put_object(Bucket=bucket, Key="changed", Body=b"AS LINKED")
    return {"location": location_of(connected)}


def _check_stale(error: StaleFileError) -> None:
    assert type(error) is StaleFileError
    assert error.errno == errno.ESTALE
    assert error.filename == "/changed"
    assert error.detail and error.detail in str(error)


def test_process_pool_executor(connected: Filespace, s3_admin: Any, bucket: str) -> None:
    options = _linked(connected, s3_admin, bucket)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        stale = executor.submit(workers.read_file, "/changed", options)
        with pytest.raises(StaleFileError, match="stale external file") as info:
            stale.result(timeout=HANG_S)
        _check_stale(info.value)
        fresh = executor.submit(workers.read_file, "/fresh", options)
        assert fresh.result(timeout=HANG_S) == b"fresh bytes"  # the pool is not broken


def test_multiprocessing_pool(connected: Filespace, s3_admin: Any, bucket: str) -> None:
    options = _linked(connected, s3_admin, bucket)
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        stale = pool.apply_async(workers.read_file, ("/changed", options))
        with pytest.raises(StaleFileError, match="stale external file") as info:
            stale.get(timeout=HANG_S)
        _check_stale(info.value)
        fresh = pool.starmap_async(workers.read_file, [("/fresh", options)] * 2)
        assert fresh.get(timeout=HANG_S) == [b"fresh bytes"] * 2
