"""Several OS processes on one filespace, on every engine: races end as documented."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import S3Credentials
from filespace.testing import SeaweedS3
from tests import multiclient_workers as workers
from tests.fsfixtures import new_location, store_config

PROCESSES = 4


@pytest.fixture
def shared(engine_name: str, tmp_path: Path) -> Iterator[str]:
    """A filespace location with Connect on; its key is in the environment for children."""
    key = filespace.generate_key()
    os.environ["FILESPACE_KEY"] = key  # removed again by the isolated_env fixture
    with new_location(engine_name, tmp_path) as (location, options):
        with filespace.create(location, name="shared", key=key, **options) as fsp:
            fsp.connect.enable()
        yield location


def _pool(count: int) -> tuple[ProcessPoolExecutor, Any]:
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    return ProcessPoolExecutor(count, mp_context=context), manager


def _add_store(location: str, server: SeaweedS3, bucket: str) -> None:
    with filespace.open(location) as fsp:
        fsp.connect.add_data_store("store", store_config(server, bucket))


def test_concurrent_link_same_path_one_wins(shared: str, s3_server: SeaweedS3, bucket: str) -> None:
    _add_store(shared, s3_server, bucket)
    executor, manager = _pool(PROCESSES)
    with executor, manager:
        barrier = manager.Barrier(PROCESSES)
        results = list(
            executor.map(
                workers.link_same_path,
                [shared] * PROCESSES,
                [barrier] * PROCESSES,
                ["/contested"] * PROCESSES,
            )
        )
    assert sorted(results) == ["LinkExistsError"] * (PROCESSES - 1) + ["won"]
    with filespace.open(shared) as fsp:
        assert fsp.connect.count_external_files("store") == 1
        assert fsp.fs.get_statistics().external_files_count == 1


def test_concurrent_moves_never_form_a_cycle(shared: str) -> None:
    for round_ in range(3):
        with filespace.open(shared) as fsp:
            fsp.fs.create_dir(f"/a{round_}")
            fsp.fs.create_dir(f"/b{round_}")
        executor, manager = _pool(2)
        with executor, manager:
            barrier = manager.Barrier(2)
            first = executor.submit(
                workers.move_dir, shared, barrier, f"/a{round_}", f"/b{round_}/a"
            )
            second = executor.submit(
                workers.move_dir, shared, barrier, f"/b{round_}", f"/a{round_}/b"
            )
            results = sorted([first.result(), second.result()])
        assert results[1] == "moved"
        assert results[0] in ("errno 22", "errno 2")  # a cycle refused, or source moved away
        with filespace.open(shared) as fsp:
            found = fsp.fs.list_dir("/")
            # Exactly one of the two directories is still at the top, holding the other.
            top = [name for name in found if name in (f"a{round_}", f"b{round_}")]
            assert len(top) == 1
            inner = fsp.fs.list_dir(f"/{top[0]}")
            assert len(inner) == 1
            assert fsp.fs.list_dir(f"/{top[0]}/{inner[0]}") == []


def test_remove_store_racing_links(shared: str, s3_server: SeaweedS3, bucket: str) -> None:
    _add_store(shared, s3_server, bucket)
    linkers = PROCESSES - 1
    executor, manager = _pool(PROCESSES)
    with executor, manager:
        barrier = manager.Barrier(PROCESSES)
        linked_all = manager.Event()  # the remover tries until the linkers are done
        jobs = [
            executor.submit(workers.link_many, shared, barrier, f"/d{index}", 40)
            for index in range(linkers)
        ]
        remover = executor.submit(workers.remove_store_repeatedly, shared, barrier, linked_all)
        try:
            outcomes = [job.result() for job in jobs]
        finally:
            linked_all.set()
        removal = remover.result()
    linked = sum(outcome["linked"] for outcome in outcomes)
    with filespace.open(shared) as fsp:
        stats = fsp.fs.get_statistics()
        stores = [store.name for store in fsp.connect.list_data_stores()]
        if removal == "removed":
            # Links made before the removal were unlinked? No: removal only succeeds
            # when the store is empty, so every link came after a refused attempt
            # or none were made; a link never points at a removed store.
            assert stores == []
            assert linked == 0
            assert stats.external_files_count == 0
        else:
            assert stores == ["store"]
            assert linked == linkers * 40
            assert fsp.connect.count_external_files("store") == linked
        assert stats.external_files_count == linked


def test_rekey_while_others_read(
    shared: str, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    _add_store(shared, s3_server, bucket)
    s3_admin.put_object(Bucket=bucket, Key="data.bin", Body=os.urandom(200_000))
    with filespace.open(shared) as fsp:
        fsp.connect.link_file("/data.bin", "store", "data.bin")
    readers = PROCESSES - 1
    executor, manager = _pool(readers)
    with executor, manager:
        barrier = manager.Barrier(readers + 1)
        rekeyed = manager.Event()  # the readers read until every rekey is done
        jobs = [
            executor.submit(workers.read_repeatedly, shared, barrier, "/data.bin", rekeyed)
            for _ in range(readers)
        ]
        barrier.wait()
        try:
            with filespace.open(shared) as fsp:
                for identity in [s3_server.spare, s3_server.admin, s3_server.spare]:
                    fsp.connect.rekey_data_store(
                        "store", S3Credentials(identity.access_key, identity.secret_key)
                    )
        finally:
            rekeyed.set()
        counts = [job.result() for job in jobs]
    assert all(count > 0 for count in counts)
    with filespace.open(shared) as fsp:
        info = fsp.connect.get_data_store("store")
        assert info is not None and info.access_key == s3_server.spare.access_key


def test_concurrent_overlapping_mirrors_converge(
    shared: str, s3_server: SeaweedS3, bucket: str
) -> None:
    from filespace.connect import mirror
    from tests.test_link_files import put_objects, s3_client
    from tests.test_mirror import bucket_links, links_under

    _add_store(shared, s3_server, bucket)
    s3 = s3_client(s3_server)
    objects = {f"data/d{i % 7}/o{i:05d}": f"v{i}".encode() for i in range(3 * mirror.BATCH_SIZE)}
    objects.update({f"data/sub/s{i:04d}": b"s" for i in range(300)})
    put_objects(s3, bucket, objects)
    with filespace.open(shared) as fsp:
        # Stale links the mirrors must sweep.
        fsp.connect.mirror("store", "data/", "/m")
    s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": f"data/d0/o{i:05d}"} for i in range(0, 70, 7)]},
    )
    runs = [("data/", "/m"), ("data/", "/m"), ("data/sub/", "/m/sub")]
    executor, manager = _pool(len(runs))
    with executor, manager:
        barrier = manager.Barrier(len(runs))
        jobs = [executor.submit(workers.mirror_once, shared, barrier, p, d) for p, d in runs]
        results = [job.result() for job in jobs]
    assert results[0][0] == results[1][0] == len(objects) - 10
    with filespace.open(shared) as fsp:
        assert links_under(fsp, "/m") == bucket_links(s3, bucket, "data/", strip=5)
        assert fsp.connect.count_external_files("store") == len(objects) - 10
        assert fsp.fs.get_statistics().external_files_count == len(objects) - 10
