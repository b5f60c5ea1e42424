"""Load: 32 threads and 4 processes reading linked objects at once, on every engine.

The threads read through ``fs.open``, fsspec and the FUSE mount alike, the
same object and different ones (``tests/load_workers.py``); the processes are
spawned and open the filespace themselves; the mount is one more process. All
of them share one block cache directory with a small budget, so blocks are
evicted all the time while others read and write them. Two rounds: no error,
every byte right, the cache never over its budget, and no process holds more
descriptors or threads after the second round than after the first. (How fast
this goes is ``benchmarks/load_bench.py``'s business.)
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace.testing import SeaweedS3
from tests import load_workers, requirements
from tests.cli_helpers import all_secrets, new_cli
from tests.fsfixtures import new_location, store_config
from tests.load_workers import MIB, SIZES, Load, Outcome, Resources, Setup, quiet, settle
from tests.test_fuse import _WHY_NOT, mounted
from tests.waiting import HANG_S

pytestmark = pytest.mark.skipif(
    _WHY_NOT is not None, reason=requirements.reason("fuse", str(_WHY_NOT))
)

THREADS = 32
PROCESSES = 4
WORKER_THREADS = 4
ROUNDS = 2
CACHE_MB = 4  # far less than the objects: blocks are evicted while others read them
FETCH_THREADS = 8  # io/workers.WORKERS: the fetch pool a process starts on its first reads
HTTP_CONNECTIONS = 32  # objects/http.py: connections kept per server
PG_CONNECTIONS = 8  # meta/postgres.py: connections per open filespace
FUSE_THREADS = 10  # libfuse 3's default max_threads


@pytest.fixture
def linked(engine_name: str, tmp_path: Path, s3_server: SeaweedS3, bucket: str) -> Iterator[Setup]:
    """A filespace on ``engine_name`` with the load's objects linked, and its mount's options."""
    key = filespace.generate_key()
    s3 = s3_server.client()
    with new_location(engine_name, tmp_path) as (location, options):
        with filespace.create(location, name="load", key=key, **options) as fsp:
            fsp.connect.enable()
            fsp.connect.add_data_store("store", store_config(s3_server, bucket))
            fsp.fs.create_dir("/load")
            for index in range(len(SIZES)):
                object_key = f"o{index}.bin"
                s3.put_object(Bucket=bucket, Key=object_key, Body=load_workers.payload(index))
                fsp.connect.link_file(load_workers.name(index), "store", object_key)
        yield Setup(location, key, str(tmp_path / "cache"), CACHE_MB, str(tmp_path / "mnt"))


def _more(before: Counter[str], after: Counter[str]) -> str:
    """What ``after`` holds more of than ``before`` (a few of them, for the message)."""
    more = after - before
    return f"{sum(more.values())} more descriptors, such as {sorted(more)[:3]}"


def _check_rounds(who: str, seen: list[Resources], threads: int, fuse: bool = False) -> None:
    """Nothing held grows from round to round; pools stay within their bounds.

    The first round may start the fetch pool (and, in the mount, libfuse's
    threads); what a round holds beyond that must be gone again after it.
    """
    before, first, *later = seen
    assert not first.others - before.others, f"{who}: {_more(before.others, first.others)}"
    engines = 1 if fuse else 2  # open filespaces: fs.open's and fsspec's, or the mount's
    for after in [first, *later]:
        assert after.others == first.others, f"{who}: {_more(first.others, after.others)}"
        sockets = after.pooled["socket"] - before.pooled["socket"]
        assert sockets <= HTTP_CONNECTIONS + engines * PG_CONNECTIONS, f"{who}: {sockets} sockets"
        # A SQLite filespace keeps one connection (3 files) per transaction run at once.
        assert after.pooled["sqlite"] <= 3 * engines * (threads + 1), f"{who}: {after.pooled}"
        # The ledger is open only while a batch is written: by the writer or a helping reader.
        assert after.pooled["ledger"] <= engines * (threads + FETCH_THREADS + 1), who
        if fuse:  # libfuse starts threads as calls come, and ends those idle beyond its limit
            limit = before.tasks + FETCH_THREADS + 1 + threads
            assert after.tasks <= limit, f"{who}: {before.tasks} -> {after.tasks} threads"
        else:
            assert after.tasks == first.tasks, f"{who}: threads {first.tasks} -> {after.tasks}"
            assert after.python_threads == first.python_threads, who
    assert first.tasks <= before.tasks + FETCH_THREADS + (threads if fuse else 0), who


def test_many_readers_at_once_get_every_byte_within_the_cache_budget(
    linked: Setup, s3_server: SeaweedS3
) -> None:
    cli = new_cli(Path(linked.cache_root).parent / "cli", [linked.key, *all_secrets(s3_server)])
    env = {"FILESPACE_KEY": linked.key, "FILESPACE_CACHE_DIR": linked.cache_root}
    context = multiprocessing.get_context("spawn")
    with (
        mounted(
            cli, Path(linked.mountpoint), linked.location, env, ["--cache-mb", str(CACHE_MB)]
        ) as (_, mount_pid),
        filespace.open(
            linked.location, key=linked.key, cache_dir=linked.cache_root, cache_size_mb=CACHE_MB
        ) as fsp,
        context.Manager() as manager,
        ProcessPoolExecutor(PROCESSES, mp_context=context) as executor,
    ):
        load = Load(linked, fsp, "parent")
        barrier = manager.Barrier(PROCESSES + 1)
        jobs = [
            executor.submit(load_workers.work, linked, barrier, f"w{n}", WORKER_THREADS, ROUNDS)
            for n in range(PROCESSES)
        ]
        barrier.wait(HANG_S)  # every worker has opened the filespace
        seen, mount_seen = [quiet()], [quiet(mount_pid)]
        outcome = Outcome()
        for round_ in range(ROUNDS):
            barrier.wait(HANG_S)
            outcome.add(load.round(THREADS, round_))
            barrier.wait(HANG_S)  # every process is done reading: the mount is idle too
            settle()
            seen.append(quiet())
            mount_seen.append(quiet(mount_pid))
        results: list[dict[str, Any]] = [job.result() for job in jobs]
        final_cache = load_workers.cache_size(linked.cache_root)
    for result in results:
        for worker_outcome in result["outcomes"]:
            outcome.add(worker_outcome)
    assert outcome.errors == []
    reads = ROUNDS * load_workers.READS_PER_THREAD * (THREADS + PROCESSES * WORKER_THREADS)
    assert outcome.reads == reads
    budget = CACHE_MB * MIB
    assert 0 < final_cache <= budget
    assert outcome.largest_cache <= budget, f"the cache grew to {outcome.largest_cache} bytes"
    _check_rounds("parent", seen, THREADS)
    for number, result in enumerate(results):
        _check_rounds(f"worker {number}", result["resources"], WORKER_THREADS)
    _check_rounds("mount", mount_seen, FUSE_THREADS, fuse=True)
