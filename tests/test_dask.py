"""Dask workers in their own processes read ``filespace://`` of a PostgreSQL filespace.

One ``LocalCluster`` of two worker processes serves the module. The workers get
the filespace's location in the storage options and its key in their
environment, as a deployment would give them, and open the filespace
themselves. What they read must equal what boto3 reads from the bucket, and a
linked object changed after linking must reach the client as
``StaleFileError`` (ESTALE). Every wait has a timeout, and the cluster's
processes are gone when the module ends.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.bag
import psutil
import pytest
from distributed import Client, LocalCluster

import filespace
from filespace import StaleFileError
from filespace.testing import SeaweedS3
from tests import process_workers as workers
from tests.fsfixtures import postgres_schema_url, postgres_url, store_config
from tests.s3fixtures import _delete_bucket
from tests.test_link_files import put_objects, s3_client
from tests.waiting import HANG_S, until

OBJECTS = 12


@dataclass
class Cluster:
    """The module's filespace, bucket and Dask client."""

    client: Client
    options: dict[str, str]
    bucket: str
    s3: Any


@pytest.fixture(scope="module")
def cluster(s3_server: SeaweedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A PostgreSQL filespace with ``/data`` mirrored and ``/stale`` changed, and a cluster."""
    postgres_url()  # skips first, saying why, without a server
    s3 = s3_client(s3_server)
    bucket = s3_server.create_bucket(f"t-{uuid.uuid4().hex[:12]}")
    home = tmp_path_factory.mktemp("dask")
    key = filespace.generate_key()
    try:
        with postgres_schema_url() as location:
            put_objects(
                s3, bucket, {f"data/{i:02d}.txt": f"line {i}\n".encode() for i in range(OBJECTS)}
            )
            s3.put_object(Bucket=bucket, Key="stale", Body=b"as linked")
            with filespace.create(
                location, name="dask", key=key, data=(home / "blocks").as_uri()
            ) as fsp:
                fsp.connect.enable()
                fsp.connect.add_data_store("store", store_config(s3_server, bucket))
                fsp.connect.mirror("store", "data/", "/data")
                fsp.connect.link_file("/stale", "store", "stale")
            # Changed in place, same size: only the ETag tells.
            s3.put_object(Bucket=bucket, Key="stale", Body=b"AS LINKED")
            yield from _run_cluster(location, key, home, bucket, s3)
    finally:
        _delete_bucket(s3, bucket)


def _run_cluster(location: str, key: str, home: Path, bucket: str, s3: Any) -> Iterator[Cluster]:
    environment = {
        "FILESPACE_KEY": key,
        "FILESPACE_CACHE_DIR": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            env=environment,
        ) as local,
        Client(local, timeout=HANG_S) as client,
    ):
        client.wait_for_workers(2, timeout=HANG_S)
        pids = set(client.run(os.getpid).values())
        yield Cluster(client, {"location": location}, bucket, s3)
    until(lambda: not any(psutil.pid_exists(pid) for pid in pids), "the workers to exit")


def _body(cluster: Cluster, key: str) -> bytes:
    data: bytes = cluster.s3.get_object(Bucket=cluster.bucket, Key=key)["Body"].read()
    return data


def test_workers_read_what_boto3_reads(cluster: Cluster) -> None:
    paths = [f"/data/{i:02d}.txt" for i in range(OBJECTS)]
    futures = cluster.client.map(workers.read_file, paths, storage_options=cluster.options)
    read = [future.result(timeout=HANG_S) for future in futures]
    assert read == [_body(cluster, f"data/{i:02d}.txt") for i in range(OBJECTS)]


def test_a_bag_of_lines_equals_the_bucket(cluster: Cluster) -> None:
    bag = dask.bag.read_text("filespace:///data/*.txt", storage_options=cluster.options)
    lines = cluster.client.compute(bag).result(timeout=HANG_S)
    wanted = [_body(cluster, f"data/{i:02d}.txt").decode() for i in range(OBJECTS)]
    assert lines == wanted  # one line per file, in the order of the paths


def test_a_stale_object_reaches_the_client_as_estale(cluster: Cluster) -> None:
    stale = cluster.client.submit(workers.read_file, "/stale", cluster.options, pure=False)
    with pytest.raises(StaleFileError, match="stale external file") as info:
        stale.result(timeout=HANG_S)
    assert type(info.value) is StaleFileError
    assert info.value.errno == errno.ESTALE and info.value.filename == "/stale"
    fresh = cluster.client.submit(workers.read_file, "/data/00.txt", cluster.options, pure=False)
    assert fresh.result(timeout=HANG_S) == b"line 0\n"  # the workers carry on
